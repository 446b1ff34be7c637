"""A Confluent-compatible Schema Registry, as both sides use it.

The stream registers its writer schemas under TopicNameStrategy subjects
(``<topic>-value``) and frames values in the Confluent wire format with the ids it gets
back; the sink looks ids up (once each) to learn which known schema a value was written
with. The HTTP client is confluent-kafka's ``SchemaRegistryClient``; its errors are
mapped to :mod:`schemas.errors` here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from schemas.errors import IncompatibleSchema, RegistryError, RegistryUnavailable
from schemas.event import EventSchema, fingerprint_of

__all__ = ["RegistrySettings", "SchemaRegistry", "subject_for"]

#: Confluent's "incompatible schema" status; 422 is an invalid one.
_CONFLICT = 409
_INVALID = 422


def subject_for(topic: str) -> str:
    """TopicNameStrategy: the value subject of ``topic``."""
    return f"{topic}-value"


class RegistrySettings(BaseModel):
    """Where the registry is and how to reach it: the ``schema_registry`` section.

    ``url`` is the API base (for Apicurio Registry 3: ``.../apis/ccompat/v7``). Both the
    stream (``kafka.schema_registry``) and the sink (``schema_registry``) use it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, description="Per-request timeout.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class SchemaRegistry:
    """Registers schemas and resolves ids against one registry.

    Args:
        url: The API base (Apicurio Registry 3: ``http://host:8080/apis/ccompat/v7``).
        username: Basic-auth user, with ``password``.
        password: Basic-auth password (never logged).
        ca_file: CA bundle to verify the registry's TLS certificate.
        timeout_s: Per-request timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": url, "timeout": timeout_s}
        if username is not None:
            conf["basic.auth.user.info"] = f"{username}:{password or ''}"
        if ca_file is not None:
            conf["ssl.ca.location"] = ca_file
        self.url = url
        self._client = SchemaRegistryClient(conf)
        self._fingerprints: dict[int, str] = {}

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> SchemaRegistry:
        """A client for the registry ``settings`` name."""
        return cls(
            settings.url,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            ca_file=settings.ca_file,
            timeout_s=settings.timeout_s,
        )

    def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        self._client.close()

    def __enter__(self) -> SchemaRegistry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def check(self) -> None:
        """Ask the registry for its subjects: it answers, and these credentials are let in.

        Raises:
            RegistryUnavailable: If the registry does not answer.
            RegistryError: If it refuses (credentials, a wrong base URL).
        """
        try:
            self._client.get_subjects()
        except Exception as exc:
            raise self._translate(exc, "listing subjects") from exc

    def register(self, topic: str, schema: EventSchema) -> int:
        """Register ``schema`` as the value schema of ``topic``; its id.

        Registering the same schema again returns the same id.

        Raises:
            RegistryUnavailable: If the registry does not answer.
            IncompatibleSchema: If the subject's compatibility rule refuses it.
        """
        from confluent_kafka.schema_registry import Schema

        subject = subject_for(topic)
        try:
            return int(self._client.register_schema(subject, Schema(schema.text, "AVRO")))
        except Exception as exc:
            raise self._translate(exc, f"registering {schema.name} under {subject!r}") from exc

    def fingerprint(self, schema_id: int) -> str:
        """The CRC-64-AVRO fingerprint of the schema registered as ``schema_id`` (cached).

        Raises:
            RegistryUnavailable: If the registry does not answer.
            RegistryError: If it knows no such id.
        """
        found = self._fingerprints.get(schema_id)
        if found is None:
            try:
                registered = self._client.get_schema(schema_id)
            except Exception as exc:
                raise self._translate(exc, f"looking up schema id {schema_id}") from exc
            if not registered.schema_str:
                raise RegistryError(f"schema id {schema_id} at {self.url} has no schema text")
            found = self._fingerprints[schema_id] = fingerprint_of(registered.schema_str)
        return found

    def _translate(self, exc: Exception, what: str) -> RegistryError:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        if isinstance(exc, SchemaRegistryError):
            status = exc.http_status_code
            text = f"{what} at {self.url}: HTTP {status}: {exc.error_message}"
            if status in (_CONFLICT, _INVALID):
                return IncompatibleSchema(text)
            if status >= 500 or status == -1:
                return RegistryUnavailable(text)
            return RegistryError(text)
        return RegistryUnavailable(f"{what} at {self.url}: {type(exc).__name__}: {exc}")
