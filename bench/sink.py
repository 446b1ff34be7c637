"""Benchmark of `txnsim-sink`: Kafka -> Parquet on a local S3 server, one process.

Prints one JSON object with, measured in the same run on the same records:

* ``landed_events_per_s``: rows landed per second by one `txnsim-sink --until-caught-up`
  process (consume, decode, Parquet zstd, conditional PUT to S3, commit), from its own
  timer, which starts before it connects;
* ``decode_only_events_per_s``: the columnar Avro decoder alone on the same values
  (the baseline), and fastavro's per-record reader on a sample, for context;
* ``consume_only_events_per_s``: librdkafka's batched ``consume()`` alone on the topic;
* ``floor_events_per_s``: the floor the sink is held to (issue 13: 150,000 events/s
  and 0.8x of consume-only, on 2M events in 12 partitions).

The topic is filled from `txnsim generate` output, encoded by the stream's encoder and
partitioned by card like `txnsim stream` does (faster than pacing a stream). The broker
comes from KAFKA_BOOTSTRAP_SERVERS or scripts/kafka-local; S3 is moto on 127.0.0.1.
Usage: python bench/sink.py [--cardholders 200000] [--days 1] [--partitions 6]
(issue 13's floor: ``--cardholders 220000 --days 7 --partitions 12``, about 2M events)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from bench.sink_topic import PARTITIONS, fill_topic, generate_day

    parser = argparse.ArgumentParser()
    parser.add_argument("--cardholders", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    args = parser.parse_args()

    from schemas.avro_decode import TableDecoder
    from schemas.avro_records import RecordDecoder
    from schemas.event import transaction_schema
    from schemas.framing import RawAvro
    from tests.kafka_broker import ensure_kafka
    from tests.s3_server import start_s3_server
    from tests.sink_topics import sink_command, sink_env

    work = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    day = generate_day(args.cardholders, work, args.days, args.partitions)
    table, values = day.table, day.values
    schema = transaction_schema()

    # Baseline: decoding alone, in polls of the sink's default size.
    decoder = TableDecoder(schema, RawAvro())
    began = time.perf_counter()
    for lo in range(0, len(values), 20_000):
        decoder.decode(values[lo : lo + 20_000])
    decode_s = time.perf_counter() - began
    # Baseline: Parquet encoding alone (the sink's writer settings), in files of one partition.
    from schemas.parquet import ParquetFormat, parquet_bytes

    writer = ParquetFormat(row_group_size=131_072, compression="zstd", compression_level=3)
    began = time.perf_counter()
    owner = np.asarray(day.partitions)
    for p in range(args.partitions):
        parquet_bytes(table.filter(pa.array(owner == p)), writer, None)
    parquet_s = time.perf_counter() - began
    sample = values[:20_000]
    reference = RecordDecoder(schema, RawAvro())
    began = time.perf_counter()
    for value in sample:
        reference.decode(value)
    fastavro_s = time.perf_counter() - began

    bootstrap, stop_kafka = ensure_kafka()
    s3 = start_s3_server()
    try:
        topic = fill_topic(bootstrap, day, "bench-sink")
        consume_s = _consume_only(bootstrap, topic, len(values))
        bucket = s3.bucket(f"bench-{uuid.uuid4().hex[:8]}")
        began = time.perf_counter()
        command = sink_command(
            bootstrap, topic, "bench", f"s3://{bucket}/lake",
            "--until-caught-up", "--log-level", "WARNING",
        )  # fmt: skip
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**sink_env(), **s3.env()},
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
        "days": args.days,
        "partitions": args.partitions,
        "events": len(values),
        "rows_landed": summary["rows_landed"],
        "files_landed": summary["files_landed"],
        "landed_events_per_s": round(landed),
        "landed_events_per_s_incl_process_start": round(summary["rows_landed"] / wall_s),
        "decode_only_events_per_s": round(len(values) / decode_s),
        "fastavro_per_record_events_per_s": round(len(sample) / fastavro_s),
        "consume_only_events_per_s": round(len(values) / consume_s),
        "parquet_only_rows_per_s": round(len(values) / parquet_s),
        "ratio_to_decode_only": round(landed / (len(values) / decode_s), 3),
        "ratio_to_consume_only": round(landed / (len(values) / consume_s), 3),
        "floor_events_per_s": 150_000,
        "seconds": {"sink": summary["seconds"], "sink_wall": round(wall_s, 2)},
    }
    print(json.dumps(report, indent=2))


def _consume_only(bootstrap: str, topic: str, count: int) -> float:
    """Seconds for librdkafka to hand every record's value to Python, nothing else.

    Polled in batches of the sink's own default size (``kafka.poll_records``).
    """
    from confluent_kafka import Consumer

    from consumers.settings import KafkaSettings

    batch = KafkaSettings.model_fields["poll_records"].default

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-consume-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    began = None
    try:
        while seen < count:
            messages = consumer.consume(num_messages=batch, timeout=1.0)
            if messages and began is None:
                began = time.perf_counter()
            seen += len([m.value() for m in messages])
    finally:
        consumer.close()
    return time.perf_counter() - (began or time.perf_counter())


if __name__ == "__main__":
    main()
