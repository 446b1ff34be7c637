"""Streaming logic against the in-memory publisher and a fake wall clock (no broker needed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path

import fastavro
import numpy as np
import pytest

from simulator.clock import FakeWall, LagExceeded, SimClock
from simulator.engine import SliceSource
from simulator.partitioner import partitions_for
from simulator.publishers import MemoryPublisher
from simulator.schema import transaction_schema
from simulator.seeding import Streams
from simulator.stream import Streamer
from simulator.stream_job import plan_stream
from simulator.world import World, build_world
from tests.conftest import read_transactions, run, small_settings

START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> World:
    settings = small_settings(tmp_path_factory.mktemp("w"), cache_dir, slice_hours=1)
    return build_world(settings, Streams(7))


def _stream(
    world: World,
    hours: int,
    speed: float | None,
    publisher: MemoryPublisher,
    wall: FakeWall,
    max_lag: float | None = None,
    stop_after: int | None = None,
) -> Streamer:
    async def go() -> Streamer:
        await publisher.start()
        clock = SimClock(int(START.timestamp() * 1e6), speed, wall, max_lag)
        source = SliceSource(world, START, START + dt.timedelta(hours=hours))
        streamer = Streamer(world, source, publisher, clock, wall, chunk_rows=500, queue_chunks=2)
        stop = asyncio.Event()
        if stop_after is not None:
            original = publisher.publish

            async def counting(records):  # type: ignore[no-untyped-def]
                await original(records)
                if sum(len(v) for v in publisher.records.values()) >= stop_after:
                    stop.set()

            publisher.publish = counting  # type: ignore[method-assign]
        await streamer.run(stop)
        return streamer

    return asyncio.run(go())


def _decoded(publisher: MemoryPublisher) -> dict[int, list[dict]]:
    schema = transaction_schema().avro
    return {
        p: [fastavro.schemaless_reader(io.BytesIO(v), schema) for _, v, _ in rows]
        for p, rows in publisher.records.items()
    }


def test_speed_60_over_a_simulated_hour_takes_a_minute_of_wall_time(hourly: World) -> None:
    wall = FakeWall(1000.0)
    publisher = MemoryPublisher(partitions=6)
    streamer = _stream(hourly, 1, 60.0, publisher, wall)
    elapsed = wall.now() - 1000.0
    assert 58.0 < elapsed <= 60.0
    assert streamer.stats.released > 100
    assert streamer.stats.max_lag_s == 0.0


def test_every_speed_releases_the_same_records_in_the_same_partition_order(hourly: World) -> None:
    runs = []
    for speed in (None, 3600.0, 60.0):
        publisher = MemoryPublisher(partitions=6)
        _stream(hourly, 3, speed, publisher, FakeWall())
        runs.append(publisher.records)
    assert runs[0] == runs[1] == runs[2]


def test_keys_partitions_timestamps_and_values_match_generate(
    tmp_path: Path, cache_dir: Path
) -> None:
    settings = small_settings(tmp_path, cache_dir, days=1)
    run(settings)
    batch = read_transactions(tmp_path).drop_columns(["dt"])
    world = build_world(settings, Streams(7))
    publisher = MemoryPublisher(partitions=12)
    wall = FakeWall()

    async def go() -> None:
        await publisher.start()
        clock = SimClock(int(START.timestamp() * 1e6), None, wall)
        source = SliceSource(world, START, START + dt.timedelta(days=1))
        await Streamer(world, source, publisher, clock, wall).run(asyncio.Event())

    asyncio.run(go())
    decoded = _decoded(publisher)
    assert sum(len(v) for v in decoded.values()) == batch.num_rows
    expected_partition = partitions_for(batch.column("card_id").combine_chunks(), 12)
    rows = batch.to_pylist()
    for p, records in decoded.items():
        mine = [r for r, q in zip(rows, expected_partition.tolist(), strict=True) if q == p]
        assert records == mine
        keys = [k for k, _, _ in publisher.records[p]]
        assert keys == [r["card_id"].encode() for r in mine]
        stamps = [t for _, _, t in publisher.records[p]]
        assert stamps == [int(r["event_time"].timestamp() * 1000) for r in mine]


def test_a_slow_destination_shows_as_lag(hourly: World) -> None:
    wall = FakeWall()
    slow = MemoryPublisher(partitions=6, delay_s=0.5, sleep=wall.sleep)
    streamer = _stream(hourly, 1, 3600.0, slow, wall)
    # Half a wall second per publish at 3,600x is half a simulated hour behind, and more.
    assert streamer.stats.max_lag_s > 1000


def test_max_lag_fails_loudly_instead_of_drifting(hourly: World) -> None:
    wall = FakeWall()
    slow = MemoryPublisher(partitions=6, delay_s=0.5, sleep=wall.sleep)
    with pytest.raises(LagExceeded, match="behind schedule"):
        _stream(hourly, 1, 3600.0, slow, wall, max_lag=60.0)


def test_stop_releases_nothing_more_and_flushes(hourly: World) -> None:
    publisher = MemoryPublisher(partitions=6)
    streamer = _stream(hourly, 3, None, publisher, FakeWall(), stop_after=600)
    released = sum(len(v) for v in publisher.records.values())
    assert streamer.stats.stopped_early
    assert streamer.stats.released == released
    assert 600 <= released < 1500
    assert publisher.flushed == 1


def test_live_plan_starts_in_the_current_slice() -> None:
    settings = small_settings(Path("unused"), Path("unused"), slice_hours=6, days=1)
    now = dt.datetime(2026, 11, 25, 14, 37, 5, tzinfo=dt.UTC)
    plan = plan_stream(settings, now)
    assert plan.slice_start == dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    assert plan.release_from == now
    assert plan.end == now + dt.timedelta(days=1)
    replay = plan_stream(settings, None)
    assert replay.slice_start == replay.release_from == START


def test_fake_wall_refuses_to_go_back() -> None:
    with pytest.raises(ValueError, match="backwards"):
        FakeWall().jump(-1)
    assert np.isclose(SimClock(0, 60.0, FakeWall(5.0)).due(60_000_000), 6.0)
