"""Polled records into the partition logs: the writer schema, then a decode.

Each record's writer schema is found by :mod:`consumers.writer_schemas` (its fingerprint
header, or its wire-format schema id in the registry) among the known schemas
(transactions, full or public without the label fields, and fraud labels). Consecutive
records with one writer schema decode together, a whole run at once; a record that does
not decode, or whose schema cannot be resolved, becomes a dead letter.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from consumers.dead_letters import from_message
from consumers.errors import KafkaUnavailable
from consumers.landing import PartitionLog
from consumers.stats import SinkStats
from consumers.writer_schemas import Unresolved, WriterSchemas
from schemas.avro_decode import Decoded

__all__ = ["Intake"]

log = logging.getLogger("txnsim.sink")


class Intake:
    """Decodes polled librdkafka messages into their partitions' logs.

    Args:
        stats: The run's counters.
        schemas: Resolves each record's writer schema.
    """

    def __init__(self, stats: SinkStats, schemas: WriterSchemas) -> None:
        self._stats = stats
        self._schemas = schemas

    def ingest(
        self,
        messages: list[Any],
        logs: dict[int, PartitionLog],
        ends: dict[int, int] | None,
        now: float,
    ) -> None:
        """Add ``messages`` to the logs of their partitions.

        Args:
            messages: One poll's messages.
            logs: The logs of the partitions assigned; others' messages are dropped.
            ends: With ``until_caught_up``, the end offsets: records past them are dropped.
            now: A monotonic time, for the age of open files.

        Raises:
            KafkaUnavailable: On a fatal consumer error.
            RegistryUnavailable: If the Schema Registry stays down past its retries
                (nothing of this poll is held, so nothing past it is committed).
        """
        by_partition: dict[int, list[Any]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaUnavailable(f"fatal consumer error: {error}")
                log.warning("consumer error", extra={"error": str(error)})
                continue
            by_partition.setdefault(message.partition(), []).append(message)
        for partition, batch in by_partition.items():
            partition_log = logs.get(partition)
            if partition_log is None:  # revoked within this poll
                continue
            if ends is not None:
                end = ends.get(partition, 0)
                batch = [m for m in batch if m.offset() < end]
                if not batch:
                    continue
            self._stats.count_consumed(len(batch))
            self._add(partition_log, batch, now)

    def _add(self, partition_log: PartitionLog, batch: list[Any], now: float) -> None:
        # Runs of consecutive records with one writer, in offset order.
        keys = [self._schemas.key(m) for m in batch]
        bounds = [0, *(i for i in range(1, len(keys)) if keys[i] != keys[i - 1])]
        for lo, hi in zip(bounds, [*bounds[1:], len(batch)], strict=True):
            run = batch[lo:hi]
            values = [m.value() or b"" for m in run]
            offsets = np.fromiter((m.offset() for m in run), dtype=np.int64, count=len(run))
            sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            resolved = self._schemas.resolve(keys[lo])
            if isinstance(resolved, Unresolved):
                dead = [from_message(message, resolved) for message in run]
                partition_log.add(offsets, sizes, _nothing(len(run), resolved), dead, now)
                continue
            schema, decoder = resolved
            decoded = decoder.decode(values)
            dead = [from_message(run[index], reason) for index, reason in decoded.errors]
            partition_log.add(offsets, sizes, decoded, dead, now, schema)


def _nothing(count: int, reason: str) -> Decoded:
    """The outcome of ``count`` values none of which can be decoded, for ``reason``."""
    return Decoded(
        table=pa.table({}),
        rows=np.empty(0, dtype=np.int64),
        errors=[(index, reason) for index in range(count)],
    )
