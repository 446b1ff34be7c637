"""The sink loop: a consumer group member that lands a topic as date-partitioned Parquet.

Exactly once, by construction:

* A record is in a file named ``<topic>-<partition>-<first offset>``. Files are written
  create-only; an existing object is never replaced.
* Offsets are committed only after every file and dead letter before them is durable,
  so a crash at any point re-reads only records whose files may or may not exist.
* Files are cut by the records alone (see :mod:`consumers.landing`), so re-reading cuts
  the same files and finds them landed. A record's writer schema is part of the record:
  its ``txnsim.schema.fingerprint`` header picks the decoder among the known schemas
  (transactions, full or public without the label fields, and fraud labels), and a file
  holds one schema (its Arrow schema and recorded fingerprint are that schema's).
  Transactions land in ``transactions/`` by event date, labels in ``labels/`` by label
  date. A missing or unknown
  fingerprint decodes with the full schema, and a record that does not is a dead letter.
  When a file was cut otherwise (age, budget, catching up) or by another member before a
  rebalance, the landed object wins: its metadata says which offsets it holds, and those
  are dropped from what is held here.
* On a rebalance, files in flight for the revoked partitions are waited for; what is
  held for them is dropped uncommitted, and their new owner re-reads it (and adopts a
  file that landed meanwhile).
* Parquet encoding and uploads run in two writer threads, one file per partition at a
  time, while the loop goes on reading; past the memory budget it waits for them.

The consumer is librdkafka's (confluent-kafka): aiokafka's consumer builds a Python
object per record and measured about 3x slower here, below the sink's floor.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import orjson

from consumers import metrics
from consumers.errors import KafkaUnavailable, SinkConflict, SinkError, StoreError
from consumers.landing import Cut, DeadLetter, Limits, PartitionLog, file_key
from consumers.settings import SinkSettings
from consumers.store import PARQUET_METADATA_PREFIX, ObjectStore, Retrying
from schemas.avro_decode import TableDecoder
from schemas.event import EventSchema, known_schemas, landing_of, transaction_schema
from schemas.framing import FINGERPRINT_HEADER, RawAvro
from schemas.parquet import ParquetFormat, parquet_bytes

__all__ = ["Sink", "SinkStats"]

log = logging.getLogger("txnsim.sink")

T = TypeVar("T")

#: The header naming the writer schema's fingerprint (set by ``txnsim stream``).


@dataclass
class SinkStats:
    """Counters of one run (also exported as metrics)."""

    consumed: int = 0
    rows_landed: int = 0
    files_landed: int = 0
    bytes_landed: int = 0
    files_adopted: int = 0
    dead_letters: int = 0
    commits: int = 0
    store_retries: int = 0
    rebalances: int = 0
    seconds: float = 0.0
    #: Event time (epoch microseconds) of the last row landed, per partition.
    freshness_us: dict[int, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The counters for the summary line."""
        return {
            "consumed": self.consumed,
            "rows_landed": self.rows_landed,
            "files_landed": self.files_landed,
            "bytes_landed": self.bytes_landed,
            "files_adopted": self.files_adopted,
            "dead_letters": self.dead_letters,
            "commits": self.commits,
            "store_retries": self.store_retries,
            "rebalances": self.rebalances,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class _Outcome:
    """What landing a cut did: wrote it, or found a landed file covering offsets to here."""

    size: int = 0
    last_event_us: int = 0
    adopted_through: int | None = None


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
        self._store = store
        self._factory = consumer_factory or _confluent_consumer
        self._monotonic = monotonic
        self._schema = transaction_schema()
        #: Writer schemas by fingerprint (bytes, as in the header), each with its decoder.
        self._decoders: dict[bytes, tuple[EventSchema, TableDecoder]] = {
            fingerprint.encode(): (schema, TableDecoder(schema, RawAvro()))
            for fingerprint, schema in known_schemas().items()
        }
        self._fallback = self._decoders[self._schema.fingerprint.encode()]
        self._limits = Limits(settings.max_rows_per_file, settings.max_bytes_per_file)
        self._writer = ParquetFormat(
            row_group_size=settings.row_group_rows,
            compression="zstd",
            compression_level=settings.compression_level,
        )
        self._logs: dict[int, PartitionLog] = {}
        self._committed: dict[int, int] = {}
        self._ends: dict[int, int] | None = None
        self._paused: set[int] = set()
        self._stopping = False
        self._abandon = False
        self.stats = SinkStats()
        self._retry = Retrying(
            base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s,
            give_up_s=settings.retry_give_up_s,
            should_stop=lambda: self._abandon,
            on_retry=self._count_retry,
            monotonic=monotonic,
        )
        self._consumer: Any = None
        # Parquet encoding and uploads overlap with consuming (Arrow and sockets release
        # the GIL); the loop still decides every cut and every commit.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="txnsim-land")
        self._in_flight: dict[int, tuple[Cut, Future[_Outcome]]] = {}
        self._lock = threading.Lock()

    # --- Control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop; a second call also stops retrying the destination.

        The first call lets the current poll finish, lands what is held, commits and
        leaves the group; the second abandons retries of an unavailable destination
        (nothing uncommitted is lost: it is re-read).
        """
        if self._stopping:
            self._abandon = True
        self._stopping = True

    def _count_retry(self, _: Exception) -> None:
        with self._lock:  # called from writer threads
            self.stats.store_retries += 1
        metrics.STORE_RETRIES.inc()

    # --- Main loop -------------------------------------------------------------------------

    def run(self) -> SinkStats:
        """Consume and land until stopped (or caught up, with ``until_caught_up``).

        Raises:
            KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``
                or the topic does not exist.
            SinkConflict: If a file's name is taken by something else (nothing is
                overwritten; the sink stops without committing past it).
            StoreError: On a permanent destination error.
            StoreUnavailable: If the destination stays down past ``retry_give_up_s``.
        """
        settings = self._settings
        began = self._monotonic()
        self._consumer = self._factory(settings.kafka_options())
        try:
            partitions = self._check_topic()
            if settings.until_caught_up:
                self._ends = self._end_offsets(partitions)
                log.info("landing up to the end offsets seen at start", extra={"ends": self._ends})
            self._consumer.subscribe(
                [settings.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            last_progress = began
            while not self._stopping:
                messages = self._consumer.consume(num_messages=settings.poll_records, timeout=0.5)
                now = self._monotonic()
                self._ingest(messages, now)
                self._cut_outside_records(now)
                # Over the memory budget: stop reading until the files in flight are landed.
                self._land(wait=self._held_bytes() > settings.memory_budget_bytes)
                self._commit()
                if now - last_progress >= settings.progress_every_s:
                    last_progress = now
                    self._progress(now - began)
                if self._ends is not None and self._caught_up(partitions):
                    log.info("caught up with the end offsets seen at start")
                    break
            self._finish()
        finally:
            self._abandon = True  # a writer still retrying gives up: nothing is committed
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.stats.seconds = self._monotonic() - began
            self._consumer.close()
        log.info("sink stopped", extra=self.stats.as_json())
        return self.stats

    def _finish(self) -> None:
        """Land everything held and commit it (a clean stop or the end of a catch-up)."""
        for partition_log in self._logs.values():
            partition_log.close()
        self._land(wait=True)
        self._commit()

    # --- Kafka -----------------------------------------------------------------------------

    def _check_topic(self) -> list[int]:
        settings = self._settings
        from confluent_kafka import KafkaException

        try:
            metadata = self._consumer.list_topics(
                settings.topic, timeout=settings.connect_timeout_s
            )
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {settings.bootstrap_servers} within "
                f"{settings.connect_timeout_s:g} s (bootstrap_servers, connect_timeout_s): {exc}"
            ) from exc
        topic = metadata.topics.get(settings.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            why = topic.error if topic is not None else "not in the cluster metadata"
            raise KafkaUnavailable(f"topic {settings.topic!r} is not available: {why}")
        return sorted(topic.partitions)

    def _end_offsets(self, partitions: list[int]) -> dict[int, int]:
        return {p: self._watermarks(p, self._consumer)[1] for p in partitions}

    def _on_assign(self, consumer: Any, assigned: list[Any]) -> None:
        self.stats.rebalances += 1
        committed = self._committed_offsets([tp.partition for tp in assigned], consumer)
        for tp in committed:
            start = tp.offset
            if start < 0:  # nothing committed: the earliest retained offset
                start, _ = self._watermarks(tp.partition, consumer)
            self._logs[tp.partition] = PartitionLog(self._limits, start)
            self._committed[tp.partition] = start
        log.info(
            "partitions assigned",
            extra={"partitions": sorted(tp.partition for tp in assigned)},
        )

    def _on_revoke(self, _: Any, revoked: list[Any]) -> None:
        # A file in flight for these partitions is waited for (landed but uncommitted, the
        # next owner adopts it); what is held is dropped uncommitted and re-read from the
        # committed offsets by the partitions' next owner.
        self.stats.rebalances += 1
        self._drain([tp.partition for tp in revoked])
        for tp in revoked:
            self._logs.pop(tp.partition, None)
            self._committed.pop(tp.partition, None)
            self._paused.discard(tp.partition)
        log.info("partitions revoked", extra={"partitions": sorted(tp.partition for tp in revoked)})

    def _ingest(self, messages: list[Any], now: float) -> None:
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
            partition_log = self._logs.get(partition)
            if partition_log is None:  # revoked within this poll
                continue
            if self._ends is not None:
                end = self._ends.get(partition, 0)
                batch = [m for m in batch if m.offset() < end]
                if not batch:
                    continue
            self.stats.consumed += len(batch)
            metrics.CONSUMED.inc(len(batch))
            # Runs of consecutive records with one writer schema, in offset order.
            prints = [_fingerprint(m.headers()) for m in batch]
            bounds = [0, *(i for i in range(1, len(prints)) if prints[i] != prints[i - 1])]
            for lo, hi in zip(bounds, [*bounds[1:], len(batch)], strict=True):
                schema, decoder = self._decoders.get(prints[lo] or b"", self._fallback)
                run = batch[lo:hi]
                values = [m.value() or b"" for m in run]
                offsets = np.fromiter((m.offset() for m in run), dtype=np.int64, count=len(run))
                sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
                decoded = decoder.decode(values)
                dead = [_dead_letter(run[index], reason) for index, reason in decoded.errors]
                partition_log.add(offsets, sizes, decoded, dead, now, schema)

    def _held_bytes(self) -> int:
        return sum(partition_log.held_bytes for partition_log in self._logs.values())

    def _cut_outside_records(self, now: float) -> None:
        settings = self._settings
        for partition, partition_log in self._logs.items():
            old = partition_log.open_age(now) >= settings.max_file_age_s
            done = self._ends is not None and partition_log.next >= self._ends.get(partition, 0)
            if old or done:
                partition_log.close()
        total = self._held_bytes()
        while total > settings.memory_budget_bytes:
            largest = max(self._logs, key=lambda p: self._logs[p].open_bytes)
            freed = self._logs[largest].open_bytes
            if freed == 0:
                break
            self._logs[largest].close()  # landed below, which frees it
            total -= freed

    # --- Landing ---------------------------------------------------------------------------

    def _land(self, *, wait: bool = False) -> None:
        """Land dead letters now, and move each partition's cuts through the writer pool.

        One cut per partition is in flight at a time: a landed file found in its place may
        cover later offsets, which must be dropped before the next cut is named. With
        ``wait``, returns only when every cut held is landed.
        """
        for partition, partition_log in list(self._logs.items()):
            while partition_log.dead:
                self._land_dead_letter(partition, partition_log.dead[0])
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

    def _settle(
        self, partition: int, partition_log: PartitionLog, cut: Cut, outcome: _Outcome
    ) -> None:
        if outcome.adopted_through is not None:
            self.stats.files_adopted += 1
            metrics.ADOPTED.inc()
            partition_log.skip_through(outcome.adopted_through)
            return
        partition_log.cuts.pop(0)
        self.stats.files_landed += 1
        self.stats.rows_landed += cut.rows
        self.stats.bytes_landed += outcome.size
        self.stats.freshness_us[partition] = outcome.last_event_us
        metrics.FILES.inc()
        metrics.ROWS.inc(cut.rows)
        metrics.BYTES.inc(outcome.size)

    def _drain(self, partitions: list[int]) -> None:
        """Wait for the cuts in flight for ``partitions`` (revoked: their outcome is moot)."""
        for partition in partitions:
            pending = self._in_flight.pop(partition, None)
            if pending is None:
                continue
            try:
                pending[1].result()
            except SinkError as exc:
                log.warning("a revoked partition's file failed", extra={"error": str(exc)})

    def _land_cut(self, partition: int, cut: Cut) -> _Outcome:
        """Encode and land ``cut`` (in a writer thread); what happened."""
        settings = self._settings
        key = file_key(landing_of(cut.schema)[0], cut.day, settings.topic, partition, cut.first)
        metadata = {
            "topic": settings.topic,
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
            return _Outcome(size=len(payload), last_event_us=last_event_us)
        existing = self._retry(lambda: self._store.head(key), f"head {key}")
        if existing is None:  # removed since the put: let the next round put it again
            raise StoreError(f"{key}: the put found an object, then the object was gone")
        ours = {
            k: metadata[k] for k in ("topic", "partition", "first-offset", "schema-fingerprint")
        }
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
        return _Outcome(adopted_through=int(last))

    def _land_dead_letter(self, partition: int, letter: DeadLetter) -> None:
        settings = self._settings
        key = (
            f"{settings.dlq_prefix}/{settings.topic}/partition={partition:05d}/"
            f"{letter.offset:020d}.json"
        )
        metadata = {
            "topic": settings.topic,
            "partition": str(partition),
            "offset": str(letter.offset),
        }
        body = orjson.dumps(
            {
                "metadata": metadata,
                "error": letter.error,
                "timestamp_ms": letter.timestamp_ms,
                "key_base64": _b64(letter.key),
                "value_base64": _b64(letter.value),
                "headers": [[name, _b64(value)] for name, value in letter.headers],
            },
            option=orjson.OPT_SORT_KEYS,
        )
        created = self._retry(lambda: self._store.put_if_absent(key, body, metadata), f"put {key}")
        if created:
            self.stats.dead_letters += 1
            metrics.DEAD_LETTERS.inc()
            log.warning(
                "record dead-lettered",
                extra={"partition": partition, "offset": letter.offset, "error": letter.error},
            )

    def _commit(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        due = {
            partition: position
            for partition, partition_log in self._logs.items()
            if (position := partition_log.commit_position()) > self._committed.get(partition, -1)
        }
        if not due:
            return
        offsets = [TopicPartition(self._settings.topic, p, pos) for p, pos in due.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # E.g. a rebalance took the partitions: the files stay, the next owner adopts them.
            log.warning("commit failed; will retry", extra={"error": str(exc)})
            return
        self._committed.update(due)
        self.stats.commits += 1
        metrics.COMMITS.inc()
        for partition, position in due.items():
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._settings.topic, partition), cached=True
            )
            if high is not None and high >= 0:
                metrics.COMMIT_LAG.labels(partition=str(partition)).set(max(0, high - position))
            fresh = self.stats.freshness_us.get(partition)
            if fresh is not None:
                metrics.FRESHNESS.labels(partition=str(partition)).set(fresh / 1e6)
        if self._ends is not None:
            for partition, position in due.items():
                if position >= self._ends.get(partition, 0) and partition not in self._paused:
                    self._consumer.pause([TopicPartition(self._settings.topic, partition)])
                    self._paused.add(partition)

    def _caught_up(self, partitions: list[int]) -> bool:

        assert self._ends is not None
        if any(self._committed.get(p, -1) < self._ends[p] for p in self._logs):
            return False
        others = [p for p in partitions if p not in self._logs]
        if not others:
            return bool(self._logs) or all(end == 0 for end in self._ends.values())
        try:
            committed = self._committed_offsets(others, self._consumer, attempts=1)
        except KafkaUnavailable:
            return False  # e.g. the coordinator moved: ask again next round
        return all(
            tp.offset >= self._ends[tp.partition] or self._ends[tp.partition] == 0
            for tp in committed
        )

    def _committed_offsets(
        self, partitions: list[int], consumer: Any, attempts: int = 10
    ) -> list[Any]:
        """The group's committed offsets (``OFFSET_INVALID`` where none is committed)."""
        from confluent_kafka import TopicPartition

        wanted = [TopicPartition(self._settings.topic, p) for p in partitions]
        timeout = self._settings.connect_timeout_s
        return list(
            self._ask_kafka(
                lambda: consumer.committed(wanted, timeout=timeout),
                f"the committed offsets of group {self._settings.group!r}",
                attempts,
            )
        )

    def _watermarks(self, partition: int, consumer: Any) -> tuple[int, int]:
        """The partition's low and high watermarks."""
        from confluent_kafka import TopicPartition

        tp = TopicPartition(self._settings.topic, partition)
        timeout = self._settings.connect_timeout_s
        low, high = self._ask_kafka(
            lambda: consumer.get_watermark_offsets(tp, timeout=timeout),
            f"the offsets of partition {partition}",
        )
        return int(low), int(high)

    def _ask_kafka(self, request: Callable[[], T], what: str, attempts: int = 10) -> T:
        """Run a broker request, riding out a coordinator or leader that moves or restarts.

        Raises:
            KafkaUnavailable: If it still fails after ``attempts`` tries.
        """
        from confluent_kafka import KafkaException

        pause = 0.5
        for attempt in range(1, attempts + 1):
            try:
                return request()
            except KafkaException as exc:
                if attempt == attempts:
                    raise KafkaUnavailable(f"cannot read {what}: {exc}") from exc
                log.warning(
                    "Kafka request failed; retrying",
                    extra={"what": what, "error": str(exc), "attempt": attempt},
                )
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _progress(self, elapsed: float) -> None:
        log.info(
            "landing",
            extra={
                **self.stats.as_json(),
                "seconds": round(elapsed, 1),
                "rate_per_s": round(self.stats.consumed / elapsed) if elapsed else 0,
                "partitions": sorted(self._logs),
            },
        )


def _fingerprint(headers: list[tuple[str, bytes | None]] | None) -> bytes | None:
    """The writer schema's fingerprint from a record's headers, if it has one."""
    for name, value in headers or ():
        if name == FINGERPRINT_HEADER:
            return value
    return None


def _dead_letter(message: Any, reason: str) -> DeadLetter:
    _, timestamp = message.timestamp()
    return DeadLetter(
        offset=message.offset(),
        timestamp_ms=timestamp if timestamp and timestamp > 0 else None,
        key=message.key(),
        value=message.value(),
        headers=[(name, value or b"") for name, value in (message.headers() or [])],
        error=reason,
    )


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None


def _confluent_consumer(options: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer({**options, "logger": logging.getLogger("txnsim.sink.librdkafka")})
