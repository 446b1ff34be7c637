"""Polled records into the partition logs: writer schema by fingerprint, then a decode.

A record's ``txnsim.schema.fingerprint`` header picks its decoder among the known
schemas (transactions, full or public without the label fields, and fraud labels); a
missing or unknown fingerprint decodes with the full transaction schema. Consecutive
records with one writer schema decode together, a whole run at once; a record that does
not decode becomes a dead letter.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from consumers.dead_letters import from_message
from consumers.errors import KafkaUnavailable
from consumers.landing import PartitionLog
from consumers.stats import SinkStats
from schemas.avro_decode import TableDecoder
from schemas.event import EventSchema, known_schemas, transaction_schema
from schemas.framing import FINGERPRINT_HEADER, RawAvro

__all__ = ["Intake", "fingerprint_of"]

log = logging.getLogger("txnsim.sink")


class Intake:
    """Decodes polled librdkafka messages into their partitions' logs.

    Args:
        stats: The run's counters.
    """

    def __init__(self, stats: SinkStats) -> None:
        self._stats = stats
        #: Writer schemas by fingerprint (bytes, as in the header), each with its decoder.
        self._decoders: dict[bytes, tuple[EventSchema, TableDecoder]] = {
            fingerprint.encode(): (schema, TableDecoder(schema, RawAvro()))
            for fingerprint, schema in known_schemas().items()
        }
        self._fallback = self._decoders[transaction_schema().fingerprint.encode()]

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
        # Runs of consecutive records with one writer schema, in offset order.
        prints = [fingerprint_of(m.headers()) for m in batch]
        bounds = [0, *(i for i in range(1, len(prints)) if prints[i] != prints[i - 1])]
        for lo, hi in zip(bounds, [*bounds[1:], len(batch)], strict=True):
            schema, decoder = self._decoders.get(prints[lo] or b"", self._fallback)
            run = batch[lo:hi]
            values = [m.value() or b"" for m in run]
            offsets = np.fromiter((m.offset() for m in run), dtype=np.int64, count=len(run))
            sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            decoded = decoder.decode(values)
            dead = [from_message(run[index], reason) for index, reason in decoded.errors]
            partition_log.add(offsets, sizes, decoded, dead, now, schema)


def fingerprint_of(headers: list[tuple[str, bytes | None]] | None) -> bytes | None:
    """The writer schema's fingerprint from a record's headers, if it has one."""
    for name, value in headers or ():
        if name == FINGERPRINT_HEADER:
            return value
    return None
