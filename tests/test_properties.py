"""Hypothesis properties of the building blocks: sampling, ids, round trips, the event core."""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any
from unittest.mock import patch

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from runtime.units import EPOCH, from_us, to_us
from schemas.avro_decode import TableDecoder
from schemas.avro_encode import TableEncoder
from schemas.avro_records import RecordDecoder
from schemas.event import transaction_schema
from schemas.framing import Framing
from schemas.parquet import COMPRESS_MIN_ROWS, ParquetFormat, parquet_bytes
from simulator.core import order
from simulator.core.environment import Environment
from simulator.core.gather import take2
from simulator.core.ids import hex_ids, mix64, pack_keys
from simulator.core.order import merged_order, stable_order, time_then_key
from simulator.core.sampling import (
    Segments,
    apportion,
    cdf,
    draw_categorical,
    search_sorted,
    zipf_weights,
)
from simulator.core.seeding import Streams
from tests.strategies import framings, transactions, uint64s

SCHEMA = transaction_schema()
_MASK64 = 2**64 - 1


def _fastavro(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA.avro, record)
    return out.getvalue()


@given(st.lists(transactions(), min_size=1, max_size=8), framings())
def test_event_avro_event_round_trip(records: list[dict[str, Any]], framing: Framing) -> None:
    """Our columnar encoder writes fastavro's bytes; both our decoders read the events back."""
    table = pa.Table.from_pylist(records, schema=SCHEMA.arrow)
    values = TableEncoder(SCHEMA, framing).encode(table)
    assert values == [framing.frame(_fastavro(record)) for record in records]
    reader = RecordDecoder(SCHEMA, framing)
    assert [reader.decode(value) for value in values] == records
    decoded = TableDecoder(SCHEMA, framing).decode(values)
    assert decoded.errors == []
    assert decoded.rows.tolist() == list(range(len(records)))
    assert decoded.table.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert decoded.table.to_pylist() == records


@given(
    st.lists(transactions(), min_size=1, max_size=12),
    st.integers(1, 5),
    st.sampled_from(["zstd", "snappy", "gzip", "none"]),
    st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8), max_size=2),
)
def test_arrow_parquet_arrow_round_trip(
    records: list[dict[str, Any]], row_group_size: int, codec: str, extra: dict[bytes, bytes]
) -> None:
    """The lake's Parquet writer keeps rows, types, the schema's metadata and the footer's."""
    assume(not set(extra) & set(SCHEMA.arrow.metadata))
    table = pa.Table.from_pylist(records, schema=SCHEMA.arrow)
    writer = ParquetFormat(row_group_size=row_group_size, compression=codec)
    data = parquet_bytes(table, writer, extra)
    file = pq.ParquetFile(pa.BufferReader(data))
    assert file.metadata.num_row_groups == math.ceil(len(records) / row_group_size)
    back = file.read()
    assert back.schema.metadata == {**SCHEMA.arrow.metadata, **extra}
    assert back.equals(table)
    assert back.to_pylist() == records


@pytest.mark.parametrize(
    ("rows", "stored"), [(COMPRESS_MIN_ROWS - 1, "UNCOMPRESSED"), (COMPRESS_MIN_ROWS, "ZSTD")]
)
def test_small_files_are_stored_uncompressed(rows: int, stored: str) -> None:
    """A codec's fixed cost is most of a small file's write: under the bound, none is used."""
    table = pa.table({"n": pa.array(range(rows), pa.int64()), "s": pa.array(["x"] * rows)})
    data = parquet_bytes(table, ParquetFormat(compression="zstd"), None)
    file = pq.ParquetFile(pa.BufferReader(data))
    assert {file.metadata.row_group(0).column(c).compression for c in range(2)} == {stored}
    assert file.read().equals(table)


