"""The Kafka client code both deliveries share: connecting, topics, and batched sends.

aiokafka's per-record ``send()`` costs a coroutine and a future per record, and its
``BatchBuilder.append`` a Python call per record; per-partition batches built whole from
arrays avoid all three. In-flight batches are bounded, so a slow broker blocks the sender
instead of growing memory.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from simulator import metrics
from simulator.errors import KafkaUnavailable, PublishError
from simulator.settings.delivery import KafkaConfig
from simulator.stream.record_batches import PrebuiltBatch, encode_headers, partition_batches
from simulator.stream.records import OutRecords

__all__ = [
    "BatchSender",
    "TopicSpec",
    "admin_client",
    "client_options",
    "connect_producer",
    "ensure_topics",
]

log = logging.getLogger("txnsim.publish")

#: TOPIC_ALREADY_EXISTS: a concurrent creator won, which is as good as creating it.
_TOPIC_EXISTS = 36
#: Sends of at least this many records are encoded off the event loop (a thread hop
#: costs tens of microseconds; paced releases are mostly a few records).
_OFF_LOOP_RECORDS = 2048


@dataclass(frozen=True)
class TopicSpec:
    """A topic the stream writes, as it is created when missing.

    Attributes:
        name: Topic name.
        partitions: Partition count at creation (None: ``kafka.partitions``).
        configs: Topic configs at creation (``cleanup.policy`` for the progress topic).
    """

    name: str
    partitions: int | None = None
    configs: tuple[tuple[str, str], ...] = ()


def client_options(config: KafkaConfig) -> dict[str, Any]:
    """The security options every aiokafka client of the stream takes."""
    options: dict[str, Any] = {"security_protocol": config.security_protocol}
    if config.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.sasl_username
        options["sasl_plain_password"] = (
            config.sasl_password.get_secret_value() if config.sasl_password else None
        )
    if config.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=str(config.ssl_cafile) if config.ssl_cafile else None
        )
    return options


@asynccontextmanager
async def admin_client(config: KafkaConfig) -> AsyncIterator[Any]:
    """A started aiokafka admin client of the stream's cluster, closed on exit."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap_servers,
        client_id=f"{config.client_id}-admin",
        request_timeout_ms=int(config.request_timeout_s * 1000),
        **client_options(config),
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


def _unreachable(config: KafkaConfig, exc: BaseException) -> KafkaUnavailable:
    return KafkaUnavailable(
        f"cannot reach Kafka at {config.bootstrap_servers} within {config.connect_timeout_s:g} s "
        f"(kafka.bootstrap_servers, kafka.connect_timeout_s): {type(exc).__name__}: {exc}"
    )


async def ensure_topics(config: KafkaConfig, topics: Iterable[TopicSpec]) -> None:
    """Create the topics that are missing.

    Raises:
        KafkaUnavailable: If the cluster does not answer or refuses to create one.
    """
    from aiokafka.admin import NewTopic

    async with admin_client(config) as admin:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topics if spec.name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions or config.partitions,
                    replication_factor=config.replication_factor,
                    topic_configs=dict(spec.configs),
                )
                for spec in missing
            ]
        )
        for name, code, *rest in getattr(response, "topic_errors", []):
            if code not in (0, _TOPIC_EXISTS):
                raise KafkaUnavailable(f"cannot create topic {name!r}: error {code} {rest}")
        for spec in missing:
            log.info(
                "topic created",
                extra={"topic": spec.name, "partitions": spec.partitions or config.partitions},
            )


