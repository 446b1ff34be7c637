"""Benchmark of `txnsim stream --speed max` into a real local Kafka broker.

Prints one JSON object. On the same simulated day, in the same run:

* ``memory``: the whole stream pipeline (simulation, encoding, release) into the
  in-memory publisher: the ceiling the Kafka deliveries are measured against;
* ``idempotent``: into Kafka, acks=all, idempotent producer, no transactions;
* ``exactly_once``: into Kafka in transactions (the default delivery), with the
  progress record per transaction;
* ``produce_only``: the producer alone: the idempotent run's transaction records,
  encoded beforehand (the chunks the stream hands its publisher), published into a
  fresh topic with the same client and settings;
* ``encode_only`` and ``simulate_only``: the encoder and the simulation alone.

Each Kafka figure is events/s from the first slice to the last commit (world build and
connect excluded) and its ratio to ``memory``. Each mode runs ``--repeat`` times; the
median is reported with every run's figure.

The broker comes from KAFKA_BOOTSTRAP_SERVERS or is started with scripts/kafka-local.
Usage: python bench/stream.py [--cardholders 100000] [--days 1] [--repeat 3] [--workers 2]
       [--compression-level 1]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.settings.delivery import KafkaConfig
    from simulator.settings.models import Settings
    from simulator.stream.records import OutRecords

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cardholders", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=1, help="lanes of the simulation (txnsim's --workers)"
    )
    parser.add_argument(
        "--compression-level",
        type=int,
        default=None,
        help="kafka.compression_level (unset: the settings', where zstd runs at 1)",
    )
    args = parser.parse_args()

    from schemas.avro_encode import TableEncoder
    from schemas.event import public_transaction_schema
    from schemas.framing import RawAvro
    from simulator.model.engine import SliceSource
    from simulator.settings.loading import load_settings
    from simulator.settings.run import RunSeed, RunSpec
    from simulator.stream.job import run_stream
    from simulator.stream.publishers import MemoryPublisher
    from simulator.world.build import build_world
    from tests.kafka_broker import ensure_kafka

    bootstrap, stop = ensure_kafka()
    try:

        def settings_for(delivery: str) -> Settings:
            topic = f"bench-{delivery}-{uuid.uuid4().hex[:8]}"
            return load_settings(
                None,
                {
                    "seed": 7,
                    "days": args.days,
                    "workers": args.workers,
                    "cache_dir": str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"),
                    "population": {"cardholders": args.cardholders},
                    "kafka": {
                        "bootstrap_servers": bootstrap,
                        "topic": topic,
                        "labels_topic": f"{topic}-labels",
                        "delivery": delivery,
                        **(
                            {"compression_level": args.compression_level}
                            if args.compression_level is not None
                            else {}
                        ),
                    },
                    "stream": {"speed": "max"},
                },
                environ=False,
            )

        base = settings_for("idempotent")
        seed = RunSeed.from_settings(base)
        world = build_world(base, seed)
        start = dt.datetime.combine(base.start_date, dt.time(), tzinfo=dt.UTC)
        # The simulation alone over the same span (each slice's table built, as the
        # stream builds it): the stream's share that no delivery can make faster.
        began = time.perf_counter()
        simulated = 0
        with SliceSource(
            world, RunSpec.from_settings(base), seed, start, start + dt.timedelta(days=args.days)
        ) as source:
            for part in source:
                table = part.table
                simulated += table.num_rows
        simulate_s = time.perf_counter() - began
        encoder = TableEncoder(public_transaction_schema(), RawAvro())
        began = time.perf_counter()
        for lo in range(0, table.num_rows, base.stream.chunk_rows):
            encoder.encode(table.slice(lo, base.stream.chunk_rows))
        encode_s = time.perf_counter() - began

        kept = _Kept(partitions=base.kafka.partitions)
        run_stream(base, seed, publisher=kept, labels_publisher=MemoryPublisher())
        runs: dict[str, list[float]] = {
            "memory": [],
            "idempotent": [],
            "exactly_once": [],
            "produce_only": [],
        }
        events = 0
        for _ in range(args.repeat):
            memory = MemoryPublisher(partitions=base.kafka.partitions)
            labels = MemoryPublisher(partitions=base.kafka.partitions)
            stats = run_stream(base, seed, publisher=memory, labels_publisher=labels)
            runs["memory"].append(stats.released / stats.seconds)
            events = stats.released
            for delivery in ("idempotent", "exactly_once"):
                settings = settings_for(delivery)
                stats = run_stream(settings, RunSeed.from_settings(settings))
                assert stats.released == events, (delivery, stats.released, events)
                runs[delivery].append(stats.released / stats.seconds)
                # A run writes 100-200 MB of log: deleted, so every run meets the same broker.
                asyncio.run(_delete_topics(settings.kafka))
            settings = settings_for("idempotent")
            runs["produce_only"].append(asyncio.run(_produce_only(settings, kept.chunks)))
            asyncio.run(_delete_topics(settings.kafka))
            asyncio.set_event_loop(None)

        median = {name: statistics.median(values) for name, values in runs.items()}
        report = {
            "benchmark": "stream",
            "cardholders": args.cardholders,
            "days": args.days,
            "workers": args.workers,
            "compression_level": base.kafka.compression_level,
            "events": events,
            "repeat": args.repeat,
            "events_per_s": {name: round(value) for name, value in median.items()},
            "runs_events_per_s": {name: [round(v) for v in vs] for name, vs in runs.items()},
            "ratio_to_memory": {
                name: round(median[name] / median["memory"], 3)
                for name in ("idempotent", "exactly_once", "produce_only")
            },
            "exactly_once_over_idempotent": round(median["exactly_once"] / median["idempotent"], 3),
            "encode_only_events_per_s": round(table.num_rows / encode_s),
            "simulate_only_events_per_s": round(simulated / simulate_s),
        }
        print(json.dumps(report, indent=2))
    finally:
        stop()


class _Kept:
    """A publisher that keeps the chunks handed to it as they are (for ``produce_only``)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.chunks: list[OutRecords] = []

    async def start(self) -> None:
        """Nothing to connect."""

    async def publish(self, records: OutRecords) -> None:
        self.chunks.append(records)

    async def flush(self) -> None:
        """Nothing in flight."""

    async def stop(self) -> None:
        """Nothing to close."""


async def _produce_only(settings: Settings, chunks: list[OutRecords]) -> float:
    """Events/s of publishing ``chunks`` through the stream's Kafka publisher, to the last ack."""
    from schemas.framing import record_headers
    from simulator.stream.chunks import writer_schema
    from simulator.stream.publishers import KafkaPublisher

    headers = record_headers(writer_schema(settings.stream.labels))
    publisher = KafkaPublisher(settings.kafka, headers)
    await publisher.start()
    try:
        began = time.perf_counter()
        for chunk in chunks:
            await publisher.publish(chunk)
        await publisher.flush()
        seconds = time.perf_counter() - began
    finally:
        await publisher.stop()
    return sum(len(chunk) for chunk in chunks) / seconds


async def _delete_topics(config: KafkaConfig) -> None:
    """Delete a run's topics; a cluster that refuses (``delete.topic.enable=false``) keeps them."""
    from aiokafka.errors import KafkaError

    from simulator.stream.kafka_client import admin_client

    topics = [config.topic, config.labels_topic]
    try:
        async with admin_client(config) as admin:
            await admin.delete_topics(topics)
    except KafkaError as exc:
        print(f"bench: topics {topics} not deleted: {exc!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