@given(
    st.sampled_from([0, 1, 255, 256, 2000]),
    st.integers(0, 2**32 - 1),
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=40),
)
def test_categorical_draws_and_searches_are_binary_searches(
    n: int, seed: int, weights: list[float]
) -> None:
    """The shortcuts for many draws (counted edges, sorted needles) change no index."""
    assume(sum(weights) > 0)
    cum = cdf(weights)
    rng = np.random.default_rng(seed)
    values = rng.random(n)
    values[: n // 4] = rng.choice(cum, n // 4)  # ties with the edges themselves
    expected = np.searchsorted(cum, values, side="right")
    assert np.array_equal(draw_categorical(values, cum), expected)
    for side in ("left", "right"):
        assert np.array_equal(
            search_sorted(cum, values, side), np.searchsorted(cum, values, side=side)
        )


@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50, unique=True),
    st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3), min_size=256, max_size=600),
)
def test_searches_of_integers_are_binary_searches(haystack: list[int], needles: list[int]) -> None:
    """Integer needles (segment keys) over the whole int64 range: the buckets are floats."""
    edges = np.array(sorted(haystack), dtype=np.int64)
    values = np.array(needles, dtype=np.int64)
    for side in ("left", "right"):
        assert np.array_equal(
            search_sorted(edges, values, side), np.searchsorted(edges, values, side=side)
        )


@pytest.mark.parametrize(
    "odd", [np.nan, np.inf, -np.inf, 0.5], ids=["nan", "inf", "-inf", "all-equal"]
)
def test_searches_with_odd_needles_are_binary_searches(odd: float) -> None:
    edges = np.linspace(0.0, 1.0, 11)
    values = np.full(300, 0.5) if odd == 0.5 else np.random.default_rng(1).random(300)
    values[::7] = odd
    for side in ("left", "right"):
        assert np.array_equal(
            search_sorted(edges, values, side), np.searchsorted(edges, values, side=side)
        )


@given(
    st.integers(1, 40),
    st.integers(1, 12),
    st.sampled_from([np.int16, np.int32, np.int64]),
    st.lists(st.tuples(st.integers(-(2**20), 2**20), st.integers(0, 2**20)), max_size=300),
)
def test_flat_takes_are_two_index_gathers(
    n_rows: int, n_cols: int, dtype: type, picks: list[tuple[int, int]]
) -> None:
    """Rows from the end (negative) too, and the narrow index types the world stores."""
    table = np.arange(n_rows * n_cols, dtype=np.float64).reshape(n_rows, n_cols) / 7
    rows = np.array([r % (2 * n_rows) - n_rows for r, _ in picks], dtype=dtype)
    cols = np.array([c % n_cols for _, c in picks], dtype=dtype)
    assert np.array_equal(take2(table, rows, cols), table[rows, cols])


def _splitmix64_finaliser(value: int) -> int:
    """The SplitMix64 output function, in exact integer arithmetic."""
    z = value
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@given(st.lists(uint64s(), unique=True, max_size=200), uint64s())
def test_mix64_is_the_keyed_splitmix64_finaliser(values: list[int], secret: int) -> None:
    mixed = mix64(np.array(values, dtype=np.uint64), secret).tolist()
    assert mixed == [_splitmix64_finaliser(value ^ secret) for value in values]
    assert len(set(mixed)) == len(values)  # a bijection: distinct positions, distinct ids


@given(st.lists(st.tuples(uint64s(), st.booleans()), max_size=100))
def test_hex_ids_round_trip(items: list[tuple[int, bool]]) -> None:
    values = np.array([v for v, _ in items], dtype=np.uint64)
    mask = np.array([m for _, m in items], dtype=bool)
    ids = hex_ids(values, mask).to_pylist()
    assert ids == [None if m else f"{v:016x}" for v, m in items]
    assert hex_ids(values).to_pylist() == [f"{v:016x}" for v, _ in items]


def test_packed_keys_are_distinct_across_positions() -> None:

    keys = np.concatenate(
        [
            pack_keys(dt.date(2026, 11, 24) + dt.timedelta(days=d), s, b, 50)
            for d in range(3)
            for s in range(2)
            for b in range(4)
        ]
    )
    assert len(np.unique(keys)) == len(keys)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=12), st.integers(0, 2**32))
