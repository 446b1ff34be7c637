"""Which schema each record was written with, and the decoder for it.

A record says how it was written in one of two ways:

* **Raw Avro** (the stream's default): the ``txnsim.schema.fingerprint`` header names the
  writer schema's CRC-64-AVRO fingerprint. A missing or unknown fingerprint decodes with
  the full transaction schema.
* **Confluent wire format**, when the sink has a ``schema_registry``: a value starting
  with the magic byte 0 carries a 4-byte schema id. The id is looked up once in the
  registry, and the schema it names must be one the sink knows (its fingerprint equals a
  known schema's). The magic byte wins over the header, as in Confluent's deserializers;
  a raw txnsim value never starts with 0, since its first field is a non-empty id.

An id the registry does not know, or that names a schema the sink does not know, is not a
failure of the sink: those records become dead letters with the reason. A registry that
does not answer is retried with backoff; past ``registry_give_up_s`` the sink stops
without committing them (exit 1), so nothing is lost.
"""

from __future__ import annotations

import logging
from typing import Any

from schemas.avro_decode import TableDecoder
from schemas.errors import RegistryError, RegistryUnavailable
from schemas.event import EventSchema, known_schemas, transaction_schema
from schemas.framing import FINGERPRINT_HEADER, ConfluentWireFormat, RawAvro
from schemas.registry import SchemaRegistry
from storage.retry import Retrying

__all__ = ["Unresolved", "WriterSchemas", "fingerprint_header"]

log = logging.getLogger("txnsim.sink")

#: The wire format's first byte.
_MAGIC = 0
_HEADER = 5

Resolved = tuple[EventSchema, TableDecoder]


class Unresolved(str):
    """Why the records of a writer key cannot be decoded (their dead letters' reason)."""


class WriterSchemas:
    """Resolves records to known writer schemas, by header or by registry id.

    Args:
        registry: The Schema Registry to resolve wire-format ids against; None reads every
            value as raw Avro.
        retry: The retry policy for an unavailable registry.
    """

    def __init__(self, registry: SchemaRegistry | None, retry: Retrying) -> None:
        self._registry = registry
        self._retry = retry
        self._known = known_schemas()
        #: Decoders by writer key: a fingerprint (raw) or the 5-byte wire header.
        self._resolved: dict[bytes, Resolved | Unresolved] = {
            fingerprint.encode(): (schema, TableDecoder(schema, RawAvro()))
            for fingerprint, schema in self._known.items()
        }
        self._fallback = self._resolved[transaction_schema().fingerprint.encode()]

    def key(self, message: Any) -> bytes:
        """What says how ``message`` was written: its wire header or its fingerprint."""
        value = message.value()
        if self._registry is not None and value and value[0] == _MAGIC and len(value) >= _HEADER:
            return bytes(value[:_HEADER])
        return fingerprint_header(message.headers()) or b""

    def resolve(self, key: bytes) -> Resolved | Unresolved:
        """The schema and decoder for records of writer ``key``, or why there are none.

        Raises:
            RegistryUnavailable: If the registry stays unreachable past the retry policy.
        """
        found = self._resolved.get(key)
        if found is not None:
            return found
        if self._registry is None or len(key) != _HEADER or key[0] != _MAGIC:
            return self._fallback  # no or an unknown fingerprint: the full schema
        found = self._resolved[key] = self._lookup(self._registry, int.from_bytes(key[1:], "big"))
        return found

    def _lookup(self, registry: SchemaRegistry, schema_id: int) -> Resolved | Unresolved:
        try:
            fingerprint = self._retry(
                lambda: registry.fingerprint(schema_id), f"looking up schema id {schema_id}"
            )
        except RegistryUnavailable:
            raise
        except RegistryError as exc:
            log.warning("unknown schema id", extra={"schema_id": schema_id, "error": str(exc)})
            return Unresolved(str(exc))
        schema = self._known.get(fingerprint)
        if schema is None:
            return Unresolved(
                f"schema id {schema_id} at {registry.url} is not a schema this sink knows "
                f"(fingerprint {fingerprint}; it knows "
                + ", ".join(sorted(f"{s.name} {f}" for f, s in self._known.items()))
                + ")"
            )
        log.info(
            "schema id resolved",
            extra={"schema_id": schema_id, "schema": schema.name},
        )
        return schema, TableDecoder(schema, ConfluentWireFormat(schema_id))


def fingerprint_header(headers: list[tuple[str, bytes | None]] | None) -> bytes | None:
    """The writer schema's fingerprint from a record's headers, if it has one."""
    for name, value in headers or ():
        if name == FINGERPRINT_HEADER:
            return value
    return None
