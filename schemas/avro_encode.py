"""Avro binary Kafka record values from Arrow tables of events, a column at a time.

Encoding works a column at a time. Every field becomes one or more *pieces*: binary
Arrow arrays holding, for each row, one part of that field's Avro encoding (a union
branch, a length varint, the UTF-8 bytes, ...). Arrow's ``binary_join_element_wise``
then concatenates the pieces row by row in C++, so no Python object is made per value,
only the one ``bytes`` per row the caller asked for. A null row's pieces are null and
join as nothing, which is how a ``["null", T]`` union skips its value. The pieces are
planned from the parsed Avro schema, not from a field list, and the output is
byte-for-byte what ``fastavro.schemaless_writer`` writes for ``table.to_pylist()``
(tests check it; ``bench/avro_encode.py`` measures the two).

How the values are wrapped (raw, or Confluent's wire format) is :mod:`schemas.framing`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import SchemaError
from schemas.event import EventSchema
from schemas.framing import Framing, PrefixFraming

__all__ = ["TableEncoder", "buffer_view", "value_offsets", "varints"]

# Rows joined at once: bounds the temporary arrays and keeps every piece under the 2 GiB
# that 32-bit Arrow offsets address, unless rows average more than 32 KiB.
_BATCH_ROWS = 65_536
_BINARY = pa.binary()
_NOTHING = pa.scalar(b"", _BINARY)

#: Encodes one column into pieces; the second argument is the validity bitmap (or None)
#: that the pieces must carry so that null rows join as nothing.
_Encode = Callable[[pa.Array, pa.Buffer | None], list[pa.Array]]


class TableEncoder:
    """Encodes Arrow tables of an event schema into framed Avro values, one per row.

    Args:
        schema: The event schema; tables must have (or cast to) its Arrow schema.
        framing: How each payload is wrapped.

    Raises:
        SchemaError: If the Avro schema uses a type this encoder does not write.
    """

    def __init__(self, schema: EventSchema, framing: Framing) -> None:
        self._schema = schema
        self._framing = framing
        named: dict[str, Any] = dict(schema.avro.get("__named_schemas", {}))
        self._plan = [
            (field["name"], _field_encoder(field["name"], field["type"], named))
            for field in schema.avro["fields"]
        ]

    def encode(self, table: pa.Table) -> list[bytes]:
        """One framed Avro value per row of ``table``, in row order.

        Raises:
            ValueError: If the table does not cast to the schema, has a null in a field
                that is not nullable, or an enum value that is not a symbol.
        """
        return [value for array in self._encoded(table) for value in array.to_pylist()]

    def encode_array(self, table: pa.Table) -> pa.Array:
        """The framed Avro values of ``table``'s rows as one binary array, in row order.

        The values share 32-bit offsets: at most 2 GiB in all (a stream chunk's
        ``chunk_rows`` keep far below it).

        Raises:
            ValueError: As :meth:`encode`.
        """
        values = list(self._encoded(table))
        if not values:
            return pa.array([], _BINARY)
        return values[0] if len(values) == 1 else pa.concat_arrays(values)

    def _encoded(self, table: pa.Table) -> Iterator[pa.Array]:
        table = self._conform(table)
        framing = self._framing
        # A header-only framing is joined in with the pieces; any other frames each value.
        prefix = framing.prefix if isinstance(framing, PrefixFraming) else None
        header = [pa.scalar(prefix, _BINARY)] if prefix else []
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            if batch.num_rows == 0:
                continue
            pieces = list(header)
            for (name, encode), column in zip(self._plan, batch.columns, strict=True):
                try:
                    pieces += encode(column, None)
                except ValueError as exc:
                    raise ValueError(f"field {name!r}: {exc}") from exc
            joined = pc.binary_join_element_wise(*pieces, _NOTHING, null_handling="replace")
            if prefix is None:
                joined = pa.array([framing.frame(v) for v in joined.to_pylist()], _BINARY)
            yield joined

    def _conform(self, table: pa.Table) -> pa.Table:
        target = self._schema.arrow
        if table.schema.equals(target, check_metadata=False):
            return table
        try:
            return table.select(target.names).cast(target)
        except (KeyError, pa.ArrowException) as exc:
            raise ValueError(
                f"table does not cast to the {self._schema.name} schema: {exc}"
            ) from exc


# --- Planning: Avro type -> piece encoder ------------------------------------------------


def _field_encoder(name: str, avro_type: Any, named: dict[str, Any]) -> _Encode:
    if isinstance(avro_type, list):
        return _union(name, avro_type, named)
    inner = _value_encoder(name, avro_type, named)

    def required(column: pa.Array, _: pa.Buffer | None) -> list[pa.Array]:
        if column.null_count:
            raise ValueError(f"{column.null_count} nulls, but the Avro type is not nullable")
        return inner(column, None)

    return required


def _union(name: str, branches: list[Any], named: dict[str, Any]) -> _Encode:
    others = [i for i, branch in enumerate(branches) if branch != "null"]
    if len(branches) != 2 or len(others) != 1:
        raise SchemaError(f"field {name!r}: only [null, T] unions are supported, got {branches}")
    value_index = others[0]
    inner = _value_encoder(name, branches[value_index], named)
    # Avro writes the branch index as a zig-zag varint: one byte for index 0 or 1.
    branch_bytes = np.array([2 * (1 - value_index), 2 * value_index], dtype=np.uint8)

    def union(column: pa.Array, _: pa.Buffer | None) -> list[pa.Array]:
        validity = _validity(column)
        valid = (
            np.ones(len(column), dtype=np.uint8)
            if validity is None
            else _bits(column.buffers()[0], column)
        )
        branch = _fixed_width(branch_bytes[valid], 1, None)
        return [branch, *inner(column, validity)]

    return union


def _value_encoder(name: str, avro_type: Any, named: dict[str, Any]) -> _Encode:
    if isinstance(avro_type, str) and avro_type in named:
        avro_type = named[avro_type]
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        base = avro_type["type"]
        if base == "long" and logical in ("timestamp-micros", "timestamp-millis", None):
            return _encode_long
        if base == "bytes" and logical == "decimal":
            return _encode_decimal
        if base == "enum":
            named[avro_type["name"]] = avro_type
            return _enum_encoder(avro_type["symbols"])
        if logical is None:
            return _value_encoder(name, base, named)
    elif avro_type in _PRIMITIVE_ENCODERS:
        return _PRIMITIVE_ENCODERS[avro_type]
    raise SchemaError(f"field {name!r}: TableEncoder does not write Avro type {avro_type!r}")


# --- Piece encoders --------------------------------------------------------------------


def _encode_string(column: pa.Array, validity: pa.Buffer | None) -> list[pa.Array]:
    offsets = value_offsets(column)
    # The content is the column's own data buffer: its null slots join as nothing.
    return [varints(np.diff(offsets).astype(np.int64), validity), column.view(_BINARY)]


def _encode_long(column: pa.Array, validity: pa.Buffer | None) -> list[pa.Array]:
    width = column.type.bit_width // 8
    return [varints(buffer_view(column, np.dtype(f"<i{width}")).astype(np.int64), validity)]


def _encode_boolean(column: pa.Array, validity: pa.Buffer | None) -> list[pa.Array]:
    return [_fixed_width(_bits(column.buffers()[1], column), 1, validity)]


def _encode_floating(column: pa.Array, validity: pa.Buffer | None) -> list[pa.Array]:
    # Avro floats and doubles are IEEE-754 little-endian, as Arrow stores them.
    width = column.type.bit_width // 8
    raw = buffer_view(column, np.dtype(f"<u{width}")).view(np.uint8)
    return [_fixed_width(raw, width, validity)]


def _encode_decimal(column: pa.Array, validity: pa.Buffer | None) -> list[pa.Array]:
    """Big-endian two's complement of the unscaled value, sized like fastavro sizes it.

    fastavro takes ``(magnitude.bit_length() + 8) // 8`` bytes: minimal for non-negative
    values, one byte more than minimal for negative powers of 256 (e.g. -128 -> ff 80).
    Readers decode both; the rule is kept so the bytes equal fastavro's.
    """
    if column.type.byte_width != 16:
        raise ValueError(f"expected decimal128, got {column.type}")
    words = buffer_view(column, np.dtype("<u8"), scale=2).reshape(-1, 2)
    lo, hi = words[:, 0], words[:, 1]
    negative = hi.view(np.int64) < 0
    mag_lo = np.where(negative, ~lo + np.uint64(1), lo)
    mag_hi = np.where(negative, ~hi + (mag_lo == 0), hi)
    sizes = np.ones(len(column), dtype=np.int32)
    for size in range(1, 16):  # one more byte for each 2**(8 * size - 1) the magnitude reaches
        bit = 8 * size - 1
        if bit < 64:
            sizes += (mag_hi > 0) | (mag_lo >= np.uint64(1 << bit))
        else:
            sizes += mag_hi >= np.uint64(1 << (bit - 64))
    big_endian = words.view(np.uint8).reshape(-1, 16)[:, ::-1]
    data = big_endian[np.arange(16) >= (16 - sizes)[:, None]]
    return [_fixed_width(2 * sizes.astype(np.uint8), 1, validity), _variable(data, sizes, validity)]


def _enum_encoder(symbols: list[str]) -> _Encode:
    value_set = pa.array(symbols, pa.string())

    def encode(column: pa.Array, validity: pa.Buffer | None) -> list[pa.Array]:
        index = pc.index_in(column, value_set=value_set)
        if index.null_count != column.null_count:
            unknown = pc.filter(column, pc.and_(column.is_valid(), index.is_null()))
            raise ValueError(f"{unknown[0].as_py()!r} is not one of the symbols {symbols}")
        return [varints(index.fill_null(0).to_numpy().astype(np.int64), validity)]

    return encode


_PRIMITIVE_ENCODERS: dict[str, _Encode] = {
    "string": _encode_string,
    "bytes": _encode_string,
    "long": _encode_long,
    "int": _encode_long,
    "boolean": _encode_boolean,
    "double": _encode_floating,
    "float": _encode_floating,
}


# --- Pieces from numpy -----------------------------------------------------------------


def varints(values: np.ndarray, validity: pa.Buffer | None) -> pa.Array:
    """Zig-zag varints of int64 ``values``: 7 bits a byte, low group first, high bit = more.

    Avro's ``int`` and ``long`` and Kafka's record-level varints share this encoding.
    """
    zigzag = ((values << 1) ^ (values >> 63)).view(np.uint64)
    top = int(zigzag.max(initial=0))
    if top < 0x80:  # the common case: lengths, enum and union indexes
        return _fixed_width(zigzag.astype(np.uint8), 1, validity)
    width = (top.bit_length() + 6) // 7
    sizes = np.ones(len(values), dtype=np.int32)
    for group in range(1, width):  # only the groups the largest value reaches
        sizes += zigzag >= np.uint64(1 << (7 * group))
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((zigzag[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    if int(sizes.min()) == width:  # e.g. timestamps of one era: no ragged selection
        groups[:, :-1] |= 0x80
        return _fixed_width(groups.reshape(-1), width, validity)
    position = np.arange(width)
    groups[position < sizes[:, None] - 1] |= 0x80
    return _variable(groups[position < sizes[:, None]], sizes, validity)


def _fixed_width(data: np.ndarray, width: int, validity: pa.Buffer | None) -> pa.Array:
    rows = len(data) // width
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(
        _BINARY, rows, [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _variable(data: np.ndarray, sizes: np.ndarray, validity: pa.Buffer | None) -> pa.Array:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(
        _BINARY, len(sizes), [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def buffer_view(column: pa.Array, dtype: Any, *, extra: int = 0, scale: int = 1) -> np.ndarray:
    """The column's value (or offset) buffer as numpy, honouring the array's slice offset.

    No copy: ``extra`` more entries than the array's length (an offset buffer's last),
    ``scale`` entries a value (a 128-bit decimal as two words).
    """
    dtype = np.dtype(dtype)
    count = (len(column) + extra) * scale
    start = column.offset * scale * dtype.itemsize
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=count, offset=start)


def value_offsets(array: pa.Array) -> np.ndarray:
    """A string or binary array's ``len + 1`` value offsets (int32) into its data buffer."""
    return buffer_view(array, np.int32, extra=1)


def _bits(buffer: pa.Buffer, column: pa.Array) -> np.ndarray:
    """A bitmap of the column (its values if boolean, or its validity) as 0/1 bytes."""
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[column.offset : column.offset + len(column)]


def _validity(column: pa.Array) -> pa.Buffer | None:
    """A validity bitmap starting at the column's first row, or None without nulls."""
    if column.null_count == 0:
        return None
    return column.is_valid().buffers()[1]
