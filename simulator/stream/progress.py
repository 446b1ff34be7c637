"""Progress records: how far an exactly-once stream got, committed with its data.

Every Kafka transaction of ``txnsim stream`` ends with one record on a small compacted
topic (``kafka.progress_topic``), keyed by the stream's destination (topic and shard):
the settings that decide the events, and how many transactions and labels were
released up to which simulated instant. It is written in the same transaction as the
data, so a read_committed reader sees both or neither: after a crash, the last
committed progress record says exactly what the topic holds.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from simulator.errors import ConfigError, KafkaUnavailable
from simulator.settings.delivery import KafkaConfig
from simulator.stream.kafka_client import admin_client, client_options

__all__ = ["Progress", "RunIdentity", "read_progress", "settings_differences"]


@dataclass(frozen=True)
class RunIdentity:
    """What makes two streams the same stream: destination, shard and deciding settings.

    Attributes:
        topic: The transactions topic.
        shard: ``K/N``: the shard of the population this process streams.
        settings: Everything that decides the records, as JSON-ready data.
    """

    topic: str
    shard: str
    settings: Mapping[str, Any]

    @property
    def key(self) -> bytes:
        """The progress topic's record key: one stream destination."""
        return f"{self.topic}|shard={self.shard}".encode()

    @property
    def settings_hash(self) -> str:
        """SHA-256 of the deciding settings in canonical JSON."""
        canonical = orjson.dumps(dict(self.settings), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    @property
    def transactional_id(self) -> str:
        """The producer's ``transactional.id``: a restarted stream fences the old one."""
        return f"txnsim-{self.topic}-{self.shard.replace('/', 'of')}-{self.settings_hash[:16]}"


@dataclass(frozen=True)
class Progress:
    """Cumulative figures of a stream at the end of one committed transaction.

    Attributes:
        seq: Transactions committed so far (this one included).
        records: Transactions released so far.
        labels: Labels released so far.
        simulated_until_us: Simulated instant reached.
        finished: The stream released everything it was asked to.
        settings_hash: :attr:`RunIdentity.settings_hash` of the stream.
        settings: The deciding settings themselves (to name what differs on a resume).
    """

    seq: int = 0
    records: int = 0
    labels: int = 0
    simulated_until_us: int | None = None
    finished: bool = False
    settings_hash: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The record value (JSON)."""
        return orjson.dumps(
            {
                "seq": self.seq,
                "records": self.records,
                "labels": self.labels,
                "simulated_until_us": self.simulated_until_us,
                "finished": self.finished,
                "settings_hash": self.settings_hash,
                "settings": dict(self.settings),
            },
            option=orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def decode(cls, value: bytes) -> Progress:
        """A record value back.

        Raises:
            ConfigError: If the value is not a progress record.
        """
        try:
            data = orjson.loads(value)
            return cls(
                seq=int(data["seq"]),
                records=int(data["records"]),
                labels=int(data["labels"]),
                simulated_until_us=data["simulated_until_us"],
                finished=bool(data["finished"]),
                settings_hash=str(data["settings_hash"]),
                settings=data["settings"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"kafka.progress_topic holds a record that is not progress: {exc}"
            ) from exc


def settings_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two settings trees, sorted."""
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found.extend(settings_differences(a, b, f"{name}."))
        elif a != b:
            found.append(name)
    return found


async def read_progress(config: KafkaConfig, key: bytes) -> Progress | None:
    """The last committed progress record under ``key`` (None if the stream never committed).

    Reads the whole (compacted) progress topic read_committed, up to its last stable
    offset.

    Raises:
        KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``.
    """
    from aiokafka.errors import KafkaError

    try:
        return await asyncio.wait_for(_read_latest(config, key), config.connect_timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        raise KafkaUnavailable(
            f"cannot read {config.progress_topic!r} at {config.bootstrap_servers} within "
            f"{config.connect_timeout_s:g} s (kafka.progress_topic, kafka.bootstrap_servers): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


async def _read_latest(config: KafkaConfig, key: bytes) -> Progress | None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async with admin_client(config) as admin:
        (described,) = await admin.describe_topics([config.progress_topic])
    if described["error_code"] != 0:  # no such topic: nothing was ever committed
        return None
    partitions = [
        TopicPartition(config.progress_topic, p["partition"]) for p in described["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers,
        client_id=f"{config.client_id}-progress",
        isolation_level="read_committed",
        enable_auto_commit=False,
        request_timeout_ms=int(config.request_timeout_s * 1000),
        **client_options(config),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: bytes | None = None
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for message in batch.get(tp, []):
                    if message.key == key and message.value is not None:
                        latest = message.value
        return None if latest is None else Progress.decode(latest)
    finally:
        await consumer.stop()
