"""PartitionLog cuts files by the records alone, whatever the polls, and commits safely."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from consumers.landing import Cut, DeadLetter, Limits, PartitionLog
from schemas.avro_decode import Decoded
from schemas.event import transaction_schema
from tests.strategies import sample_transaction

SCHEMA = transaction_schema()
_DAY0 = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
_SECONDS_A_DAY = 86_400
# Cuts depend on offsets, value sizes and event times only; the rows differ by id and time.
# (Drawing a transactions() record per example costs more than the rest of the test.)
_BASE: dict[str, Any] = sample_transaction(transaction_id="", event_time=_DAY0, merchant_city=None)


@dataclass(frozen=True)
class _Stream:
    """One partition's records in offset order; dead ones have a row that is never used."""

    offsets: np.ndarray
    sizes: np.ndarray
    dead: np.ndarray
    table: pa.Table

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def decodable(self) -> list[int]:
        return self.offsets[~self.dead].tolist()

    def days(self) -> list[dt.date]:
        return [t.date() for t in self.table.column("event_time").to_pylist()]


@st.composite
def _streams(draw: st.DrawFn) -> _Stream:
    """1 to 14 records a day over 2-3 UTC days, in event-time order but for some late ones."""
    seconds: list[int] = []
    for day in range(draw(st.integers(2, 3))):
        times = draw(st.lists(st.integers(0, _SECONDS_A_DAY - 1), min_size=1, max_size=14))
        seconds += [day * _SECONDS_A_DAY + t for t in sorted(times)]
    count = len(seconds)
    # Some records are late: they happened the day before the records around them.
    for i in draw(st.sets(st.integers(0, count - 1), max_size=count // 4 + 1)):
        seconds[i] = max(seconds[i] - _SECONDS_A_DAY, 0)
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2, 5]), min_size=count, max_size=count))
    sizes = draw(st.lists(st.integers(1, 60), min_size=count, max_size=count))
    dead = draw(st.lists(st.integers(0, 6), min_size=count, max_size=count))
    first = draw(st.integers(0, 10**12))
    offsets = first + np.cumsum(gaps) - gaps[0]
    rows = [
        _BASE
        | {
            "transaction_id": f"{int(offset):016x}",
            "event_time": _DAY0 + dt.timedelta(seconds=at),
        }
        for offset, at in zip(offsets, seconds, strict=True)
    ]
    return _Stream(
        offsets=offsets.astype(np.int64),
        sizes=np.array(sizes, dtype=np.int64),
        dead=np.array(dead) == 0,
        table=pa.Table.from_pylist(rows, schema=SCHEMA.arrow),
    )


# Small limits, so that rows and bytes both cut files.
_limits = st.builds(Limits, max_rows=st.integers(1, 8), max_bytes=st.integers(1, 200))


def _split(data: st.DataObject, count: int) -> list[int]:
    """Batch boundaries: sorted ends of the batches, the last being ``count``."""
    points = data.draw(st.sets(st.integers(1, max(count - 1, 1)), max_size=count))
    return [*sorted(p for p in points if p < count), count]


def _feed(log: PartitionLog, stream: _Stream, start: int, stop: int) -> None:
    """Add records ``start:stop`` as one poll, the way the sink does."""
    rows = np.flatnonzero(~stream.dead[start:stop])
    errors = [(int(i), "does not decode") for i in np.flatnonzero(stream.dead[start:stop])]
    decoded = Decoded(stream.table.take(pa.array(start + rows, pa.int64())), rows, errors)
    dead = [
        DeadLetter(int(stream.offsets[start + i]), None, None, b"?", [], reason)
        for i, reason in errors
    ]
    log.add(stream.offsets[start:stop], stream.sizes[start:stop], decoded, dead, float(start))


def _feed_all(log: PartitionLog, stream: _Stream, ends: Sequence[int], start: int = 0) -> None:
    for end in ends:
        _feed(log, stream, start, end)
        start = end


def _expected_cuts(stream: _Stream, limits: Limits) -> list[tuple[dt.date, list[int]]]:
    """The cuts by the rules, applied one record at a time.

    A file closes when the day changes, when it has max_rows rows, or before a record that
    would take it past max_bytes (a lone record may pass it); dead letters take no part.
    """
    cuts: list[tuple[dt.date, list[int]]] = []
    day = _DAY0.date()
    offsets: list[int] = []
    used = 0
    for offset, size, is_dead, event_day in zip(
        stream.offsets.tolist(), stream.sizes.tolist(), stream.dead, stream.days(), strict=True
    ):
        if is_dead:
            continue
        if offsets and (event_day != day or used + size > limits.max_bytes):
            cuts.append((day, offsets))
            offsets, used = [], 0
        day = event_day
        offsets.append(offset)
        used += size
        if len(offsets) == limits.max_rows:
            cuts.append((day, offsets))
            offsets, used = [], 0
    if offsets:
        cuts.append((day, offsets))
    return cuts


def _summary(cuts: list[Cut]) -> list[tuple[Any, ...]]:
    return [(c.day, c.first, c.last, c.rows, c.offsets.tolist(), c.value_bytes) for c in cuts]


def _rows_of(stream: _Stream, offsets: np.ndarray) -> pa.Table:
    index = np.searchsorted(stream.offsets, offsets)
    return stream.table.take(pa.array(index, pa.int64()))


def _check_cut(cut: Cut, stream: _Stream, limits: Limits) -> None:
    table = cut.table()
    assert table.equals(_rows_of(stream, cut.offsets))
    assert {t.date() for t in table.column("event_time").to_pylist()} == {cut.day}
    assert 1 <= cut.rows <= limits.max_rows
    assert np.all(np.diff(cut.offsets) > 0)


