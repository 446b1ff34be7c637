"""Where streamed records go: a small publisher interface, Kafka and an in-memory twin.

Records arrive in release order as :class:`OutRecords` chunks; a publisher keeps each
partition's order. ``publish`` may block (backpressure) so the simulation never runs
ahead of a slow broker by more than a bounded amount. Two Kafka deliveries share the
client code of :mod:`simulator.stream.kafka_client`: :class:`KafkaPublisher` here
(idempotent: acks=all, no transactions) and
:class:`~simulator.stream.transactional.TransactionalSession` (exactly once).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulator.errors import PublishError
from simulator.settings.delivery import KafkaConfig
from simulator.stream.kafka_client import BatchSender, connect_producer
from simulator.stream.records import OutRecords

__all__ = [
    "KafkaPublisher",
    "MemoryPublisher",
    "Publisher",
]

log = logging.getLogger("txnsim.publish")


class Publisher(Protocol):
    """The streaming edge."""

    partitions: int

    async def start(self) -> None:
        """Connect; make the destination ready."""
        ...

    async def publish(self, records: OutRecords) -> None:
        """Hand records over (may wait for room)."""
        ...

    async def flush(self) -> None:
        """Wait until everything handed over is acknowledged."""
        ...

    async def stop(self) -> None:
        """Release resources (idempotent); does not flush."""
        ...


@dataclass
class MemoryPublisher:
    """Keeps records per partition in memory; optionally slow, to exercise backpressure.

    Attributes:
        partitions: Partition count.
        delay_s: Seconds each publish call takes (awaited on the given sleeper).
        sleep: Coroutine function used for the delay (a fake wall's ``sleep`` in tests).
    """

    partitions: int = 12
    delay_s: float = 0.0
    sleep: Any = None
    records: dict[int, list[tuple[bytes | None, bytes, int]]] = field(default_factory=dict)
    started: bool = False
    flushed: int = 0

    async def start(self) -> None:
        """Mark started."""
        self.started = True

    async def publish(self, records: OutRecords) -> None:
        """Append records to their partitions."""
        if not self.started:
            raise PublishError("publisher not started")
        if self.delay_s:
            await (self.sleep or asyncio.sleep)(self.delay_s)
        for key, value, ts, p in records.rows():
            self.records.setdefault(p, []).append((key, value, ts))

    async def flush(self) -> None:
        """Count flushes."""
        self.flushed += 1

    async def stop(self) -> None:
        """Mark stopped."""
        self.started = False


class KafkaPublisher:
    """Produces one topic with aiokafka's batch API: acks=all, idempotent, no transactions.

    A read_uncommitted reader sees every record as soon as it is acknowledged. Across a
    broker restart the idempotent producer may write a record twice (aiokafka resets its
    sequence numbers on some errors); ``kafka.delivery: exactly_once`` does not.

    Args:
        config: The cluster, topic and producer settings.
        headers: Headers on every record (the writer schema's).
        topic: The topic; by default ``kafka.topic``.
    """

    def __init__(
        self, config: KafkaConfig, headers: list[tuple[str, bytes]], topic: str | None = None
    ) -> None:
        self._config = config
        self._headers = headers
        self.topic = topic or config.topic
        self._producer: Any = None
        self._sender: BatchSender | None = None
        self.partitions = config.partitions

    async def start(self) -> None:
        """Connect, create the topic if missing, and learn its partition count.

        Raises:
            KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``.
        """
        self._producer, counts = await connect_producer(self._config, [self.topic])
        self._sender = BatchSender(self._producer, self._config, transactional=False)
        self.partitions = counts[self.topic]

    async def publish(self, records: OutRecords) -> None:
        """Append records to per-partition batches and submit them (bounded in flight)."""
        if self._sender is None:
            raise PublishError("publisher not started")
        await self._sender.send(self.topic, self._headers, records)

    async def flush(self) -> None:
        """Wait for every submitted batch to be acknowledged."""
        if self._sender is not None:
            await self._sender.settle_all()
        if self._producer is not None:
            await self._producer.flush()

    async def stop(self) -> None:
        """Close the producer (idempotent)."""
        producer, self._producer, self._sender = self._producer, None, None
        if producer is not None:
            await producer.stop()
