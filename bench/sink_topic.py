"""A day of `txnsim generate` output on a Kafka topic, keyed and partitioned like the stream.

Shared by the sink's benchmark and soak scripts: filling the topic straight from the
generated rows is much faster than pacing `txnsim stream`, and gives the same records.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

#: Partitions of the topic by default.
PARTITIONS = 6


@dataclass(frozen=True)
class GeneratedDay:
    """The rows of a generated day and their Kafka records."""

    table: pa.Table
    values: list[bytes]
    keys: list[bytes]
    partitions: list[int]
    partition_count: int


def generate_day(
    cardholders: int, work: Path, days: int = 1, partitions: int = PARTITIONS
) -> GeneratedDay:
    """Simulate ``days`` from 2026-11-24 (seed 7) into ``work/batch``; encode as the stream does.

    Each record goes to the partition the stream would give its card among ``partitions``.
    """
    import pyarrow.dataset as ds

    from schemas.avro_encode import TableEncoder
    from schemas.event import transaction_schema
    from schemas.framing import RawAvro
    from schemas.partitioner import partitions_for
    from simulator.batch.generate import generate
    from simulator.settings.loading import load_settings
    from simulator.settings.run import RunSeed

    settings = load_settings(
        None,
        {
            "seed": 7,
            "days": days,
            "out": str(work / "batch"),
            "cache_dir": str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"),
            "population": {"cardholders": cardholders},
        },
        environ=False,
    )
    generate(settings, RunSeed.from_settings(settings))
    table = ds.dataset(work / "batch" / "transactions", format="parquet", partitioning="hive")
    table = table.to_table().drop_columns(["dt"])
    card = table.column("card_id").combine_chunks()
    return GeneratedDay(
        table=table,
        values=TableEncoder(transaction_schema(), RawAvro()).encode(table),
        keys=[key.encode() for key in card.to_pylist()],
        partitions=partitions_for(card, partitions).tolist(),
        partition_count=partitions,
    )


def fill_topic(bootstrap: str, day: GeneratedDay, prefix: str) -> str:
    """Create a new topic of the day's partition count, produce the day onto it."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, day.partition_count, 1)])[topic].result(60)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for value, key, partition in zip(day.values, day.keys, day.partitions, strict=True):
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"could not deliver every record to {topic}")
    return topic
