"""How an Avro payload travels in a Kafka record: the value's framing and the headers.

Two framings: :class:`RawAvro` (the bare Avro body; the reader learns the writer schema
from the ``txnsim.schema.fingerprint`` header) and :class:`ConfluentWireFormat` (magic
byte 0, the 4-byte big-endian Schema Registry id, the body), which JVM serdes, Flink and
ksqlDB read natively.
"""

from __future__ import annotations

from typing import Protocol

from schemas.errors import DecodeError
from schemas.event import EventSchema

__all__ = [
    "CONTENT_TYPE",
    "FINGERPRINT_HEADER",
    "SCHEMA_HEADER",
    "ConfluentWireFormat",
    "Framing",
    "PrefixFraming",
    "RawAvro",
    "record_headers",
]

#: Header naming the writer schema's full name.
SCHEMA_HEADER = "txnsim.schema"
#: Header carrying the writer schema's CRC-64-AVRO fingerprint (hex): how a reader picks
#: the schema of a raw value.
FINGERPRINT_HEADER = "txnsim.schema.fingerprint"
CONTENT_TYPE = ("content-type", b"application/vnd.apache.avro")


def record_headers(schema: EventSchema) -> list[tuple[str, bytes]]:
    """Headers on every record: the writer schema's full name and fingerprint."""
    return [
        (SCHEMA_HEADER, str(schema.avro["name"]).encode()),
        (FINGERPRINT_HEADER, schema.fingerprint.encode()),
        CONTENT_TYPE,
    ]


class Framing(Protocol):
    """How an Avro payload is wrapped in a Kafka record value."""

    name: str

    def frame(self, payload: bytes) -> bytes:
        """The record value carrying ``payload``."""
        ...

    def unframe(self, data: bytes) -> bytes:
        """The payload of record value ``data``; raises :class:`DecodeError` if malformed."""
        ...


class PrefixFraming:
    """A framing that only puts a fixed header before the payload (the encoder joins it in)."""

    prefix = b""

    def frame(self, payload: bytes) -> bytes:
        """The header followed by the payload."""
        return self.prefix + payload


class RawAvro(PrefixFraming):
    """Plain Avro binary, no header: the reader must know the writer's schema."""

    name = "raw"

    def unframe(self, data: bytes) -> bytes:
        """The value itself."""
        return data

    def __repr__(self) -> str:
        return "RawAvro()"


class ConfluentWireFormat(PrefixFraming):
    """Confluent's wire format: magic byte 0, the 4-byte big-endian schema id, the payload.

    Args:
        schema_id: The id a Schema Registry gave the writer's schema.

    Raises:
        ValueError: If the id is not a non-negative 32-bit signed integer (Java clients
            read it as an ``int``).
    """

    name = "confluent"

    def __init__(self, schema_id: int) -> None:
        if type(schema_id) is not int or not 0 <= schema_id < 2**31:
            raise ValueError(f"schema_id must be an int in [0, 2**31), got {schema_id!r}")
        self.schema_id = schema_id
        self.prefix = b"\x00" + schema_id.to_bytes(4, "big")

    def unframe(self, data: bytes) -> bytes:
        """The payload after the header, once the magic byte and schema id are checked."""
        if len(data) < 5:
            raise DecodeError(f"value of {len(data)} bytes is shorter than the 5-byte header")
        if data[0] != 0:
            raise DecodeError(f"magic byte is {data[0]:#04x}, expected 0x00")
        schema_id = int.from_bytes(data[1:5], "big")
        if schema_id != self.schema_id:
            raise DecodeError(f"schema id is {schema_id}, expected {self.schema_id}")
        return data[5:]

    def __repr__(self) -> str:
        return f"ConfluentWireFormat(schema_id={self.schema_id})"
