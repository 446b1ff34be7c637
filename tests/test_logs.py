"""Structured logs: JSON lines with the run's seed; the handler follows stderr."""

from __future__ import annotations

import io
import logging
import sys

import orjson
import pytest

from runtime.logs import bind, configure_logging


def test_json_lines_carry_bound_fields_and_extras() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer, json=True)
    bind(seed=7, run_id="r1")
    logging.getLogger("txnsim.test").info("simulated slice", extra={"rows": 12})
    line = orjson.loads(buffer.getvalue().splitlines()[-1])
    assert line["msg"] == "simulated slice"
    assert (line["seed"], line["run_id"], line["rows"], line["level"]) == (7, "r1", 12, "info")


def test_default_handler_writes_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("INFO", json=True)
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("txnsim.test").info("after the swap")
    assert "after the swap" in later.getvalue()


def test_extras_with_integer_keys_still_make_a_json_line() -> None:
    # e.g. end offsets by partition number: once crashed the formatter (a lost line).
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer, json=True)
    logging.getLogger("txnsim.test").info("ends", extra={"ends": {0: 5, 1: 7}})
    line = orjson.loads(buffer.getvalue().splitlines()[-1])
    assert line["ends"] == {"0": 5, "1": 7}