def test_segment_picks_follow_the_weights(weights: list[float], seed: int) -> None:
    w = np.array(weights)
    segments = Segments.build(np.zeros(len(w), dtype=np.int64), w)
    rng = np.random.default_rng(seed)
    n = 20_000
    counts = np.bincount(
        segments.pick(np.zeros(n, dtype=np.int64), rng.random(n)), minlength=len(w)
    )
    expected = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
    # Five standard deviations, and three draws of slack for items too rare to count on.
    assert np.all(np.abs(counts - n * expected) <= 5 * np.sqrt(n * expected * (1 - expected)) + 3)
    assert np.all(counts[expected == 0] == 0)


@given(
    st.lists(st.tuples(st.integers(0, 5), st.floats(0.01, 100)), min_size=1, max_size=50),
    st.integers(0, 2**32),
)
def test_segments_pick_stays_in_segment(items: list[tuple[int, float]], seed: int) -> None:
    keys = np.array([k for k, _ in items])
    weights = np.array([w for _, w in items])
    segments = Segments.build(keys, weights)
    rng = np.random.default_rng(seed)
    for key in np.unique(keys):
        seg = segments.lookup(np.array([key]))
        picked = segments.pick(np.repeat(seg, 200), rng.random(200))
        assert set(keys[picked].tolist()) == {key}


@given(st.floats(0.5, 1.5))
def test_popularity_tail_matches_the_exponent(exponent: float) -> None:
    rng = np.random.default_rng(1)
    n = 400
    weights = zipf_weights(rng, n, exponent)
    segments = Segments.build(np.zeros(n, dtype=np.int64), weights)
    picks = segments.pick(np.zeros(400_000, dtype=np.int64), rng.random(400_000))
    counts = np.sort(np.bincount(picks, minlength=n))[::-1][:40]
    slope = np.polyfit(np.log(np.arange(1, 41)), np.log(counts), 1)[0]
    assert abs(slope + exponent) < 0.1


@given(st.integers(0, 10_000), st.lists(st.floats(0, 10), min_size=1, max_size=12))
def test_apportion_sums_and_is_proportional(total: int, weights: list[float]) -> None:
    assume(sum(weights) > 0)
    parts = apportion(total, weights)
    assert parts.sum() == total
    exact = total * np.array(weights) / np.sum(weights)
    floor = np.floor(exact)
    assert np.all((parts == floor) | (parts == floor + 1))
    # Largest remainder: every part rounded up has a remainder at least as large as every
    # part rounded down, and a tie goes to the earlier index.
    remainder = exact - floor
    up = np.flatnonzero(parts > floor)
    down = np.flatnonzero(parts == floor)
    for i in up.tolist():
        for j in down.tolist():
            assert remainder[i] > remainder[j] or (remainder[i] == remainder[j] and i < j)


def test_streams_depend_on_their_key_only() -> None:
    a = Streams(42)
    first = a.generator("behaviour", 3, 700).random(5)
    b = Streams(42)
    b.generator("new-component", 1).random(100)  # another component draws first
    assert np.array_equal(b.generator("behaviour", 3, 700).random(5), first)
    assert not np.array_equal(a.generator("behaviour", 4, 700).random(5), first)
    assert not np.array_equal(Streams(43).generator("behaviour", 3, 700).random(5), first)


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(-2, 2)), max_size=40))
def test_environment_runs_events_in_time_priority_sequence_order(
    plan: list[tuple[int, int]],
) -> None:
    env = Environment(0)
    seen: list[tuple[int, int, int]] = []
    for seq, (time, priority) in enumerate(plan):
        env.schedule(
            time, lambda e, t=time, p=priority, s=seq: seen.append((t, p, s)), priority=priority
        )
    while env.peek() is not None:  # as the slice engine drives it
        env.step()
    assert seen == sorted(seen)
    assert len(seen) == len(plan)


