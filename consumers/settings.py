"""Settings of ``txnsim-sink``: flags and ``--set`` > ``TXNSIM_SINK_*`` environment > defaults.

Four sections: the top level (destination, rotation, memory, Parquet, retries, run
mode), ``kafka`` (:class:`KafkaSettings`: cluster, topic, group, polling, security),
``s3`` (:class:`S3Settings`: endpoint and region) and the optional ``schema_registry``
(:class:`schemas.registry.RegistrySettings`: url, basic auth, TLS CA, timeout). A
nested key is dotted on the command line, ``--set kafka.group=lake-writer``, and joined
by ``__`` in the environment, ``TXNSIM_SINK_KAFKA__GROUP=lake-writer``; :data:`MOVED`
lists the keys that were flat before the sections, and using one of them is an error
that names its new place.

S3 credentials are not settings: boto3 reads them from the standard AWS sources
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles, instance roles), and
``AWS_ENDPOINT_URL`` too unless ``s3.endpoint_url`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumers.errors import ConfigError
from runtime.kafka_auth import require_sasl_credentials
from runtime.overrides import format_validation_error
from schemas.registry import RegistrySettings
from storage.base import S3Settings

__all__ = ["MOVED", "KafkaSettings", "SinkSettings", "load_sink_settings"]

MiB = 1024 * 1024

ENV_PREFIX = "TXNSIM_SINK_"


class KafkaSettings(BaseModel):
    """The ``kafka`` section: the cluster, the topic, the group and how to poll it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: str = Field(min_length=1)
    topic: str = Field(default="transactions", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    group: str = Field(default="lake-writer", min_length=1)

    # 100,000, not 20,000: a poll's records are decoded a partition at a time, and each
    # decode of a batch has a fixed cost (a few hundred array steps); over 12 partitions
    # 20,000 made batches of 1,700 and the sink landed 125-127k events/s, 0.79-0.81x of
    # consuming alone; 100,000 landed 171k (bench/sink.py, 2M events). A poll is about
    # 25 MB of values, well inside memory_budget_bytes.
    poll_records: int = Field(default=100_000, ge=1, le=1_000_000)
    connect_timeout_s: float = Field(default=30.0, gt=0)
    session_timeout_s: float = Field(default=45.0, gt=0)
    max_poll_interval_s: float = Field(default=300.0, gt=0)

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    @model_validator(mode="after")
    def _credentials(self) -> KafkaSettings:
        require_sasl_credentials(
            self.security_protocol, self.sasl_mechanism, self.sasl_username, self.sasl_password
        )
        return self


class SinkSettings(BaseSettings):
    """Everything the sink needs to know; frozen once validated."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, env_nested_delimiter="__"
    )

    kafka: KafkaSettings
    s3: S3Settings = Field(default_factory=S3Settings)
    schema_registry: RegistrySettings | None = Field(
        default=None,
        description="Resolve Confluent wire-format values (magic byte 0) by their schema id.",
    )
    dest: str = Field(min_length=1, description="file:///path, a path, or s3://bucket/prefix")

    # Rotation: decided by the records alone, so re-reading offsets cuts the same files.
    max_rows_per_file: int = Field(default=250_000, ge=1)
    max_bytes_per_file: int = Field(
        default=64 * MiB, ge=1024, description="Cut when the Avro values of a file reach this."
    )
    # Outside the records: idle partitions and the memory budget still cut files. Such a
    # cut may differ when offsets are re-read; the sink then adopts the landed file.
    max_file_age_s: float = Field(default=60.0, gt=0)
    memory_budget_bytes: int = Field(default=512 * MiB, ge=4 * MiB)

    # Parquet row groups of at least 64k rows (fewer only at a cut): readers prune by group.
    row_group_rows: int = Field(default=131_072, ge=1)
    compression_level: int = Field(default=3, ge=1, le=22, description="zstd level")

    dlq_prefix: str = Field(default="_dlq", pattern=r"^_[A-Za-z0-9._-]+$")
    until_caught_up: bool = False
    progress_every_s: float = Field(default=10.0, gt=0)

    # The destination's retries, a folder's as well as S3's.
    retry_base_s: float = Field(default=0.2, gt=0)
    retry_cap_s: float = Field(default=10.0, gt=0)
    retry_give_up_s: float | None = Field(
        default=None, gt=0, description="None: retry an unavailable destination until it is back."
    )
    # An unreachable registry stops the sink (exit 1) once this long has passed: the
    # records it cannot read stay uncommitted, and a restart re-reads them.
    registry_give_up_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        # A missing kafka section reports its required keys (kafka.bootstrap_servers),
        # not the section.
        if isinstance(data, Mapping) and "kafka" not in data:
            return {**data, "kafka": {}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SinkSettings:
        if self.retry_cap_s < self.retry_base_s:
            raise ValueError("retry_cap_s must be at least retry_base_s")
        return self

    def kafka_options(self) -> dict[str, Any]:
        """The librdkafka properties for the consumer (the password in clear: never log them)."""
        kafka = self.kafka
        options: dict[str, Any] = {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": kafka.group,
            "client.id": f"txnsim-sink-{kafka.group}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # A transactional producer's aborted records never land.
            "isolation.level": "read_committed",
            "session.timeout.ms": int(kafka.session_timeout_s * 1000),
            "max.poll.interval.ms": int(kafka.max_poll_interval_s * 1000),
            # librdkafka's prefetch queue counts against the memory budget: a quarter.
            "queued.max.messages.kbytes": max(1024, self.memory_budget_bytes // 4 // 1024),
            "security.protocol": kafka.security_protocol,
        }
        if kafka.sasl_mechanism is not None:
            options["sasl.mechanism"] = kafka.sasl_mechanism
            options["sasl.username"] = kafka.sasl_username
            options["sasl.password"] = (
                kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
            )
        if kafka.ssl_cafile is not None:
            options["ssl.ca.location"] = str(kafka.ssl_cafile)
        return options


#: Keys that were flat before the ``kafka`` and ``s3`` sections, and where they are now.
MOVED: dict[str, str] = {
    **{
        key: f"kafka.{key}"
        for key in (
            "bootstrap_servers",
            "topic",
            "group",
            "poll_records",
            "connect_timeout_s",
            "session_timeout_s",
            "max_poll_interval_s",
            "security_protocol",
            "sasl_mechanism",
            "sasl_username",
            "sasl_password",
            "ssl_cafile",
        )
    },
    "s3_endpoint_url": "s3.endpoint_url",
    "s3_region": "s3.region",
}


def load_sink_settings(cli: Mapping[str, Any], *, environ: bool = True) -> SinkSettings:
    """Validate flags and overrides (nested mappings) over the environment over defaults.

    Args:
        cli: The settings given on the command line, nested by section
            (``{"kafka": {"group": "x"}}``); None values are left out.
        environ: Also read ``TXNSIM_SINK_*`` variables (``__`` nests:
            ``TXNSIM_SINK_KAFKA__GROUP``).

    Raises:
        ConfigError: Naming every invalid field (dotted) and what it allows, or a key
            that moved into a section, with its new name.
    """
    values = {k: v for k, v in cli.items() if v is not None}
    moved = [f"{key}: moved to {MOVED[key]}" for key in values if key in MOVED]
    if environ:
        moved += [
            f"{name}: moved to {ENV_PREFIX}{MOVED[key].upper().replace('.', '__')}"
            for name in sorted(os.environ)
            if name.upper().startswith(ENV_PREFIX)
            and (key := name[len(ENV_PREFIX) :].lower()) in MOVED
        ]
    if moved:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(moved))
    try:
        if environ:
            return SinkSettings(**values)
        return SinkSettings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, SinkSettings)) from exc
