"""Streaming logic against the in-memory publisher and a fake wall clock (no broker needed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pytest

from schemas.avro_records import RecordDecoder
from schemas.errors import DecodeError
from schemas.event import LABEL_FIELDS, public_transaction_schema, transaction_schema
from schemas.framing import RawAvro
from schemas.partitioner import partitions_for
from simulator.errors import LagExceeded
from simulator.model.engine import SliceSource
from simulator.settings.loading import load_settings
from simulator.settings.run import RunSeed, RunSpec
from simulator.stream.clock import FakeWall, SimClock
from simulator.stream.job import plan_stream, run_stream
from simulator.stream.publishers import MemoryPublisher
from simulator.stream.streamer import Streamer
from simulator.world.build import build_world
from tests.conftest import read_transactions, run, small_settings
from tests.fraud_runs import Built

START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
LABEL = transaction_schema("fraud_label")


def fraud_overrides(rate: float = 0.05, hours: float = 2.0) -> list[str]:
    """More fraud, detected and labelled within hours: labels inside a short stream."""
    scenarios = load_settings(None, {}, [], environ=False).fraud.scenarios
    return [f"fraud.target_rate={rate}"] + [
        f"fraud.scenarios.{name}.params.{delay}.median_hours={hours}"
        for name, scenario in scenarios.items()
        for delay in ("detection_delay", "label_delay")
        # Chargebacks (first-party fraud) keep their weeks: nothing to shorten there.
        if delay in scenario.params and name != "first_party"
    ]


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Built:
    settings = small_settings(tmp_path_factory.mktemp("w"), cache_dir, slice_hours=1)
    return Built(settings, build_world(settings, RunSeed.from_settings(settings)))


@pytest.fixture(scope="module")
def fraudy(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Built:
    settings = small_settings(
        tmp_path_factory.mktemp("f"), cache_dir, *fraud_overrides(), slice_hours=1
    )
    return Built(settings, build_world(settings, RunSeed.from_settings(settings)))


def _stream(
    built: Built,
    hours: int,
    speed: float | None,
    publisher: MemoryPublisher,
    wall: FakeWall,
    max_lag: float | None = None,
    stop_after: int | None = None,
    labels_publisher: MemoryPublisher | None = None,
    labels: str = "separate",
) -> Streamer:
    async def go() -> Streamer:
        await publisher.start()
        if labels_publisher is not None:
            await labels_publisher.start()
        clock = SimClock(int(START.timestamp() * 1e6), speed, wall, max_lag)
        end = START + dt.timedelta(hours=hours)
        source = SliceSource(built.world, built.spec, built.seed, START, end)
        streamer = Streamer(
            built.world,
            source,
            publisher,
            clock,
            wall,
            labels_publisher=labels_publisher,
            labels=labels,  # type: ignore[arg-type]
            end_us=int(end.timestamp() * 1e6),
            chunk_rows=500,
            queue_chunks=2,
        )
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


def _decoded(publisher: MemoryPublisher, full: bool = False) -> dict[int, list[dict]]:
    schema = (transaction_schema() if full else public_transaction_schema()).avro
    return {
        p: [fastavro.schemaless_reader(io.BytesIO(v), schema) for _, v, _ in rows]
        for p, rows in publisher.records.items()
    }


def test_speed_60_over_a_simulated_hour_takes_a_minute_of_wall_time(hourly: Built) -> None:
    wall = FakeWall(1000.0)
    publisher = MemoryPublisher(partitions=6)
    streamer = _stream(hourly, 1, 60.0, publisher, wall)
    elapsed = wall.now() - 1000.0
    assert 58.0 < elapsed <= 60.0
    assert streamer.stats.released > 100
    assert streamer.stats.max_lag_s == 0.0


def test_every_speed_releases_the_same_records_in_the_same_partition_order(hourly: Built) -> None:
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
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    publisher = MemoryPublisher(partitions=12)
    wall = FakeWall()

    async def go() -> None:
        await publisher.start()
        clock = SimClock(int(START.timestamp() * 1e6), None, wall)
        spec = RunSpec.from_settings(settings)
        source = SliceSource(world, spec, seed, START, START + dt.timedelta(days=1))
        await Streamer(world, source, publisher, clock, wall).run(asyncio.Event())

    asyncio.run(go())
    decoded = _decoded(publisher)  # the default: the public schema, no label fields
    assert sum(len(v) for v in decoded.values()) == batch.num_rows
    # Replacement cards (issued after fraud is detected) partition by their ids too.
    expected_partition = partitions_for(batch.column("card_id").combine_chunks(), 12)
    rows = batch.drop_columns(list(LABEL_FIELDS)).to_pylist()
    for p, records in decoded.items():
        mine = [r for r, q in zip(rows, expected_partition.tolist(), strict=True) if q == p]
        assert records == mine
        keys = [k for k, _, _ in publisher.records[p]]
        assert keys == [r["card_id"].encode() for r in mine]
        stamps = [t for _, _, t in publisher.records[p]]
        assert stamps == [int(r["event_time"].timestamp() * 1000) for r in mine]


def _journal(*publishers: tuple[str, MemoryPublisher], wall: FakeWall) -> list[tuple]:
    """Record every publish of ``publishers`` in one list: (name, key, value, ms, wall)."""
    journal: list[tuple] = []
    for name, publisher in publishers:
        original = publisher.publish

        async def recording(records, name=name, original=original):  # type: ignore[no-untyped-def]
            await original(records)
            for key, value, ts, _ in records.rows():
                journal.append((name, key, value, ts, wall.now()))

        publisher.publish = recording  # type: ignore[method-assign]
    return journal


def _decode(schema: dict, value: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(value), schema)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def direct_labels(fraudy: Built) -> list[dict]:
    """The labels a day's slices decide, due before its end: what the stream must release."""
    end = START + dt.timedelta(hours=24)
    tables = [
        part.labels for part in SliceSource(fraudy.world, fraudy.spec, fraudy.seed, START, end)
    ]
    labels = pa.concat_tables(tables).to_pylist()
    return [row for row in labels if row["label_time"] < end]


