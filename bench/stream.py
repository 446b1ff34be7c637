"""Benchmark of `txnsim stream --speed max` into a real local Kafka broker.

Prints one JSON object with, measured in the same run on the same simulated day:

* ``end_to_end``: events/s from the first slice to the last acknowledgement, through
  simulation, Avro encoding and the Kafka producer (acks=all, idempotent);
* ``encode_only``: events/s of the Avro encoder alone on the same rows (the baseline);
* ``ratio_to_encode_only``: end-to-end over encode-only (the floor asks for >= 0.8).

The broker comes from KAFKA_BOOTSTRAP_SERVERS or is started with scripts/kafka-local.
Usage: python bench/stream.py [--cardholders 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cardholders", type=int, default=20_000)
    args = parser.parse_args()

    from schemas.avro_encode import RawAvro, TableEncoder
    from schemas.event import transaction_schema
    from simulator.core.seeding import Streams
    from simulator.model.engine import SliceSource
    from simulator.settings.loading import load_settings
    from simulator.stream.job import run_stream
    from simulator.world.build import build_world
    from tests.kafka_broker import ensure_kafka

    bootstrap, stop = ensure_kafka()
    try:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        settings = load_settings(
            None,
            {
                "seed": 7,
                "days": 1,
                "cache_dir": str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"),
                "population": {"cardholders": args.cardholders},
                "kafka": {"bootstrap_servers": bootstrap, "topic": topic},
                "stream": {"speed": "max"},
            },
            environ=False,
        )
        world = build_world(settings, Streams(7))
        start = dt.datetime.combine(settings.start_date, dt.time(), tzinfo=dt.UTC)
        began = time.perf_counter()
        table = next(iter(SliceSource(world, start, start + dt.timedelta(days=1)))).table
        simulate_s = time.perf_counter() - began
        encoder = TableEncoder(transaction_schema(), RawAvro())
        began = time.perf_counter()
        for lo in range(0, table.num_rows, settings.stream.chunk_rows):
            encoder.encode(table.slice(lo, settings.stream.chunk_rows))
        encode_s = time.perf_counter() - began

        stats = run_stream(settings, Streams(7))
        # From the first slice to the last acknowledgement (world build and connect excluded).
        end_to_end = stats.released / stats.seconds
        encode_only = table.num_rows / encode_s
        report = {
            "benchmark": "stream",
            "cardholders": args.cardholders,
            "events": stats.released,
            "end_to_end_events_per_s": round(end_to_end),
            "encode_only_events_per_s": round(encode_only),
            "simulate_only_events_per_s": round(table.num_rows / simulate_s),
            "ratio_to_encode_only": round(end_to_end / encode_only, 3),
            "seconds": {
                "streaming": round(stats.seconds, 2),
                "encode": round(encode_s, 2),
                "simulate": round(simulate_s, 2),
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        stop()


if __name__ == "__main__":
    main()
