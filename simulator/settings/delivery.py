"""Settings of how the stream reaches a scoring stack: its Kafka cluster and transactions.

The Schema Registry section is :class:`schemas.registry.RegistrySettings`, shared with the
sink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from runtime.kafka_auth import require_sasl_credentials
from schemas.registry import RegistrySettings
from simulator.settings.types import Model
from simulator.settings.types import Positive as _Positive

__all__ = ["KafkaConfig", "TransactionsConfig"]


class TransactionsConfig(Model):
    """How ``kafka.delivery: exactly_once`` cuts the stream into Kafka transactions.

    A transaction closes when any bound is reached. A read_committed reader sees records
    only once their transaction commits, so ``wall_s`` is also the added latency.
    Kafka Streams commits every 100 ms under exactly-once by default
    (``commit.interval.ms``, Apache Kafka documentation); a transaction costs about one
    marker write per partition it touched, so at replay speed the record bound decides.
    """

    records: int = Field(default=100_000, ge=1, le=10_000_000)
    wall_s: _Positive = 1.0
    # One simulated day, not an hour: at replay speed (--speed max) an hour of simulated time
    # is a few thousand records (5,500 for 100k cardholders), and each commit drains the
    # producer first; the hour bound made 168 transactions of a 7-day run and exactly-once
    # 0.63-0.69x of the in-memory stream (bench/stream.py). A day lets the record bound
    # decide at replay speed, as intended; live, wall_s does.
    simulated_s: _Positive = Field(
        default=86_400.0, description="At most this much simulated time in one transaction."
    )
    timeout_s: _Positive = Field(
        default=60.0, description="transaction.timeout.ms: the broker aborts one left open longer."
    )
    retry_give_up_s: _Positive = Field(
        default=300.0, description="Give up re-sending an aborted transaction after this long."
    )


#: The levels each codec takes, as Kafka's producer accepts them (KIP-390).
_CODEC_LEVELS = {"zstd": (1, 22), "gzip": (1, 9), "lz4": (1, 12)}


class KafkaConfig(Model):
    """Where and how the stream is produced. Security settings pass through to the client."""

    bootstrap_servers: str = Field(min_length=1)
    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    labels_topic: str = Field(
        default="fraud_labels",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Topic of the fraud labels, released at their label time; created if missing.",
    )
    partitions: int = Field(
        ge=1, le=10_000, description="Partition count when the topic is created."
    )
    replication_factor: int = Field(ge=1, le=32)
    client_id: str
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    connect_timeout_s: _Positive = Field(
        description="Give up on an unreachable cluster after this long."
    )
    request_timeout_s: _Positive
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"]
    compression_level: int | None = Field(
        default=None,
        description="Codec level of the batches txnsim builds (zstd 1-22, gzip 1-9, lz4 1-12); "
        "null: zstd 1, gzip and lz4 a Kafka producer's default (9).",
    )
    linger_ms: int = Field(ge=0, le=60_000)
    batch_bytes: int = Field(ge=1024, le=64 * 1024 * 1024)
    max_in_flight_batches: int = Field(ge=1, le=10_000)
    delivery: Literal["exactly_once", "idempotent"] = "exactly_once"
    transactions: TransactionsConfig = Field(default_factory=TransactionsConfig)
    progress_topic: str = Field(default="txnsim_progress", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    schema_registry: RegistrySettings | None = None

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaConfig:
        require_sasl_credentials(
            self.security_protocol, self.sasl_mechanism, self.sasl_username, self.sasl_password
        )
        return self

    @model_validator(mode="after")
    def _level_fits_codec(self) -> KafkaConfig:
        level = self.compression_level
        if level is None:
            return self
        bounds = _CODEC_LEVELS.get(self.compression)
        if bounds is None:
            raise ValueError(
                f"compression_level: compression {self.compression!r} takes no level "
                "(zstd, gzip and lz4 do)"
            )
        if not bounds[0] <= level <= bounds[1]:
            raise ValueError(
                f"compression_level: {self.compression} levels are {bounds[0]}-{bounds[1]} "
                f"(got {level})"
            )
        return self
