"""Landing cuts: Parquet encoding and create-only writes in writer threads, and adoption.

Each partition has at most one cut in flight: a landed file found in its place may cover
later offsets (it was cut otherwise, by age, budget or another member before a
rebalance), and those must be dropped from what is held before the next cut is named.
A landed file whose metadata says it is this sink's file for the same first offset is
adopted; anything else at that name is a :class:`~consumers.errors.SinkConflict`.
Dead letters land before the cuts of their partition, from the loop's thread.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from consumers.dead_letters import DeadLetterWriter
from consumers.errors import SinkConflict
from consumers.landing import Cut, PartitionLog, file_key
from consumers.settings import SinkSettings
from consumers.stats import SinkStats
from runtime.errors import TxnsimError
from schemas.event import landing_of
from schemas.parquet import ParquetFormat, parquet_bytes
from storage.base import ObjectStore
from storage.errors import StoreError
from storage.local import PARQUET_METADATA_PREFIX
from storage.retry import Retrying

__all__ = ["Lander", "Outcome"]

log = logging.getLogger("txnsim.sink")

#: The metadata keys that must match for a landed file to be adopted.
_IDENTITY = ("topic", "partition", "first-offset", "schema-fingerprint")


@dataclass(frozen=True)
class Outcome:
    """What landing a cut did: wrote it, or found a landed file covering offsets to here."""

    size: int = 0
    last_event_us: int = 0
    adopted_through: int | None = None


class Lander:
    """Moves the partitions' cuts and dead letters to the store.

    Args:
        settings: Validated settings (topic, Parquet writer, dead-letter prefix).
        store: Where files land.
        stats: The run's counters.
        retry: The retry policy for transient store failures.
    """

    def __init__(
        self, settings: SinkSettings, store: ObjectStore, stats: SinkStats, retry: Retrying
    ) -> None:
        self._topic = settings.kafka.topic
        self._store = store
        self._stats = stats
        self._retry = retry
        self._writer = ParquetFormat(
            row_group_size=settings.row_group_rows,
            compression="zstd",
            compression_level=settings.compression_level,
        )
        self._dead_letters = DeadLetterWriter(store, retry, self._topic, settings.dlq_prefix)
        # Parquet encoding and uploads overlap with consuming (Arrow and sockets release
        # the GIL); the loop still decides every cut and every commit.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="txnsim-land")
        self._in_flight: dict[int, tuple[Cut, Future[Outcome]]] = {}

    def land(self, logs: dict[int, PartitionLog], *, wait: bool = False) -> None:
        """Land dead letters now, and move each partition's cuts through the writer pool.

        With ``wait``, returns only when every cut held is landed.

        Raises:
            SinkConflict: If a file's name is taken by something else.
            StoreError: On a permanent destination error.
            StoreUnavailable: If the destination stays down past the retry policy.
        """
        for partition, partition_log in list(logs.items()):
            while partition_log.dead:
                if self._dead_letters.land(partition, partition_log.dead[0]):
                    self._stats.count_dead_letter()
                partition_log.dead.pop(0)
            while True:
                pending = self._in_flight.get(partition)
                if pending is not None:
                    cut, future = pending
                    if not wait and not future.done():
                        break
                    outcome = future.result()  # a conflict or store error surfaces here
                    del self._in_flight[partition]
                    self._settle(partition, partition_log, cut, outcome)
                if not partition_log.cuts:
                    break
                cut = partition_log.cuts[0]
                self._in_flight[partition] = (
                    cut,
                    self._pool.submit(self._land_cut, partition, cut),
                )
                if not wait:
                    break

    def drain(self, partitions: list[int]) -> None:
        """Wait for the cuts in flight for ``partitions`` (revoked: their outcome is moot)."""
        for partition in partitions:
            pending = self._in_flight.pop(partition, None)
            if pending is None:
                continue
            try:
                pending[1].result()
            except TxnsimError as exc:
                log.warning("a revoked partition's file failed", extra={"error": str(exc)})

    def close(self) -> None:
        """Wait for the writer threads; cuts not started yet are cancelled."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _settle(
        self, partition: int, partition_log: PartitionLog, cut: Cut, outcome: Outcome
    ) -> None:
        if outcome.adopted_through is not None:
            self._stats.count_adopted()
            partition_log.skip_through(outcome.adopted_through)
            return
        partition_log.cuts.pop(0)
        self._stats.count_file(partition, cut.rows, outcome.size, outcome.last_event_us)

    def _land_cut(self, partition: int, cut: Cut) -> Outcome:
        """Encode and land ``cut`` (in a writer thread); what happened."""
        key = file_key(landing_of(cut.schema)[0], cut.day, self._topic, partition, cut.first)
        metadata = {
            "topic": self._topic,
            "partition": str(partition),
            "first-offset": str(cut.first),
            "last-offset": str(cut.last),
            "rows": str(cut.rows),
            "schema-fingerprint": cut.schema.fingerprint,
        }
        table = cut.table()
        data = parquet_bytes(
            table,
            self._writer,
            {f"{PARQUET_METADATA_PREFIX}{k}".encode(): v.encode() for k, v in metadata.items()},
        )
        payload = data.to_pybytes()
        if self._retry(lambda: self._store.put_if_absent(key, payload, metadata), f"put {key}"):
            last_event_us = int(table.column("event_time")[-1].value)
            return Outcome(size=len(payload), last_event_us=last_event_us)
        existing = self._retry(lambda: self._store.head(key), f"head {key}")
        if existing is None:  # removed since the put: let the next round put it again
            raise StoreError(f"{key}: the put found an object, then the object was gone")
        ours = {k: metadata[k] for k in _IDENTITY}
        theirs = {k: existing.get(k) for k in ours}
        last = existing.get("last-offset", "")
        if theirs != ours or not last.isdigit():
            raise SinkConflict(
                f"{self._store.url}/{key} exists and is not this sink's file for offsets "
                f"{cut.first}..{cut.last}: expected {ours}, found {existing}; "
                "nothing was overwritten and nothing past it is committed"
            )
        log.info(
            "file already landed; adopting it",
            extra={"key": key, "ours": [cut.first, cut.last], "landed": [cut.first, int(last)]},
        )
        return Outcome(adopted_through=int(last))