@pytest.mark.parametrize("speed", [None, 3600.0])
def test_labels_are_released_at_their_time_in_order_after_their_transactions(
    fraudy: Built, direct_labels: list[dict], speed: float | None
) -> None:
    wall = FakeWall(100.0)
    publisher, labels = MemoryPublisher(partitions=6), MemoryPublisher(partitions=3)
    journal = _journal(("tx", publisher), ("label", labels), wall=wall)
    streamer = _stream(fraudy, 24, speed, publisher, wall, labels_publisher=labels)
    released = [
        (key, _decode(LABEL.avro, value), ts, at)
        for name, key, value, ts, at in journal
        if name == "label"
    ]
    expected = direct_labels
    assert len(expected) > 20, "too few labels for a meaningful test"
    assert streamer.stats.labels_released == len(released) == len(expected)
    assert [r for _, r, _, _ in released] == sorted(expected, key=lambda r: r["label_time"])
    times = [r["label_time"] for _, r, _, _ in released]
    assert times == sorted(times)
    clock = SimClock(int(START.timestamp() * 1e6), speed, FakeWall(100.0))
    for key, record, ts, at in released:
        assert key == record["card_id"].encode()
        assert ts == int(record["label_time"].timestamp() * 1000)
        # Released when the clock reached its label time, not before.
        assert at >= clock.due(int(record["label_time"].timestamp() * 1e6)) - 1e-6
    position = {
        _decode(public_transaction_schema().avro, value)["transaction_id"]: i
        for i, (n, _, value, _, _) in enumerate(journal)
        if n == "tx"
    }
    for i, (n, _, value, _, _) in enumerate(journal):
        if n == "label":
            assert position[_decode(LABEL.avro, value)["transaction_id"]] < i
    # Labels partition by card id, like the transactions.
    for p, rows in labels.records.items():
        keys = pa.array([k.decode() for k, _, _ in rows])
        assert set(partitions_for(keys, 3).tolist()) == {p}


def test_separate_has_no_label_fields_and_inline_has_them(fraudy: Built) -> None:
    separate, inline = MemoryPublisher(partitions=4), MemoryPublisher(partitions=4)
    _stream(fraudy, 3, None, separate, FakeWall(), labels="separate")
    _stream(fraudy, 3, None, inline, FakeWall(), labels="inline")
    public = _decoded(separate)
    full = _decoded(inline, full=True)
    public_names = [f["name"] for f in public_transaction_schema().avro["fields"]]
    assert not set(LABEL_FIELDS) & set(public_names)
    assert all(list(r) == public_names for rows in public.values() for r in rows)
    # The same transactions, in the same order; inline adds exactly the label fields.
    stripped = {p: [{k: r[k] for k in public_names} for r in rows] for p, rows in full.items()}
    assert stripped == public
    frauds = [r for rows in full.values() for r in rows if r["is_fraud"]]
    assert frauds
    assert all(r["fraud_scenario"] for r in frauds)
    # A public value is not a valid full-schema value (fewer fields): no silent misreads.
    with pytest.raises(DecodeError):
        RecordDecoder(transaction_schema(), RawAvro()).decode(separate.records[0][0][1])


def test_a_slow_destination_shows_as_lag(hourly: Built) -> None:
    wall = FakeWall()
    slow = MemoryPublisher(partitions=6, delay_s=0.5, sleep=wall.sleep)
    streamer = _stream(hourly, 1, 3600.0, slow, wall)
    # Half a wall second per publish at 3,600x is half a simulated hour behind, and more.
    assert streamer.stats.max_lag_s > 1000


def test_max_lag_fails_loudly_instead_of_drifting(hourly: Built) -> None:
    wall = FakeWall()
    slow = MemoryPublisher(partitions=6, delay_s=0.5, sleep=wall.sleep)
    with pytest.raises(LagExceeded, match="behind schedule"):
        _stream(hourly, 1, 3600.0, slow, wall, max_lag=60.0)


def test_stop_releases_nothing_more_and_flushes(hourly: Built) -> None:
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


def test_a_stream_on_worker_processes_releases_the_records_of_one_process(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Records, partitions and labels of a stream on two lanes are one process's.

    The stream deals its blocks to lanes its own way (its process does more per row).
    """
    released = {}
    for workers in (1, 2):
        settings = small_settings(
            tmp_path / str(workers),
            cache_dir,
            *fraud_overrides(),
            "stream.speed=max",
            days=1,
            workers=workers,
        )
        transactions, labels = MemoryPublisher(partitions=12), MemoryPublisher(partitions=12)
        stats = run_stream(
            settings,
            RunSeed.from_settings(settings),
            publisher=transactions,
            labels_publisher=labels,
        )
        assert stats.released == sum(len(v) for v in transactions.records.values())
        released[workers] = (transactions.records, labels.records)
    assert sum(len(v) for v in released[1][0].values()) > 1000
    assert sum(len(v) for v in released[1][1].values()) > 0
    assert released[2] == released[1]
