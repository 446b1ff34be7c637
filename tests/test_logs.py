"""Structured logs: JSON lines with the run's seed; the handler follows stderr."""

from __future__ import annotations

import io
import logging
import sys

import orjson
import pytest

from runtime.logs import RepeatFilter, bind, configure_logging


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


def test_repeat_filter_says_a_flood_once_a_window_and_counts_what_it_held_back() -> None:
    now = [100.0]
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer, json=True)
    client = logging.getLogger("txnsim.test.client")
    client.addFilter(RepeatFilter(window_s=10.0, monotonic=lambda: now[0]))
    try:
        for _ in range(500):  # a broker refusing every reconnect, all in one instant
            client.error("connect failed: refused")
        client.info("connect failed: refused")  # another level: its own line
        client.error("disconnected")  # another text: its own line
        now[0] += 9.9
        client.error("connect failed: refused")  # still within the window: held back
        now[0] += 0.1
        client.error("connect failed: refused")  # a window later: through, with the count
    finally:
        client.filters.clear()
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    said = [(line["level"], line["msg"], line.get("repeated")) for line in lines]
    assert said == [
        ("error", "connect failed: refused", None),
        ("info", "connect failed: refused", None),
        ("error", "disconnected", None),
        ("error", "connect failed: refused", 500),
    ]


def test_repeat_filter_refuses_a_window_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="window_s"):
        RepeatFilter(window_s=0)
