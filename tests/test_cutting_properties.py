"""Cutting a partition into files across writer schemas (``tests/test_landing.py`` has one).

``test_landing.py`` feeds one schema. Here a partition carries runs of the three schemas a
topic of ours may hold (the full and the public transaction schema, and fraud labels,
which land by ``label_time``), polled in any batches and, as the sink does, added one
schema run at a time; the cuts must not depend on the polling, never mix dates or
schemas, keep to the limits, and cover every decodable offset once, in order.
"""

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
from schemas.event import (
    LABEL_FIELDS,
    EventSchema,
    landing_of,
    public_transaction_schema,
    transaction_schema,
)
from tests.strategies import sample_transaction

SCHEMAS: list[EventSchema] = [
    transaction_schema(),
    public_transaction_schema(),
    transaction_schema("fraud_label"),
]
_DAY0 = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
_SECONDS_A_DAY = 86_400
_FULL: dict[str, Any] = sample_transaction(merchant_city=None)
_PUBLIC = {k: v for k, v in _FULL.items() if k not in LABEL_FIELDS}
_LABEL: dict[str, Any] = {
    "card_id": "card-1",
    "cardholder_id": "ch-1",
    "source": "chargeback",
    "fraud_scenario": None,
    "fraud_case_id": None,
}


def _row(schema: int, offset: int, lands_at: dt.datetime, lag: dt.timedelta) -> dict[str, Any]:
    """A record whose landing column is ``lands_at`` (a label's event was ``lag`` earlier)."""
    tid = f"{offset:016x}"
    if schema == 2:
        return _LABEL | {
            "transaction_id": tid,
            "event_time": lands_at - lag,
            "label_time": lands_at,
        }
    base = _FULL if schema == 0 else _PUBLIC
    return base | {"transaction_id": tid, "event_time": lands_at}


@dataclass(frozen=True)
class _Stream:
    """One partition's records in offset order, each with its writer schema."""

    offsets: np.ndarray
    sizes: np.ndarray
    dead: np.ndarray
    schema: np.ndarray  # index into SCHEMAS, per record
    day: list[dt.date]  # the UTC date of the record's landing column
    tables: list[pa.Table]  # per schema: its records' rows, in offset order
    row: np.ndarray  # per record: its row in its schema's table

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def decodable(self) -> list[int]:
        return self.offsets[~self.dead].tolist()


@st.composite
def _streams(draw: st.DrawFn) -> _Stream:
    """Up to ~40 records: runs of the schemas, over 2-3 UTC days, some of them late."""
    runs = draw(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 8)), min_size=1, max_size=5))
    schema = np.array([s for s, n in runs for _ in range(n)], dtype=np.int64)
    count = len(schema)
    span = draw(st.integers(2, 3)) * _SECONDS_A_DAY
    seconds = sorted(draw(st.lists(st.integers(0, span - 1), min_size=count, max_size=count)))
    for i in draw(st.sets(st.integers(0, count - 1), max_size=count // 4 + 1)):
        seconds[i] = max(seconds[i] - _SECONDS_A_DAY, 0)  # late: from the day before
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 5]), min_size=count, max_size=count))
    sizes = draw(st.lists(st.integers(1, 60), min_size=count, max_size=count))
    dead = draw(st.lists(st.integers(0, 5), min_size=count, max_size=count))
    lag = dt.timedelta(seconds=draw(st.integers(0, 2 * _SECONDS_A_DAY)))
    offsets = draw(st.integers(0, 10**12)) + np.cumsum(gaps) - gaps[0]
    lands = [_DAY0 + dt.timedelta(seconds=s) for s in seconds]
    rows: list[list[dict[str, Any]]] = [[], [], []]
    row = np.zeros(count, dtype=np.int64)
    for i in range(count):
        s = int(schema[i])
        row[i] = len(rows[s])
        rows[s].append(_row(s, int(offsets[i]), lands[i], lag))
    return _Stream(
        offsets=offsets.astype(np.int64),
        sizes=np.array(sizes, dtype=np.int64),
        dead=np.array(dead) == 0,
        schema=schema,
        day=[t.date() for t in lands],
        tables=[
            pa.Table.from_pylist(r, schema=s.arrow) for r, s in zip(rows, SCHEMAS, strict=True)
        ],
        row=row,
    )


_limits = st.builds(Limits, max_rows=st.integers(1, 8), max_bytes=st.integers(1, 200))


def _poll(log: PartitionLog, stream: _Stream, start: int, stop: int) -> None:
    """Records ``start:stop`` as one poll: one ``add`` per run of one writer schema."""
    at = start
    while at < stop:
        schema = int(stream.schema[at])
        end = at
        while end < stop and stream.schema[end] == schema:
            end += 1
        dead = stream.dead[at:end]
        rows = np.flatnonzero(~dead)
        errors = [(int(i), "does not decode") for i in np.flatnonzero(dead)]
        table = stream.tables[schema].take(pa.array(stream.row[at + rows], pa.int64()))
        letters = [
            DeadLetter(int(stream.offsets[at + i]), None, None, b"?", [], reason)
            for i, reason in errors
        ]
        log.add(
            stream.offsets[at:end],
            stream.sizes[at:end],
            Decoded(table, rows, errors),
            letters,
            float(at),
            SCHEMAS[schema],
        )
        at = end


