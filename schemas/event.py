"""The transaction event schema: Avro as the source of truth, Arrow derived from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import fastavro
import pyarrow as pa
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas import load_schema
from schemas.errors import SchemaError

__all__ = [
    "LABEL_FIELDS",
    "EventSchema",
    "arrow_type",
    "fingerprint_of",
    "known_schemas",
    "known_transaction_schemas",
    "landing_of",
    "public_transaction_schema",
    "transaction_schema",
]

#: The fields of ``transaction.avsc`` that carry the answer (ground truth and when it is
#: learned); a scoring system under test must not see them.
LABEL_FIELDS = ("is_fraud", "fraud_scenario", "fraud_case_id", "label_available_at")


@dataclass(frozen=True)
class EventSchema:
    """An Avro schema, parsed once, with its derived Arrow schema and fingerprint.

    Attributes:
        name: The schema file's name, e.g. ``"transaction"``.
        avro: The schema as parsed by fastavro (ready for readers and writers).
        arrow: The Arrow schema with the same field names, order and nullability.
        fingerprint: CRC-64-AVRO (Rabin) fingerprint of the parsing canonical form, hex.
        text: The schema as JSON, with its logical types and docs (what a Schema Registry
            is given: the canonical form would drop the logical types).
    """

    name: str
    avro: Any
    arrow: pa.Schema
    fingerprint: str
    text: str = ""


def arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """Map an Avro field type to an Arrow type and whether it is nullable.

    Raises:
        SchemaError: For Avro types the Parquet layout does not support.
    """
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise SchemaError(f"only [null, T] unions are supported, got {avro_type!r}")
        inner, _ = arrow_type(branches[0])
        return inner, "null" in avro_type
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        base = avro_type["type"]
        if logical == "timestamp-micros" and base == "long":
            return pa.timestamp("us", tz="UTC"), False
        if logical == "timestamp-millis" and base == "long":
            return pa.timestamp("ms", tz="UTC"), False
        if logical == "decimal" and base in ("bytes", "fixed"):
            return pa.decimal128(avro_type["precision"], avro_type.get("scale", 0)), False
        if base == "enum":
            return pa.string(), False
        if isinstance(base, str) and base in _PRIMITIVES:
            return _PRIMITIVES[base], False
        raise SchemaError(f"unsupported Avro type {avro_type!r}")
    if avro_type in _PRIMITIVES:
        return _PRIMITIVES[avro_type], False
    raise SchemaError(f"unsupported Avro type {avro_type!r}")


_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "bytes": pa.binary(),
}


@cache
def transaction_schema(name: str = "transaction") -> EventSchema:
    """Load, parse and derive the schema ``<name>.avsc`` once per process."""
    return _derive(name, load_schema(name))


@cache
def public_transaction_schema() -> EventSchema:
    """``transaction.avsc`` without :data:`LABEL_FIELDS`: what a streamed scorer may see.

    The same record name (``io.txnsim.Transaction``), so readers resolve it alike, but its
    own fingerprint, which record headers and landed files carry.
    """
    raw = load_schema("transaction")
    missing = set(LABEL_FIELDS) - {field["name"] for field in raw["fields"]}
    if missing:
        raise SchemaError(f"transaction schema lacks label field(s) {sorted(missing)}")
    raw["fields"] = [field for field in raw["fields"] if field["name"] not in LABEL_FIELDS]
    return _derive("transaction_public", raw)


def known_transaction_schemas() -> dict[str, EventSchema]:
    """The transaction schemas a stream may be written with, by fingerprint."""
    return {s.fingerprint: s for s in (transaction_schema(), public_transaction_schema())}


def known_schemas() -> dict[str, EventSchema]:
    """Every schema a topic of ours may carry (transactions and fraud labels), by fingerprint."""
    labels = transaction_schema("fraud_label")
    return {**known_transaction_schemas(), labels.fingerprint: labels}


def fingerprint_of(text: str) -> str:
    """CRC-64-AVRO fingerprint (hex) of a schema given as JSON text.

    Raises:
        SchemaError: If the text is not an Avro schema.
    """
    try:
        return str(
            fingerprint(
                to_parsing_canonical_form(fastavro.parse_schema(json.loads(text))), "CRC-64-AVRO"
            )
        )
    except Exception as exc:
        raise SchemaError(f"not an Avro schema: {exc}") from exc


def landing_of(schema: EventSchema) -> tuple[str, str]:
    """The dataset folder a schema's records land in, and the time column of their ``dt``.

    Transactions land in ``transactions/`` by event date; fraud labels in ``labels/`` by
    the date the label becomes available, as ``txnsim generate`` lands them.
    """
    if schema.name == "fraud_label":
        return "labels", "label_time"
    return "transactions", "event_time"


def _derive(name: str, raw: dict[str, Any]) -> EventSchema:
    try:
        parsed = fastavro.parse_schema(raw)
    except Exception as exc:
        raise SchemaError(f"schema {name!r} does not parse: {exc}") from exc
    fields = []
    for field in raw["fields"]:
        typ, nullable = arrow_type(field["type"])
        fields.append(pa.field(field["name"], typ, nullable=nullable))
    print_ = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    metadata = {
        b"avro.schema.name": raw["name"].encode(),
        b"avro.schema.fingerprint": print_.encode(),
    }
    return EventSchema(
        name=name,
        avro=parsed,
        arrow=pa.schema(fields, metadata=metadata),
        fingerprint=print_,
        text=json.dumps(raw, separators=(",", ":")),
    )
