"""Hypothesis properties of the building blocks: sampling, ids, round trips, the event core."""

from __future__ import annotations

import datetime as dt
import io

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.units import from_us, to_us
from schemas.event import transaction_schema
from simulator.core.environment import Environment
from simulator.core.ids import hex_ids, mix64, pack_keys
from simulator.core.sampling import Segments, apportion, zipf_weights
from simulator.core.seeding import Streams
from tests.strategies import transactions, uint64s


@given(st.lists(transactions(), min_size=1, max_size=20))
def test_event_avro_event_round_trip(records: list[dict]) -> None:
    schema = transaction_schema()
    buffer = io.BytesIO()
    for record in records:
        fastavro.schemaless_writer(buffer, schema.avro, record)
    buffer.seek(0)
    back = [fastavro.schemaless_reader(buffer, schema.avro) for _ in records]
    assert back == records


@given(st.lists(transactions(), min_size=1, max_size=20))
def test_arrow_parquet_arrow_round_trip(records: list[dict]) -> None:
    schema = transaction_schema().arrow
    table = pa.Table.from_pylist(records, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    sink.seek(0)
    back = pq.read_table(sink)
    assert back.equals(table)
    assert back.to_pylist() == records


@given(st.lists(uint64s(), unique=True, max_size=200), uint64s())
def test_mix64_is_a_bijection(values: list[int], secret: int) -> None:
    mixed = mix64(np.array(values, dtype=np.uint64), secret)
    assert len(set(mixed.tolist())) == len(values)


@given(st.lists(uint64s(), max_size=100))
def test_hex_ids_round_trip(values: list[int]) -> None:
    ids = hex_ids(np.array(values, dtype=np.uint64)).to_pylist()
    assert [int(s, 16) for s in ids] == values
    assert all(len(s) == 16 for s in ids)


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
def test_alias_picks_follow_the_weights(weights: list[float], seed: int) -> None:
    w = np.array(weights)
    segments = Segments.build(np.zeros(len(w), dtype=np.int64), w)
    rng = np.random.default_rng(seed)
    n = 20_000
    counts = np.bincount(
        segments.pick(np.zeros(n, dtype=np.int64), rng.random(n)), minlength=len(w)
    )
    expected = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
    assert np.all(np.abs(counts / n - expected) < 5 * np.sqrt(expected * (1 - expected) / n) + 1e-9)
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
    if sum(weights) <= 0:
        return
    parts = apportion(total, weights)
    assert parts.sum() == total
    exact = total * np.array(weights) / sum(weights)
    assert np.all(np.abs(parts - exact) < 1.0 + 1e-9)


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
    env.run()
    assert seen == sorted(seen)
    assert len(seen) == len(plan)


def test_environment_refuses_the_past_and_stops_at_until() -> None:
    env = Environment(100)
    ran: list[int] = []
    env.schedule(150, lambda e: ran.append(e.now_us))
    env.schedule(250, lambda e: ran.append(e.now_us))
    env.run(until_us=200)
    assert ran == [150]
    assert env.now_us == 200
    with pytest.raises(ValueError, match="before now"):
        env.schedule(199, lambda e: None)


@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_microsecond_conversions_are_exact(moment: dt.datetime) -> None:
    assert from_us(to_us(moment)) == moment
