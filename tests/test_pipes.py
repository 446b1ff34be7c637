"""A lane's messages cross the pipe whole: arrays out of band, in order, any size."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from simulator.model import pipes


def _through_a_pipe(messages: list[Any]) -> list[Any]:
    mine, theirs = multiprocessing.get_context("fork").Pipe(duplex=False)
    pipes.widen(theirs)

    def sender() -> None:
        for message in messages:
            pipes.send(theirs, message)
        theirs.close()

    thread = threading.Thread(target=sender)
    thread.start()
    got = [pipes.receive(mine) for _ in messages]
    with pytest.raises(EOFError):
        pipes.receive(mine)
    thread.join()
    return got


def test_messages_arrive_whole_and_in_order() -> None:
    rng = np.random.default_rng(3)
    big = rng.integers(-(2**62), 2**62, size=3_000_000)  # 24 MB: many times the pipe
    table = pa.table({"id": pa.array(["a", None, "ccc"]), "at": pa.array([1, 2, 3], pa.int64())})
    messages: list[Any] = [
        ("slice", {"time_us": big, "flag": rng.random(1000) < 0.5, "none": np.zeros(0)}),
        ("slice", {"strided": big[::7], "table": table}),
        ("cards", {"holder": np.arange(5, dtype=np.int32)}),
        ("error", "Traceback ..."),
    ]
    got = _through_a_pipe(messages)
    assert [kind for kind, _ in got] == ["slice", "slice", "cards", "error"]
    first, second, cards = got[0][1], got[1][1], got[2][1]
    np.testing.assert_array_equal(first["time_us"], big)
    np.testing.assert_array_equal(first["flag"], messages[0][1]["flag"])
    assert first["none"].shape == (0,)
    np.testing.assert_array_equal(second["strided"], big[::7])
    assert second["table"].equals(table)
    assert cards["holder"].dtype == np.int32
    assert got[3][1] == "Traceback ..."
    # The arrays own writable memory: the merge may work in them.
    first["time_us"][0] = 1
