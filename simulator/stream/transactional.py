"""Exactly-once delivery: the stream's records in Kafka transactions, with their progress.

One transactional producer writes the transactions topic, the labels topic and one
progress record per transaction (:mod:`simulator.stream.progress`), so a read_committed
reader sees each record once, and a restarted stream knows exactly what was committed.

A transaction holds what was released since the last commit, kept in memory until the
commit succeeds. When anything fails (a broker restart, a coordinator move, an injected
fault), the producer is replaced by a new one with the same ``transactional.id`` (which
fences the old one and aborts its open transaction), and the whole transaction is sent
again. If the commit's outcome is unknown (the broker went away during it), the last
committed progress record decides: sent again only if it did not commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from simulator import metrics
from simulator.errors import KafkaUnavailable, PublishError
from simulator.settings.delivery import KafkaConfig
from simulator.stream.kafka_client import BatchSender, TopicSpec, connect_producer
from simulator.stream.progress import Progress, RunIdentity, read_progress
from simulator.stream.records import OutRecords

__all__ = ["FaultHook", "TopicView", "TransactionalSession"]

log = logging.getLogger("txnsim.publish")

T = TypeVar("T")

#: Called with the stage (``"send"``, ``"commit"``) and the transaction's sequence
#: number before that stage; raising there simulates a failure (tests inject faults).
FaultHook = Callable[[str, int], None]

_PROGRESS_CONFIGS = (("cleanup.policy", "compact"), ("min.compaction.lag.ms", "0"))


@dataclass(frozen=True)
class _Sent:
    topic: str
    headers: list[tuple[str, bytes]]
    records: OutRecords


class TopicView:
    """One topic of a :class:`TransactionalSession`, seen as a :class:`Publisher`."""

    def __init__(self, session: TransactionalSession, topic: str, headers: list[tuple[str, bytes]]):
        self._session = session
        self.topic = topic
        self._headers = headers
        self.partitions = 0

    async def start(self) -> None:
        """Start the session (once for all its views)."""
        await self._session.start()
        self.partitions = self._session.partitions[self.topic]

    async def publish(self, records: OutRecords) -> None:
        """Add records to the open transaction."""
        await self._session.send(self.topic, self._headers, records)

    async def flush(self) -> None:
        """Nothing: records become visible when the session commits."""

    async def stop(self) -> None:
        """Stop the session (idempotent): an open transaction is aborted, not committed."""
        await self._session.stop()


class TransactionalSession:
    """Writes the stream's topics in Kafka transactions, each ending with a progress record.

    Args:
        config: Cluster and producer settings (``kafka.transactions`` bounds a transaction).
        identity: The stream's identity: key of its progress, its ``transactional.id``.
        topics: The data topics (transactions, labels).
        resumed: The committed progress this run continues from (None: from the start).
        faults: Fault injection for tests.
        clock: Monotonic seconds, for the wall-time bound.
    """

    def __init__(
        self,
        config: KafkaConfig,
        identity: RunIdentity,
        topics: list[str],
        *,
        resumed: Progress | None = None,
        faults: FaultHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._identity = identity
        self._topics = topics
        self._faults = faults
        self._clock = clock
        base = resumed or Progress()
        self.committed = replace(
            base, settings_hash=identity.settings_hash, settings=dict(identity.settings)
        )
        self.partitions: dict[str, int] = {}
        self.transactions = 0
        self.resends = 0
        self._producer: Any = None
        self._sender: BatchSender | None = None
        self._open: list[_Sent] = []
        self._open_records = 0
        self._opened_at = 0.0
        self._opened_sim_us: int | None = None
        self._starting: asyncio.Lock | None = None

    def view(self, topic: str, headers: list[tuple[str, bytes]]) -> TopicView:
        """A publisher of ``topic`` inside this session's transactions."""
        return TopicView(self, topic, headers)

    async def start(self) -> None:
        """Connect (once), fencing an earlier producer of this stream, and open a transaction.

        Raises:
            KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``.
        """
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                await self._connect()

    async def _connect(self) -> None:
        specs = [TopicSpec(t) for t in self._topics]
        specs.append(TopicSpec(self._config.progress_topic, 1, _PROGRESS_CONFIGS))
        self._producer, self.partitions = await connect_producer(
            self._config, specs, transactional_id=self._identity.transactional_id
        )
        self._sender = BatchSender(self._producer, self._config, transactional=True)
        await self._bounded(self._producer.begin_transaction())
        self._opened_at = self._clock()

    def due(self, simulated_us: int | None) -> bool:
        """Whether the open transaction reached a bound (records, wall or simulated time)."""
        bounds = self._config.transactions
        if self._open_records >= bounds.records:
            return True
        if self._open_records and self._clock() - self._opened_at >= bounds.wall_s:
            return True
        first = self._opened_sim_us
        return bool(
            first is not None
            and simulated_us is not None
            and simulated_us - first >= bounds.simulated_s * 1e6
        )

    async def send(self, topic: str, headers: list[tuple[str, bytes]], records: OutRecords) -> None:
        """Add records to the open transaction (re-sending it if the producer failed)."""
        if self._producer is None:
            raise PublishError("publisher not started")
        sent = _Sent(topic, headers, records)
        self._open.append(sent)
        self._open_records += len(records)
        try:
            self._fault("send")
            await self._bounded(self._sender_or_fail().send(topic, headers, records))
        except PublishError as exc:
            await self._recover(exc)

    async def commit(self, progress: Progress) -> None:
        """Commit the open transaction with ``progress`` and open the next one.

        Args:
            progress: Cumulative figures including everything sent in this transaction.

        Raises:
            PublishError: If the transaction cannot be committed within
                ``kafka.transactions.retry_give_up_s``.
        """
        if self._producer is None:
            raise PublishError("publisher not started")
        final = replace(
            progress,
            seq=self.committed.seq + 1,
            settings_hash=self._identity.settings_hash,
            settings=self.committed.settings,
        )
        give_up = self._clock() + self._config.transactions.retry_give_up_s
        while True:
            try:
                await self._commit_once(final)
                break
            except PublishError as exc:
                if self._clock() >= give_up:
                    raise PublishError(
                        f"transaction {final.seq} not committed within "
                        f"{self._config.transactions.retry_give_up_s:g} s "
                        f"(kafka.transactions.retry_give_up_s): {exc}"
                    ) from exc
                if await self._recover(exc, in_doubt=final):
                    break
        self.committed = final
        self.transactions += 1
        self._open, self._open_records = [], 0
        self._opened_at, self._opened_sim_us = self._clock(), final.simulated_until_us
        await self._begin()

    def mark(self, simulated_us: int | None) -> None:
        """Note the simulated time the open transaction started at (for its bound)."""
        if self._opened_sim_us is None:
            self._opened_sim_us = simulated_us

    async def _commit_once(self, final: Progress) -> None:
        from aiokafka.errors import KafkaError

        sender = self._sender_or_fail()
        self._fault("commit")
        try:
            await self._bounded(
                sender.send(
                    self._config.progress_topic, [], _progress_record(self._identity, final)
                )
            )
            await self._bounded(sender.settle_all())
            await self._bounded(self._producer.commit_transaction())
        except KafkaError as exc:
            metrics.PRODUCE_ERRORS.inc()
            raise PublishError(f"commit failed: {type(exc).__name__}: {exc}") from exc

    async def _bounded(self, step: Awaitable[T]) -> T:
        """``step`` within ``kafka.request_timeout_s``, or a :class:`PublishError`.

        After a broker restart aiokafka can wait for a coordinator or an acknowledgement
        without ever failing; a deadline turns that into a failure the session recovers
        from (a new producer, the transaction sent again).
        """
        timeout = self._config.request_timeout_s
        try:
            return await asyncio.wait_for(step, timeout)
        except TimeoutError as exc:
            metrics.PRODUCE_ERRORS.inc()
            raise PublishError(f"no answer from Kafka within {timeout:g} s") from exc

    async def _begin(self) -> None:
        from aiokafka.errors import KafkaError

        try:
            await self._bounded(self._producer.begin_transaction())
        except (KafkaError, PublishError) as exc:
            await self._recover(PublishError(f"cannot begin a transaction: {exc}"))

    async def _recover(self, cause: Exception, in_doubt: Progress | None = None) -> bool:
        """Replace the producer and re-send the open transaction; True if it had committed.

        Raises:
            PublishError: If the cluster stays unreachable past the give-up time.
        """
        give_up = self._clock() + self._config.transactions.retry_give_up_s
        delay = 0.2
        while True:
            log.warning(
                "transaction failed; re-sending it with a new producer",
                extra={"seq": self.committed.seq + 1, "error": str(cause)},
            )
            await self._discard_producer()
            try:
                await self._connect()
                if in_doubt is not None:
                    latest = await read_progress(self._config, self._identity.key)
                    if latest is not None and latest.seq >= in_doubt.seq:
                        return True
                self.resends += 1
                for sent in self._open:
                    self._fault("send")
                    sender = self._sender_or_fail()
                    await self._bounded(sender.send(sent.topic, sent.headers, sent.records))
            except (KafkaUnavailable, PublishError) as exc:
                cause = exc
                if self._clock() >= give_up:
                    raise PublishError(
                        f"cannot re-send transaction {self.committed.seq + 1} within "
                        f"{self._config.transactions.retry_give_up_s:g} s "
                        f"(kafka.transactions.retry_give_up_s): {exc}"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return False

    async def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if self._sender is not None:
            self._sender.abandon()
            self._sender = None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), self._config.connect_timeout_s)
            except Exception as exc:  # the old producer is gone either way
                log.debug("old producer did not stop cleanly", extra={"error": repr(exc)})

    def _sender_or_fail(self) -> BatchSender:
        if self._sender is None:
            raise PublishError("no producer (it is being replaced)")
        return self._sender

    def _fault(self, stage: str) -> None:
        if self._faults is not None:
            try:
                self._faults(stage, self.committed.seq + 1)
            except Exception as exc:
                raise PublishError(f"injected fault at {stage}: {exc}") from exc

    async def stop(self) -> None:
        """Abort the open transaction (its records are sent again on resume) and close."""
        producer = self._producer
        if producer is not None and self._open_records:
            log.info(
                "aborting the open transaction",
                extra={"seq": self.committed.seq + 1, "records": self._open_records},
            )
            try:
                if self._sender is not None:
                    self._sender.abandon()
                await asyncio.wait_for(producer.abort_transaction(), self._config.connect_timeout_s)
            except Exception as exc:  # a broker gone now aborts it by timeout or fencing
                log.warning("abort failed", extra={"error": repr(exc)})
        await self._discard_producer()


def _progress_record(identity: RunIdentity, progress: Progress) -> OutRecords:
    import numpy as np

    stamp = int(time.time() * 1000)  # the progress topic's own time, not simulated time
    return OutRecords.of([identity.key], [progress.encode()], np.array([stamp]), np.zeros(1))