async def connect_producer(
    config: KafkaConfig,
    topics: Iterable[str | TopicSpec],
    *,
    transactional_id: str | None = None,
) -> tuple[Any, dict[str, int]]:
    """A started acks=all, idempotent producer, and the partition count of each topic.

    Missing topics are created first. With ``transactional_id`` the producer is
    transactional: starting it fences any earlier producer with the same id and aborts
    the transaction that one left open.

    Raises:
        KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    specs = [spec if isinstance(spec, TopicSpec) else TopicSpec(spec) for spec in topics]
    producer = None
    try:
        await asyncio.wait_for(ensure_topics(config, specs), config.connect_timeout_s)
        producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap_servers,
            client_id=config.client_id,
            acks="all",
            enable_idempotence=True,
            transactional_id=transactional_id,
            transaction_timeout_ms=int(config.transactions.timeout_s * 1000),
            compression_type=None if config.compression == "none" else config.compression,
            linger_ms=config.linger_ms,
            max_batch_size=config.batch_bytes,
            request_timeout_ms=int(config.request_timeout_s * 1000),
            **client_options(config),
        )
        await asyncio.wait_for(producer.start(), config.connect_timeout_s)
        counts = {}
        for spec in specs:
            found = await asyncio.wait_for(
                producer.partitions_for(spec.name), config.connect_timeout_s
            )
            counts[spec.name] = len(found)
    except (TimeoutError, KafkaError, OSError) as exc:
        if producer is not None:
            await producer.stop()
        raise _unreachable(config, exc) from exc
    for spec in specs:
        wanted = spec.partitions or config.partitions
        if counts[spec.name] != wanted:
            log.warning(
                "topic exists with another partition count",
                extra={"topic": spec.name, "partitions": counts[spec.name], "configured": wanted},
            )
    return producer, counts


class BatchSender:
    """Submits records as per-partition batches, keeping at most ``max_in_flight`` unsettled.

    The batches are built whole (:mod:`simulator.stream.record_batches`), not a record
    at a time. Partitions are submitted concurrently: aiokafka holds a new batch for a
    partition until the previous one of that partition is drained, and waiting partition
    by partition turned that into one round trip per partition per call (measured: 120 us
    a record). Within a partition, batches keep their order.

    Args:
        producer: The started producer.
        config: Batch size, compression and in-flight bound.
        transactional: Whether the producer's batches belong to transactions.
    """

    def __init__(self, producer: Any, config: KafkaConfig, *, transactional: bool) -> None:
        self._producer = producer
        self._config = config
        self._transactional = transactional
        self._in_flight: deque[asyncio.Future[Any]] = deque()
        self._headers: dict[tuple[tuple[str, bytes], ...], bytes] = {}

    async def send(self, topic: str, headers: list[tuple[str, bytes]], records: OutRecords) -> None:
        """Submit ``records`` to ``topic``; waits while too many batches are unsettled.

        Raises:
            PublishError: If a batch cannot be submitted or a settled one failed.
        """
        build = functools.partial(
            partition_batches,
            records,
            self._encoded_headers(headers),
            self._config.batch_bytes,
            transactional=self._transactional,
            compression=self._config.compression,
            compression_level=self._config.compression_level,
        )
        # Large sends are encoded (and compressed) in a worker thread: Arrow and the
        # codecs release the GIL, so the event loop keeps the broker busy meanwhile.
        if len(records) >= _OFF_LOOP_RECORDS:
            batches = await asyncio.to_thread(build)
        else:
            batches = build()
        await asyncio.gather(
            *(self._send_partition(topic, partition, part) for partition, part in batches)
        )
        while len(self._in_flight) > self._config.max_in_flight_batches:
            await self._settle(self._in_flight.popleft())
        while self._in_flight and self._in_flight[0].done():
            await self._settle(self._in_flight.popleft())

    async def settle_all(self) -> None:
        """Wait until every submitted batch is acknowledged.

        Raises:
            PublishError: If one failed after the client's retries.
        """
        while self._in_flight:
            await self._settle(self._in_flight.popleft())

    def abandon(self) -> None:
        """Forget the unsettled batches (their producer is being replaced)."""
        for future in self._in_flight:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved, so asyncio does not log it
        self._in_flight.clear()

    def _encoded_headers(self, headers: list[tuple[str, bytes]]) -> bytes:
        key = tuple(headers)
        if key not in self._headers:
            self._headers[key] = encode_headers(headers)
        return self._headers[key]

    async def _send_partition(
        self, topic: str, partition: int, batches: list[PrebuiltBatch]
    ) -> None:
        for batch in batches:
            await self._submit(batch, topic, partition)

    async def _submit(self, batch: Any, topic: str, partition: int) -> None:
        from aiokafka.errors import KafkaError

        try:
            future = await self._producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            metrics.PRODUCE_ERRORS.inc()
            raise PublishError(
                f"cannot submit a batch to {topic}[{partition}]: {type(exc).__name__}: {exc}"
            ) from exc
        self._in_flight.append(future)

    async def _settle(self, future: asyncio.Future[Any]) -> None:
        from aiokafka.errors import KafkaError

        try:
            await future
        except (KafkaError, asyncio.CancelledError) as exc:
            metrics.PRODUCE_ERRORS.inc()
            raise PublishError(
                f"delivery failed after retries: {type(exc).__name__}: {exc}"
            ) from exc