def _run(stream: _Stream, limits: Limits, ends: Sequence[int]) -> tuple[list[Any], PartitionLog]:
    """The cuts made while polling (full files), and the log once closed."""
    log = PartitionLog(limits, int(stream.offsets[0]))
    start = 0
    for end in ends:
        _poll(log, stream, start, end)
        start = end
    full = _summary(log.cuts)
    log.close()
    return full, log


def _summary(cuts: list[Cut]) -> list[tuple[Any, ...]]:
    return [
        (c.day, c.schema.fingerprint, c.first, c.last, c.offsets.tolist(), c.value_bytes)
        for c in cuts
    ]


def _expected(stream: _Stream, limits: Limits) -> list[tuple[dt.date, int, list[int]]]:
    """The rules one decodable record at a time: a date, schema, row or byte limit cuts."""
    cuts: list[tuple[dt.date, int, list[int]]] = []
    offsets: list[int] = []
    day, schema, used = _DAY0.date(), -1, 0
    for i in np.flatnonzero(~stream.dead).tolist():
        size = int(stream.sizes[i])
        changed = stream.day[i] != day or int(stream.schema[i]) != schema
        if offsets and (changed or used + size > limits.max_bytes):
            cuts.append((day, schema, offsets))
            offsets, used = [], 0
        day, schema = stream.day[i], int(stream.schema[i])
        offsets.append(int(stream.offsets[i]))
        used += size
        if len(offsets) == limits.max_rows:
            cuts.append((day, schema, offsets))
            offsets, used = [], 0
    if offsets:
        cuts.append((day, schema, offsets))
    return cuts


def _check_invariants(cuts: list[Cut], stream: _Stream, limits: Limits) -> None:
    index = {o: i for i, o in enumerate(stream.offsets.tolist())}
    landed = [o for cut in cuts for o in cut.offsets.tolist()]
    assert landed == stream.decodable  # contiguous, each decodable offset once, in order
    for cut in cuts:
        records = [index[o] for o in cut.offsets.tolist()]
        table = cut.table()
        # One writer schema: the file's, every row's, and the table's (with its fingerprint).
        assert {SCHEMAS[int(stream.schema[i])].fingerprint for i in records} == {
            cut.schema.fingerprint
        }
        assert table.schema.equals(cut.schema.arrow, check_metadata=True)
        # One event date, read from the column the schema lands by.
        assert {stream.day[i] for i in records} == {cut.day}
        column = landing_of(cut.schema)[1]
        assert {t.date() for t in table.column(column).to_pylist()} == {cut.day}
        assert table.column("transaction_id").to_pylist() == [f"{o:016x}" for o in cut.offsets]
        assert 1 <= cut.rows <= limits.max_rows
        assert cut.value_bytes == int(stream.sizes[records].sum())
        assert cut.value_bytes <= limits.max_bytes or cut.rows == 1


def _random_ends(data: st.DataObject, count: int) -> list[int]:
    points = data.draw(st.sets(st.integers(1, max(count - 1, 1)), max_size=count))
    return [*sorted(p for p in points if p < count), count]


@given(_streams(), _limits, st.data())
def test_cuts_across_schemas_do_not_depend_on_the_polls(
    stream: _Stream, limits: Limits, data: st.DataObject
) -> None:
    count = len(stream)
    full, log = _run(stream, limits, [count])
    for ends in (range(1, count + 1), _random_ends(data, count)):  # a record a poll, any polls
        other_full, other = _run(stream, limits, list(ends))
        assert other_full == full  # full files are cut as the records come
        assert _summary(other.cuts) == _summary(log.cuts)
    assert [(day, SCHEMAS[s].fingerprint, o) for day, s, o in _expected(stream, limits)] == [
        (c.day, c.schema.fingerprint, c.offsets.tolist()) for c in log.cuts
    ]
    _check_invariants(log.cuts, stream, limits)


@given(_streams(), _limits, st.data())
def test_cuts_keep_their_invariants_whatever_closes_them_early(
    stream: _Stream, limits: Limits, data: st.DataObject
) -> None:
    """Idle and memory-budget closes between polls change the cuts, never their rules."""
    log = PartitionLog(limits, int(stream.offsets[0]))
    start = 0
    for end in _random_ends(data, len(stream)):
        _poll(log, stream, start, end)
        start = end
        if data.draw(st.booleans()):
            log.close()
    log.close()
    _check_invariants(log.cuts, stream, limits)
    assert [letter.offset for letter in log.dead] == stream.offsets[stream.dead].tolist()
