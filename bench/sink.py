"""Benchmark of `txnsim-sink`: Kafka -> Parquet on a local S3 server, one process.

Prints one JSON object with, measured in the same run on the same records:

* ``landed_events_per_s``: rows landed per second by one `txnsim-sink --until-caught-up`
  process (consume, decode, Parquet zstd, conditional PUT to S3, commit), from its own
  timer, which starts before it connects;
* ``decode_only_events_per_s``: the columnar Avro decoder alone on the same values
  (the baseline), and fastavro's per-record reader on a sample, for context;
* ``floor_events_per_s``: the issue's floor (60,000).

The topic is filled from `txnsim generate` output, encoded by the stream's encoder and
partitioned by card like `txnsim stream` does (faster than pacing a stream). The broker
comes from KAFKA_BOOTSTRAP_SERVERS or scripts/kafka-local; S3 is moto on 127.0.0.1.
Usage: python bench/sink.py [--cardholders 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTITIONS = 6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cardholders", type=int, default=200_000)
    args = parser.parse_args()

    import pyarrow.dataset as ds
    from confluent_kafka import Producer

    from simulator.avro_codec import RawAvro, RecordDecoder, TableEncoder
    from simulator.avro_decode import TableDecoder
    from simulator.generate import generate
    from simulator.partitioner import partitions_for
    from simulator.schema import transaction_schema
    from simulator.seeding import Streams
    from simulator.settings import load_settings
    from tests.kafka_broker import ensure_kafka
    from tests.s3_server import start_s3_server

    work = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    settings = load_settings(
        None,
        {
            "seed": 7,
            "days": 1,
            "out": str(work / "batch"),
            "cache_dir": str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"),
            "population": {"cardholders": args.cardholders},
        },
        environ=False,
    )
    generate(settings, Streams(7), seed_source="configured")
    table = ds.dataset(work / "batch" / "transactions", format="parquet", partitioning="hive")
    table = table.to_table().drop_columns(["dt"])
    schema = transaction_schema()
    values = TableEncoder(schema, RawAvro()).encode(table)
    keys = table.column("card_id").to_pylist()
    partition_of = partitions_for(table.column("card_id").combine_chunks(), PARTITIONS).tolist()

    # Baseline: decoding alone, in polls of the sink's default size.
    decoder = TableDecoder(schema, RawAvro())
    began = time.perf_counter()
    for lo in range(0, len(values), 20_000):
        decoder.decode(values[lo : lo + 20_000])
    decode_s = time.perf_counter() - began
    sample = values[:20_000]
    reference = RecordDecoder(schema, RawAvro())
    began = time.perf_counter()
    for value in sample:
        reference.decode(value)
    fastavro_s = time.perf_counter() - began

    bootstrap, stop_kafka = ensure_kafka()
    s3 = start_s3_server()
    try:
        topic = f"bench-sink-{uuid.uuid4().hex[:8]}"
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(60)
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 20,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        for value, key, partition in zip(values, keys, partition_of, strict=True):
            producer.produce(topic, value=value, key=key.encode(), partition=partition)
            producer.poll(0)
        producer.flush(120)

        bucket = s3.bucket(f"bench-{uuid.uuid4().hex[:8]}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TXNSIM_", "AWS_"))}
        began = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "consumers",
                "--bootstrap-servers",
                bootstrap,
                "--topic",
                topic,
                "--group",
                "bench",
                "--dest",
                f"s3://{bucket}/lake",
                "--until-caught-up",
                "--log-level",
                "WARNING",
            ],
            capture_output=True,
            text=True,
            env={**env, **s3.env()},
            check=True,
        )
        wall_s = time.perf_counter() - began
        summary = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        s3.stop()
        stop_kafka()

    landed = summary["rows_landed"] / summary["seconds"]
    report = {
        "benchmark": "sink",
        "cardholders": args.cardholders,
        "events": len(values),
        "rows_landed": summary["rows_landed"],
        "files_landed": summary["files_landed"],
        "landed_events_per_s": round(landed),
        "landed_events_per_s_incl_process_start": round(summary["rows_landed"] / wall_s),
        "decode_only_events_per_s": round(len(values) / decode_s),
        "fastavro_per_record_events_per_s": round(len(sample) / fastavro_s),
        "ratio_to_decode_only": round(landed / (len(values) / decode_s), 3),
        "floor_events_per_s": 60_000,
        "seconds": {"sink": summary["seconds"], "sink_wall": round(wall_s, 2)},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