@given(_streams(), _limits, st.data())
def test_cuts_do_not_depend_on_how_the_records_were_polled(
    stream: _Stream, limits: Limits, data: st.DataObject
) -> None:
    count = len(stream)
    whole = PartitionLog(limits, int(stream.offsets[0]))
    _feed_all(whole, stream, [count])
    split = PartitionLog(limits, int(stream.offsets[0]))
    _feed_all(split, stream, _split(data, count))
    # Full files are cut as the records come, the same in both.
    assert _summary(whole.cuts) == _summary(split.cuts)
    whole.close()
    split.close()
    assert _summary(whole.cuts) == _summary(split.cuts)
    expected = _expected_cuts(stream, limits)
    assert [(c.day, c.offsets.tolist()) for c in split.cuts] == expected
    landed = np.concatenate([c.offsets for c in split.cuts]) if split.cuts else np.array([])
    assert landed.tolist() == stream.decodable  # each decodable offset once, in order
    sizes = dict(zip(stream.offsets.tolist(), stream.sizes.tolist(), strict=True))
    for cut in split.cuts:
        _check_cut(cut, stream, limits)
        assert cut.value_bytes == sum(sizes[o] for o in cut.offsets.tolist())
        assert cut.value_bytes <= limits.max_bytes or cut.rows == 1
    assert [letter.offset for letter in split.dead] == stream.offsets[stream.dead].tolist()
    assert split.next == int(stream.offsets[-1]) + 1
    assert split.commit_position() == min(
        [split.next, *(c.first for c in split.cuts), *(d.offset for d in split.dead)]
    )


def test_dead_letters_never_open_a_file() -> None:
    limits = Limits(max_rows=2, max_bytes=100)
    log = PartitionLog(limits, 5)
    empty = pa.Table.from_pylist([], schema=SCHEMA.arrow)
    offsets = np.arange(5, 9, dtype=np.int64)
    dead = [DeadLetter(int(o), 1, b"k", b"v", [("h", b"1")], "bad") for o in offsets]
    errors = [(i, "bad") for i in range(4)]
    log.add(offsets, np.ones(4, dtype=np.int64), Decoded(empty, np.array([], int), errors), dead, 0)
    log.close()
    assert log.cuts == []
    assert log.open_bytes == 0
    assert log.open_age(99.0) == 0.0
    assert log.dead == dead
    assert log.next == 9
    assert log.commit_position() == 5
    log.dead.clear()  # landed
    assert log.commit_position() == 9


@given(_streams(), _limits, st.data())
def test_commit_position_never_passes_a_pending_record(
    stream: _Stream, limits: Limits, data: st.DataObject
) -> None:
    log = PartitionLog(limits, int(stream.offsets[0]))
    assert log.commit_position() == int(stream.offsets[0])
    fed: set[int] = set()
    landed: set[int] = set()
    committed = log.commit_position()
    start = 0
    for end in _split(data, len(stream)):
        _feed(log, stream, start, end)
        fed |= set(stream.offsets[start:end].tolist())
        start = end
        if data.draw(st.booleans()):  # idle, or the memory budget
            log.close()
        # The sink lands from the front of each list.
        for _ in range(data.draw(st.integers(0, len(log.dead)))):
            landed.add(log.dead.pop(0).offset)
        for _ in range(data.draw(st.integers(0, len(log.cuts)))):
            landed |= set(log.cuts.pop(0).offsets.tolist())
        pending = fed - landed
        position = log.commit_position()
        assert log.next == int(stream.offsets[end - 1]) + 1
        assert position == min(pending, default=log.next)
        assert position >= committed
        committed = position
    log.close()
    landed |= {letter.offset for letter in log.dead}
    landed |= {o for cut in log.cuts for o in cut.offsets.tolist()}
    log.dead.clear()
    log.cuts.clear()
    assert landed == fed
    assert log.commit_position() == log.next


@given(_streams(), _limits, st.data())
def test_skip_through_drops_exactly_the_adopted_offsets(
    stream: _Stream, limits: Limits, data: st.DataObject
) -> None:
    count = len(stream)
    first, last = int(stream.offsets[0]), int(stream.offsets[-1])
    ends = _split(data, count)
    before = data.draw(st.integers(0, len(ends)))  # polls taken before the adoption
    through = data.draw(st.integers(first - 1, last + 2))
    log = PartitionLog(limits, first)
    _feed_all(log, stream, ends[:before])
    log.skip_through(through)
    seen = int(stream.offsets[ends[before - 1] - 1]) + 1 if before else first
    assert log.next == max(seen, through + 1)
    assert log.commit_position() >= through + 1
    # A replay of adopted records (a re-read after a crash) adds nothing.
    replay = int(np.searchsorted(stream.offsets, through, side="right"))
    if replay:
        _feed(log, stream, 0, replay)
    rest = ends[before - 1] if before else 0
    _feed_all(log, stream, [end for end in ends if end > rest], rest)
    log.close()
    kept = stream.offsets[stream.offsets > through]
    dead = set(stream.offsets[stream.dead].tolist())
    assert [letter.offset for letter in log.dead] == [o for o in kept.tolist() if o in dead]
    landed = [o for cut in log.cuts for o in cut.offsets.tolist()]
    assert landed == [o for o in kept.tolist() if o not in dead]
    for cut in log.cuts:
        _check_cut(cut, stream, limits)
    assert log.next == max(last + 1, through + 1)
    # Starting from the adopted position drops the same offsets.
    fresh = PartitionLog(limits, through + 1)
    _feed_all(fresh, stream, ends)
    fresh.close()
    assert [o for cut in fresh.cuts for o in cut.offsets.tolist()] == landed
    assert [letter.offset for letter in fresh.dead] == [letter.offset for letter in log.dead]
