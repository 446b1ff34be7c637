"""Properties of the framings: Confluent's wire format byte for byte, and decoding through it."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.avro_decode import TableDecoder
from schemas.avro_encode import TableEncoder
from schemas.avro_records import RecordDecoder
from schemas.errors import DecodeError
from schemas.event import transaction_schema
from schemas.framing import ConfluentWireFormat, Framing, RawAvro
from tests.strategies import framings, schema_ids, transactions

SCHEMA = transaction_schema()
_payloads = st.binary(max_size=300)


@given(_payloads, schema_ids())
def test_confluent_frame_unframe_round_trip(payload: bytes, schema_id: int) -> None:
    framing = ConfluentWireFormat(schema_id)
    value = framing.frame(payload)
    assert framing.unframe(value) == payload
    assert len(value) == 5 + len(payload)
    assert value[5:] == payload


@given(_payloads, schema_ids())
def test_confluent_header_is_magic_zero_and_a_big_endian_java_int(
    payload: bytes, schema_id: int
) -> None:
    value = ConfluentWireFormat(schema_id).frame(payload)
    assert value[0] == 0
    # What a JVM deserialiser does: ByteBuffer.get() then getInt(), big-endian, signed.
    magic, read_id = struct.unpack(">bi", value[:5])
    assert (magic, read_id) == (0, schema_id)
    assert value[1:5] == schema_id.to_bytes(4, "big")


@given(_payloads)
def test_raw_avro_is_the_payload_itself(payload: bytes) -> None:
    assert RawAvro().frame(payload) == payload
    assert RawAvro().unframe(payload) == payload


@given(_payloads, schema_ids(), st.integers(1, 255))
def test_a_wrong_magic_byte_is_a_decode_error(payload: bytes, schema_id: int, magic: int) -> None:
    framing = ConfluentWireFormat(schema_id)
    value = bytes([magic]) + framing.frame(payload)[1:]
    with pytest.raises(DecodeError, match="magic byte"):
        framing.unframe(value)


@given(st.binary(max_size=4), schema_ids())
def test_a_value_shorter_than_the_header_is_a_decode_error(value: bytes, schema_id: int) -> None:
    with pytest.raises(DecodeError, match="shorter than the 5-byte header"):
        ConfluentWireFormat(schema_id).unframe(value)


@given(_payloads, schema_ids(), schema_ids())
def test_another_schema_id_is_a_decode_error(payload: bytes, expected: int, written: int) -> None:
    assume(expected != written)
    value = ConfluentWireFormat(written).frame(payload)
    with pytest.raises(DecodeError, match=f"schema id is {written}, expected {expected}"):
        ConfluentWireFormat(expected).unframe(value)


@given(st.integers(max_value=-1) | st.integers(min_value=2**31) | st.booleans())
def test_ids_a_java_int_cannot_hold_are_refused(schema_id: int) -> None:
    with pytest.raises(ValueError, match="schema_id"):
        ConfluentWireFormat(schema_id)


@pytest.mark.parametrize("schema_id", [1.0, np.int64(5), "5"], ids=["float", "numpy", "str"])
def test_ids_that_are_not_ints_are_refused(schema_id: Any) -> None:
    with pytest.raises(ValueError, match="schema_id"):
        ConfluentWireFormat(schema_id)


class _LengthPrefixed:
    """A framing that is not a fixed header: the decoders must call ``unframe`` per value."""

    name = "length-prefixed"

    def frame(self, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + payload

    def unframe(self, data: bytes) -> bytes:
        if len(data) < 4 or int.from_bytes(data[:4], "big") != len(data) - 4:
            raise DecodeError(f"length prefix does not match a {len(data)}-byte value")
        return data[4:]


def _broken(value: bytes, framing: Framing, how: str, data: st.DataObject) -> bytes:
    """``value`` with its framing broken in the way ``how`` names."""
    if how == "short":
        return value[: data.draw(st.integers(0, 4))]
    if isinstance(framing, ConfluentWireFormat):
        if how == "magic":
            return bytes([data.draw(st.integers(1, 255))]) + value[1:]
        other = data.draw(schema_ids().filter(lambda i: i != framing.schema_id))
        return ConfluentWireFormat(other).frame(value[5:])
    return b"\xff" + value  # the length prefix no longer matches


_kinds = st.sampled_from(["good", "good", "short", "magic", "id"])


@given(
    st.lists(transactions(), min_size=1, max_size=3),
    st.one_of(st.builds(ConfluentWireFormat, schema_ids()), st.just(_LengthPrefixed())),
    st.lists(_kinds, min_size=1, max_size=12),
    st.data(),
)
def test_table_decoder_decodes_a_mixed_batch_through_its_framing(
    records: list[dict[str, Any]], framing: Framing, kinds: list[str], data: st.DataObject
) -> None:
    """Well-framed values decode, in input order; each badly framed one is reported by index."""
    encoded = TableEncoder(SCHEMA, framing).encode(pa.Table.from_pylist(records, SCHEMA.arrow))
    values: list[bytes] = []
    kept: list[dict[str, Any]] = []
    for at, kind in enumerate(kinds):
        value = encoded[at % len(encoded)]
        if kind == "good":
            kept.append(records[at % len(records)])
        else:
            value = _broken(value, framing, kind, data)
        values.append(value)
    decoded = TableDecoder(SCHEMA, framing).decode(values)
    good = [i for i, kind in enumerate(kinds) if kind == "good"]
    assert decoded.rows.tolist() == good
    assert decoded.table.to_pylist() == kept
    assert decoded.table.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert [i for i, _ in decoded.errors] == [i for i in range(len(kinds)) if i not in good]
    reference = RecordDecoder(SCHEMA, framing)
    for index, reason in decoded.errors:
        with pytest.raises(DecodeError) as caught:
            reference.decode(values[index])
        assert reason == str(caught.value)


@given(
    st.lists(transactions(), min_size=1, max_size=4),
    framings(),
    st.builds(ConfluentWireFormat, schema_ids()),
)
def test_a_batch_framed_otherwise_decodes_nothing(
    records: list[dict[str, Any]], written: Framing, expected: ConfluentWireFormat
) -> None:
    """Raw values, or values of another schema id, never pass as records."""
    assume(repr(written) != repr(expected))
    values = TableEncoder(SCHEMA, written).encode(pa.Table.from_pylist(records, SCHEMA.arrow))
    assume(all(value[:5] != expected.frame(b"") for value in values))
    decoded = TableDecoder(SCHEMA, expected).decode(values)
    assert decoded.table.num_rows == 0
    assert [i for i, _ in decoded.errors] == list(range(len(records)))
