"""Where streamed records go: a small publisher interface, Kafka and an in-memory twin.

Records arrive in release order as :class:`OutRecords` chunks; a publisher keeps each
partition's order. ``publish`` may block (backpressure) so the simulation never runs
ahead of a slow broker by more than a bounded amount.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from simulator import metrics
from simulator.errors import KafkaUnavailable, PublishError
from simulator.settings.models import KafkaConfig

__all__ = [
    "KafkaPublisher",
    "MemoryPublisher",
    "OutRecords",
    "Publisher",
]

log = logging.getLogger("txnsim.publish")


@dataclass(frozen=True)
class OutRecords:
    """Encoded records in release order (all lists and arrays are row-aligned)."""

    keys: list[bytes]
    values: list[bytes]
    timestamps_ms: np.ndarray
    partitions: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def take(self, lo: int, hi: int) -> OutRecords:
        """Rows ``lo:hi``."""
        return OutRecords(
            self.keys[lo:hi], self.values[lo:hi], self.timestamps_ms[lo:hi], self.partitions[lo:hi]
        )


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
    records: dict[int, list[tuple[bytes, bytes, int]]] = field(default_factory=dict)
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
        for key, value, ts, p in zip(
            records.keys,
            records.values,
            records.timestamps_ms.tolist(),
            records.partitions.tolist(),
            strict=True,
        ):
            self.records.setdefault(p, []).append((key, value, ts))

    async def flush(self) -> None:
        """Count flushes."""
        self.flushed += 1

    async def stop(self) -> None:
        """Mark stopped."""
        self.started = False


class KafkaPublisher:
    """Produces with aiokafka's batch API: acks=all, idempotent, compressed.

    Per-record ``send()`` costs a coroutine and a future per record; building
    per-partition batches directly avoids both. In-flight batches are bounded, so a
    slow broker blocks :meth:`publish` instead of growing memory. One instance writes
    one topic (``topic``, by default ``kafka.topic``); the stream uses a second one for
    ``kafka.labels_topic``.
    """

    def __init__(
        self, config: KafkaConfig, headers: list[tuple[str, bytes]], topic: str | None = None
    ) -> None:
        self._config = config
        self._headers = headers
        self.topic = topic or config.topic
        self._producer: Any = None
        self._in_flight: deque[asyncio.Future[Any]] = deque()
        self.partitions = config.partitions

    def _security(self) -> dict[str, Any]:
        cfg = self._config
        options: dict[str, Any] = {"security_protocol": cfg.security_protocol}
        if cfg.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = cfg.sasl_mechanism
            options["sasl_plain_username"] = cfg.sasl_username
            options["sasl_plain_password"] = (
                cfg.sasl_password.get_secret_value() if cfg.sasl_password else None
            )
        if cfg.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=str(cfg.ssl_cafile) if cfg.ssl_cafile else None
            )
        return options

    async def start(self) -> None:
        """Connect, create the topic if missing, and learn its partition count.

        Raises:
            KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``.
        """
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        cfg = self._config
        try:
            await asyncio.wait_for(self._ensure_topic(), cfg.connect_timeout_s)
            self._producer = AIOKafkaProducer(
                bootstrap_servers=cfg.bootstrap_servers,
                client_id=cfg.client_id,
                acks="all",
                enable_idempotence=True,
                compression_type=None if cfg.compression == "none" else cfg.compression,
                linger_ms=cfg.linger_ms,
                max_batch_size=cfg.batch_bytes,
                request_timeout_ms=int(cfg.request_timeout_s * 1000),
                **self._security(),
            )
            await asyncio.wait_for(self._producer.start(), cfg.connect_timeout_s)
            found = await asyncio.wait_for(
                self._producer.partitions_for(self.topic), cfg.connect_timeout_s
            )
        except (TimeoutError, KafkaError, OSError) as exc:
            await self.stop()
            raise KafkaUnavailable(
                f"cannot reach Kafka at {cfg.bootstrap_servers} within {cfg.connect_timeout_s:g} s "
                f"(kafka.bootstrap_servers, kafka.connect_timeout_s): {type(exc).__name__}: {exc}"
            ) from exc
        self.partitions = len(found)
        if self.partitions != cfg.partitions:
            log.warning(
                "topic exists with another partition count",
                extra={
                    "topic": self.topic,
                    "partitions": self.partitions,
                    "configured": cfg.partitions,
                },
            )

    async def _ensure_topic(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        cfg = self._config
        admin = AIOKafkaAdminClient(
            bootstrap_servers=cfg.bootstrap_servers,
            client_id=f"{cfg.client_id}-admin",
            request_timeout_ms=int(cfg.request_timeout_s * 1000),
            **self._security(),
        )
        await admin.start()
        try:
            existing = await admin.list_topics()
            if self.topic in existing:
                return
            response = await admin.create_topics(
                [
                    NewTopic(
                        self.topic,
                        num_partitions=cfg.partitions,
                        replication_factor=cfg.replication_factor,
                    )
                ]
            )
            for name, code, *rest in getattr(response, "topic_errors", []):
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (a concurrent creator won)
                    raise KafkaUnavailable(f"cannot create topic {name!r}: error {code} {rest}")
            log.info("topic created", extra={"topic": self.topic, "partitions": cfg.partitions})
        finally:
            await admin.close()

    async def publish(self, records: OutRecords) -> None:
        """Append records to per-partition batches and submit them.

        Partitions are submitted concurrently: aiokafka holds a new batch for a partition
        until the previous one of that partition is drained, and waiting partition by
        partition turned that into one round trip per partition per call (measured:
        120 us a record). Within a partition, batches keep their order.
        """
        producer = self._producer
        if producer is None:
            raise PublishError("publisher not started")
        order = np.argsort(records.partitions, kind="stable")
        parts = records.partitions[order]
        bounds = np.flatnonzero(np.diff(parts)) + 1
        starts = np.concatenate([[0], bounds]).tolist()
        ends = [*bounds.tolist(), len(order)]
        rows = order.tolist()
        await asyncio.gather(
            *(
                self._publish_partition(records, int(parts[lo]), rows[lo:hi])
                for lo, hi in zip(starts, ends, strict=True)
            )
        )
        while len(self._in_flight) > self._config.max_in_flight_batches:
            await self._settle(self._in_flight.popleft())
        while self._in_flight and self._in_flight[0].done():
            await self._settle(self._in_flight.popleft())

    async def _publish_partition(
        self, records: OutRecords, partition: int, rows: list[int]
    ) -> None:
        producer = self._producer
        stamps = records.timestamps_ms
        batch = producer.create_batch()
        for i in rows:
            meta = batch.append(
                key=records.keys[i],
                value=records.values[i],
                timestamp=int(stamps[i]),
                headers=self._headers,
            )
            if meta is None:  # batch full: submit it and start another
                await self._submit(batch, partition)
                batch = producer.create_batch()
                batch.append(
                    key=records.keys[i],
                    value=records.values[i],
                    timestamp=int(stamps[i]),
                    headers=self._headers,
                )
        await self._submit(batch, partition)

    async def _submit(self, batch: Any, partition: int) -> None:
        from aiokafka.errors import KafkaError

        try:
            future = await self._producer.send_batch(batch, self.topic, partition=partition)
        except KafkaError as exc:
            metrics.PRODUCE_ERRORS.inc()
            raise PublishError(f"cannot submit a batch to partition {partition}: {exc}") from exc
        self._in_flight.append(future)

    async def _settle(self, future: asyncio.Future[Any]) -> None:
        from aiokafka.errors import KafkaError

        try:
            await future
        except KafkaError as exc:
            metrics.PRODUCE_ERRORS.inc()
            raise PublishError(
                f"delivery failed after retries: {type(exc).__name__}: {exc}"
            ) from exc

    async def flush(self) -> None:
        """Wait for every submitted batch to be acknowledged."""
        while self._in_flight:
            await self._settle(self._in_flight.popleft())
        if self._producer is not None:
            await self._producer.flush()

    async def stop(self) -> None:
        """Close the producer (idempotent)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
