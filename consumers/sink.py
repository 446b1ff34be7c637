"""The sink loop: a consumer group member that lands a topic as date-partitioned Parquet.

Exactly once, by construction:

* A record is in a file named ``<topic>-<partition>-<first offset>``. Files are written
  create-only; an existing object is never replaced.
* Offsets are committed only after every file and dead letter before them is durable,
  so a crash at any point re-reads only records whose files may or may not exist.
  Commits are asynchronous (:mod:`consumers.membership`): a coordinator that moves or
  restarts does not stop the loop, which goes on landing and hears a signal.
* Files are cut by the records alone (see :mod:`consumers.landing`), so re-reading cuts
  the same files and finds them landed. A record's writer schema is part of the record
  (see :mod:`consumers.intake`), and a file holds one schema (its Arrow schema and
  recorded fingerprint are that schema's). Transactions land in ``transactions/`` by
  event date, labels in ``labels/`` by label date; a record that does not decode is a
  dead letter (:mod:`consumers.dead_letters`).
  When a file was cut otherwise (age, budget, catching up) or by another member before a
  rebalance, the landed object wins: its metadata says which offsets it holds, and those
  are dropped from what is held here (:mod:`consumers.lander`).
* On a rebalance, files in flight for the revoked partitions are waited for; what is
  held for them is dropped uncommitted, and their new owner re-reads it (and adopts a
  file that landed meanwhile) (:mod:`consumers.membership`).
* Parquet encoding and uploads run in two writer threads, one file per partition at a
  time, while the loop goes on reading; past the memory budget it waits for them.

The consumer is librdkafka's (confluent-kafka): aiokafka's consumer builds a Python
object per record and measured about 3x slower here, below the sink's floor.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from consumers.intake import Intake
from consumers.lander import Lander
from consumers.membership import Membership, confluent_consumer
from consumers.settings import SinkSettings
from consumers.stats import SinkStats
from consumers.writer_schemas import WriterSchemas
from schemas.errors import RegistryUnavailable
from schemas.registry import SchemaRegistry
from storage.base import ObjectStore
from storage.retry import Retrying

__all__ = ["Sink"]

log = logging.getLogger("txnsim.sink")


class Sink:
    """One member of the sink's consumer group.

    Args:
        settings: Validated settings.
        store: Where files land.
        consumer_factory: Builds the librdkafka consumer from its properties.
        monotonic: A monotonic clock (for file ages, progress and backoff).
    """

    def __init__(
        self,
        settings: SinkSettings,
        store: ObjectStore,
        consumer_factory: Callable[[dict[str, Any]], Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._stopping = False
        self._abandon = False
        self.stats = SinkStats()
        # One backoff for the destination and the registry; each its own give-up time.
        backoff = functools.partial(
            Retrying, base_s=settings.retry_base_s, cap_s=settings.retry_cap_s, monotonic=monotonic
        )
        retry = backoff(
            give_up_s=settings.retry_give_up_s,
            should_stop=lambda: self._abandon,
            on_retry=self.stats.count_retry,
        )
        self._registry = (
            SchemaRegistry.from_settings(settings.schema_registry)
            if settings.schema_registry is not None
            else None
        )
        self._registry_retry = backoff(
            give_up_s=settings.registry_give_up_s,
            should_stop=lambda: self._stopping,
            on_retry=self.stats.count_registry_retry,
            transient=(RegistryUnavailable,),
            service="schema registry",
        )
        self._intake = Intake(self.stats, WriterSchemas(self._registry, self._registry_retry))
        self._lander = Lander(settings, store, self.stats, retry)
        self._members = Membership(
            settings,
            self.stats,
            consumer_factory or confluent_consumer,
            before_revoke=self._lander.drain,
            monotonic=monotonic,
        )

    def stop(self) -> None:
        """Ask the loop to stop; a second call also stops retrying the destination.

        The first call lets the current poll finish, lands what is held, commits and
        leaves the group; the second abandons retries of an unavailable destination
        (nothing uncommitted is lost: it is re-read).
        """
        if self._stopping:
            self._abandon = True
        self._stopping = True

    def run(self) -> SinkStats:
        """Consume and land until stopped (or caught up, with ``until_caught_up``).

        Raises:
            KafkaUnavailable: If the cluster does not answer within
                ``kafka.connect_timeout_s`` or the topic does not exist.
            SinkConflict: If a file's name is taken by something else (nothing is
                overwritten; the sink stops without committing past it).
            StoreError: On a permanent destination error.
            StoreUnavailable: If the destination stays down past ``retry_give_up_s``.
            RegistryUnavailable: If the Schema Registry stays down past
                ``registry_give_up_s`` (at start, or when a new schema id is looked up).
            RegistryError: If the registry refuses the sink's requests at start.
        """
        settings = self._settings
        members = self._members
        began = self._monotonic()
        if self._registry is not None:
            registry = self._registry
            self._registry_retry(registry.check, f"reaching the schema registry {registry.url}")
        members.connect()
        try:
            members.join()
            last_progress = began
            while not self._stopping:
                messages = members.consume()
                now = self._monotonic()
                self._intake.ingest(messages, members.logs, members.ends, now)
                self._cut_outside_records(now)
                # Over the memory budget: stop reading until the files in flight are landed.
                self._lander.land(
                    members.logs, wait=self._held_bytes() > settings.memory_budget_bytes
                )
                members.commit()
                if now - last_progress >= settings.progress_every_s:
                    last_progress = now
                    self._progress(now - began)
                if members.ends is not None and members.caught_up():
                    log.info("caught up with the end offsets seen at start")
                    break
            self._finish()
        finally:
            self._abandon = True  # a writer still retrying gives up: nothing is committed
            self._lander.close()
            self.stats.seconds = self._monotonic() - began
            if not members.close():
                log.warning(
                    "the consumer did not close in time (the broker is unreachable); "
                    "leaving without it: the group drops this member at its session timeout",
                    extra={"waited_s": members.patience_s},
                )
            if self._registry is not None:
                self._registry.close()
        log.info("sink stopped", extra=self.stats.as_json())
        return self.stats

    def _finish(self) -> None:
        """Land everything held and commit it (a clean stop or the end of a catch-up)."""
        members = self._members
        for partition_log in members.logs.values():
            partition_log.close()
        self._lander.land(members.logs, wait=True)
        members.commit()
        if not members.settle():
            # Exactly once still holds: the next run re-reads from the last confirmed
            # commit and adopts the files that landed since.
            log.warning(
                "the last commit was not confirmed; its records will be re-read",
                extra={"waited_s": members.patience_s},
            )

    def _held_bytes(self) -> int:
        return sum(partition_log.held_bytes for partition_log in self._members.logs.values())

    def _cut_outside_records(self, now: float) -> None:
        """Cut the files that age, catching up or the memory budget close."""
        settings = self._settings
        logs, ends = self._members.logs, self._members.ends
        positions = self._members.positions() if ends is not None else {}
        for partition, partition_log in logs.items():
            old = partition_log.open_age(now) >= settings.max_file_age_s
            reached = max(partition_log.next, positions.get(partition, -1))
            done = ends is not None and reached >= ends.get(partition, 0)
            if old or done:
                partition_log.close()
        total = self._held_bytes()
        while total > settings.memory_budget_bytes:
            largest = max(logs, key=lambda p: logs[p].open_bytes)
            freed = logs[largest].open_bytes
            if freed == 0:
                break
            logs[largest].close()  # landed below, which frees it
            total -= freed

    def _progress(self, elapsed: float) -> None:
        log.info(
            "landing",
            extra={
                **self.stats.as_json(),
                "seconds": round(elapsed, 1),
                "rate_per_s": round(self.stats.consumed / elapsed) if elapsed else 0,
                "partitions": sorted(self._members.logs),
            },
        )