def test_environment_steps_one_event_at_a_time_and_refuses_the_past() -> None:
    env = Environment(100)
    ran: list[int] = []
    env.schedule(250, lambda e: ran.append(e.now_us))
    env.schedule(150, lambda e: ran.append(e.now_us))
    assert env.peek() == 150
    env.step()
    assert ran == [150]
    assert env.now_us == 150
    assert env.peek() == 250
    with pytest.raises(ValueError, match="before now"):
        env.schedule(149, lambda e: None)
    env.step()
    assert ran == [150, 250]
    assert env.peek() is None
    with pytest.raises(IndexError):
        env.step()


_offsets = st.timedeltas(min_value=-dt.timedelta(hours=23), max_value=dt.timedelta(hours=23))


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),  # noqa: DTZ001 - bounds are naive; values carry a zone
        max_value=dt.datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.builds(dt.timezone, _offsets),
    )
)
def test_microsecond_conversions_are_exact(moment: dt.datetime) -> None:
    us = to_us(moment)
    assert us == (moment - EPOCH) // dt.timedelta(microseconds=1)
    back = from_us(us)
    assert back == moment
    assert back.utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        to_us(moment.replace(tzinfo=None))


@pytest.mark.parametrize("radix_from", [order._RADIX_FROM, 0])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 40) | st.integers(0, 2**50) | st.integers(2**50, 2**51),
            st.integers(0, 2**63 - 1),
        ),
        max_size=300,
        unique_by=lambda r: r[1],
    )
)
def test_time_then_key_is_a_lexsort(radix_from: int, rows: list[tuple[int, int]]) -> None:
    """Mostly few distinct times, so most rows tie: the tie-break by key is what is tested.

    Both ways of ordering the times: a comparison sort, and radix passes (taken from
    ``order._RADIX_FROM`` rows on; 0 takes them for every size), and spans of times
    beyond the passes' 48 bits.
    """
    time = np.array([t for t, _ in rows], dtype=np.int64)
    key = np.array([k for _, k in rows], dtype=np.uint64)
    with patch.object(order, "_RADIX_FROM", radix_from):
        assert np.array_equal(time_then_key(time, key), np.lexsort((key, time)))


@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 40) | st.integers(0, 2**62),
            st.integers(0, 2**63 - 1),
            st.integers(0, 3),
        ),
        max_size=300,
        unique_by=lambda r: r[1],
    )
)
def test_merged_order_of_ordered_runs_is_a_lexsort(rows: list[tuple[int, int, int]]) -> None:
    """Up to four lanes' slices, each in (time, key) order, end to end; ties across them."""
    runs = [sorted((t, k) for t, k, lane in rows if lane == run) for run in range(4)]
    laid = [row for run in runs for row in run]
    time = np.array([t for t, _ in laid], dtype=np.int64)
    key = np.array([k for _, k in laid], dtype=np.uint64)
    assert np.array_equal(merged_order(time, key), np.lexsort((key, time)))


@pytest.mark.parametrize("radix_from", [order._RADIX_FROM, 0])
@given(values=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 5), max_size=300))
def test_stable_order_is_a_stable_argsort(radix_from: int, values: list[int]) -> None:
    array = np.array(values, dtype=np.int64)
    with patch.object(order, "_RADIX_FROM", radix_from):
        assert np.array_equal(stable_order(array), np.argsort(array, kind="stable"))


def test_a_days_order_by_radix_passes_is_numpys() -> None:
    """A day of rows as a slice has them: 130,000 microsecond times, some tied."""
    rng = np.random.default_rng(7)
    day = 1_795_478_400_000_000  # 2026-11-24, in microseconds since 1970
    time = day + rng.integers(0, 86_400_000_000, 130_000)
    time[::1000] = time[1::1000]  # ties
    key = rng.permutation(130_000).astype(np.uint64)
    assert np.array_equal(time_then_key(time, key), np.lexsort((key, time)))
    cards = rng.integers(0, 158_000, 130_000)
    assert np.array_equal(stable_order(cards), np.argsort(cards, kind="stable"))


def test_stable_order_refuses_what_it_cannot_pack() -> None:
    with pytest.raises(ValueError, match="2\\*\\*32"):
        stable_order(np.array([-1, 3]))
    with pytest.raises(ValueError, match="2\\*\\*32"):
        stable_order(np.array([2**32]))
