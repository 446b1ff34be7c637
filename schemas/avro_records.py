"""Per-record Avro decoding with fastavro: the reference the columnar decoder is held to.

Any failure, whatever fastavro raised, becomes a :class:`~schemas.errors.DecodeError`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import fastavro
import pyarrow as pa

from schemas.errors import DecodeError
from schemas.event import EventSchema
from schemas.framing import Framing

__all__ = ["RecordDecoder"]


class RecordDecoder:
    """Decodes framed Avro values of an event schema, for consumers.

    Args:
        schema: The writer's event schema.
        framing: How the values are wrapped.
    """

    def __init__(self, schema: EventSchema, framing: Framing) -> None:
        self._schema = schema
        self._framing = framing

    def decode(self, value: bytes) -> dict[str, Any]:
        """The record in ``value``: datetimes in UTC, decimals as ``Decimal``, enums as str.

        Raises:
            DecodeError: If the framing is wrong, the payload is truncated or malformed,
                or bytes are left over after the record.
        """
        payload = self._framing.unframe(value)
        stream = io.BytesIO(payload)
        try:
            record = fastavro.schemaless_reader(stream, self._schema.avro)
        # fastavro raises an open set on malformed input (EOFError, ValueError,
        # IndexError, OverflowError, ...); none of it may escape as anything else.
        except Exception as exc:
            raise DecodeError(
                f"{len(payload)}-byte {self._schema.name} payload does not decode: {exc!r}"
            ) from exc
        if stream.tell() != len(payload):
            raise DecodeError(
                f"{len(payload) - stream.tell()} bytes left after the {self._schema.name} "
                f"record in a {len(payload)}-byte payload"
            )
        if not isinstance(record, dict):  # pragma: no cover - the schema is a record
            raise DecodeError(f"decoded a {type(record).__name__}, not a record")
        return record

    def decode_many(self, values: Iterable[bytes]) -> pa.Table:
        """A table with exactly the schema's Arrow schema, one row per value, in order.

        Raises:
            DecodeError: If a value does not decode, or a decoded value does not fit the
                Arrow type (e.g. a decimal wider than its precision).
        """
        records = [self.decode(value) for value in values]
        try:
            return pa.Table.from_pylist(records, schema=self._schema.arrow)
        except pa.ArrowException as exc:
            raise DecodeError(f"decoded records do not fit the Arrow schema: {exc}") from exc
