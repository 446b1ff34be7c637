"""TableDecoder gives exactly what fastavro + ``pa.Table.from_pylist`` give, value for value."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import fastavro
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.avro_decode import Decoded, TableDecoder
from schemas.avro_encode import TableEncoder
from schemas.avro_records import RecordDecoder
from schemas.errors import DecodeError
from schemas.event import transaction_schema
from schemas.framing import ConfluentWireFormat, Framing, RawAvro
from tests.strategies import sample_transaction, transactions

SCHEMA = transaction_schema()
FRAMINGS: list[Framing] = [RawAvro(), ConfluentWireFormat(42)]
_framings = st.sampled_from(FRAMINGS)
# Drawing a transaction is slow (~0.1 s on the CI machine): few per example, reused below.
_records = st.lists(transactions(), min_size=1, max_size=3)

# Python's datetime range, which fastavro's timestamp-micros reader is bound to.
_MIN_MICROS = -62_135_596_800 * 10**6
_MAX_MICROS = 253_402_300_800 * 10**6 - 1


def _encode(records: list[dict[str, Any]], framing: Framing) -> list[bytes]:
    values = []
    for record in records:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, SCHEMA.avro, record)
        values.append(framing.frame(out.getvalue()))
    return values


def _zigzag(value: int) -> bytes:
    raw = (value << 1) ^ (value >> 63)
    out = bytearray()
    while raw >= 0x80:
        out.append(raw & 0x7F | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


class _Reference:
    """The specification: fastavro per value, then ``from_pylist`` with the Arrow schema."""

    def __init__(self, values: Sequence[bytes], framing: Framing) -> None:
        decoder = RecordDecoder(SCHEMA, framing)
        records: list[dict[str, Any]] = []
        self.rows: list[int] = []
        self.errors: dict[int, Exception] = {}
        for index, value in enumerate(values):
            try:
                record = decoder.decode(value)
                pa.Table.from_pylist([record], schema=SCHEMA.arrow)
            except (DecodeError, pa.ArrowException) as exc:
                self.errors[index] = exc
            else:
                records.append(record)
                self.rows.append(index)
        self.table = pa.Table.from_pylist(records, schema=SCHEMA.arrow)


def _same_content(got: pa.Table, want: pa.Table) -> bool:
    """Equal schemas and values; NaNs (from corrupted doubles) compare by their bits."""
    if not got.schema.equals(want.schema, check_metadata=True):
        return False
    if got.equals(want):
        return True
    encoder = TableEncoder(SCHEMA, RawAvro())
    return got.num_rows == want.num_rows and encoder.encode(got) == encoder.encode(want)


def _check(decoded: Decoded, values: Sequence[bytes], framing: Framing) -> None:
    reference = _Reference(values, framing)
    got_rows = decoded.rows.tolist()
    assert got_rows == reference.rows
    assert [index for index, _ in decoded.errors] == sorted(reference.errors)
    assert all(isinstance(reason, str) and reason for _, reason in decoded.errors)
    assert decoded.table.num_rows == len(got_rows)
    assert _same_content(decoded.table, reference.table)


# Half the profile's examples: record generation dominates, and the corruption
# property below decodes valid values too.
_FEWER = settings(max_examples=20)


@_FEWER
@given(_records, _framings)
def test_valid_values_decode_like_the_reference(
    records: list[dict[str, Any]], framing: Framing
) -> None:
    values = _encode(records, framing)
    decoded = TableDecoder(SCHEMA, framing).decode(values)
    expected = pa.Table.from_pylist(
        [RecordDecoder(SCHEMA, framing).decode(v) for v in values], schema=SCHEMA.arrow
    )
    assert decoded.table.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert decoded.table.equals(expected)
    assert decoded.table.to_pylist() == records
    assert decoded.rows.tolist() == list(range(len(records)))
    assert decoded.errors == []
    # The encoder's output is the same bytes, so it decodes the same.
    table = pa.Table.from_pylist(records, schema=SCHEMA.arrow)
    assert TableEncoder(SCHEMA, framing).encode(table) == values


@st.composite
def _corrupted(draw: st.DrawFn, value: bytes, framing: Framing) -> bytes:
    """``value`` kept, truncated, flipped, overwritten, extended, or replaced by garbage."""
    kind = draw(st.sampled_from(["keep", "cut", "flip", "set", "append", "garbage", "empty"]))
    if kind == "cut":
        return value[: draw(st.integers(0, len(value) - 1))]
    if kind in ("flip", "set"):
        data = bytearray(value)
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data) - 1))
            if kind == "flip":
                data[at] ^= draw(st.integers(1, 255))
            else:  # bytes that make varints long, negative or empty
                data[at] = draw(st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF]))
        return bytes(data)
    if kind == "append":
        return value + draw(st.binary(min_size=1, max_size=4))
    if kind == "garbage":
        # Behind a correct header half the time, so the payload itself is read.
        header = framing.frame(b"") if draw(st.booleans()) else b""
        return header + draw(st.binary(max_size=80))
    if kind == "empty":
        return b""
    return value


@given(_records, st.integers(1, 12), _framings, st.data())
def test_corrupted_values_are_decoded_or_reported_like_the_reference(
    records: list[dict[str, Any]], count: int, framing: Framing, data: st.DataObject
) -> None:
    good = _encode(records, framing)
    values = [data.draw(_corrupted(good[i % len(good)], framing)) for i in range(count)]
    _check(TableDecoder(SCHEMA, framing).decode(values), values, framing)


@_FEWER
@given(_records, st.lists(st.booleans(), min_size=1, max_size=12), _framings, st.data())
def test_good_and_bad_values_keep_input_order(
    records: list[dict[str, Any]], bad: list[bool], framing: Framing, data: st.DataObject
) -> None:
    good = _encode(records, framing)
    values: list[bytes] = []
    good_at: list[int] = []
    kept: list[dict[str, Any]] = []
    for at, is_bad in enumerate(bad):
        value, record = good[at % len(good)], records[at % len(records)]
        if is_bad:  # a truncation, bytes left over, or nothing
            breakage = data.draw(st.sampled_from(["cut", "extra", "empty"]))
            if breakage == "cut":
                value = value[: data.draw(st.integers(0, len(value) - 1))]
            else:
                value = value + b"\x00" if breakage == "extra" else b""
        else:
            good_at.append(len(values))
            kept.append(record)
        values.append(value)
    decoded = TableDecoder(SCHEMA, framing).decode(values)
    assert decoded.rows.tolist() == good_at
    assert [index for index, _ in decoded.errors] == [i for i, b in enumerate(bad) if b]
    assert decoded.table.to_pylist() == kept
    _check(decoded, values, framing)


@pytest.fixture
def transaction() -> dict[str, Any]:
    return sample_transaction()


def test_wrong_confluent_header_is_an_error(transaction: dict[str, Any]) -> None:
    framing = ConfluentWireFormat(42)
    (value,) = _encode([transaction], framing)
    values = [
        value,
        b"\x01" + value[1:],  # magic byte
        value[:4] + b"\x2b" + value[5:],  # schema id 43
        ConfluentWireFormat(2**31 - 1).frame(value[5:]),
        value[:4],  # shorter than the header
        value[:5],  # a header and no payload
        value[5:],  # no header at all
        value,
    ]
    decoded = TableDecoder(SCHEMA, framing).decode(values)
    assert decoded.rows.tolist() == [0, 7]
    assert [index for index, _ in decoded.errors] == [1, 2, 3, 4, 5, 6]
    assert "magic byte is 0x01" in decoded.errors[0][1]
    assert "schema id is 43, expected 42" in decoded.errors[1][1]
    _check(decoded, values, framing)


def _with_event_time(value: bytes, micros: int) -> bytes:
    """A raw transaction value with its event_time varint replaced."""
    start = 1 + 16  # the 16-character transaction_id and its length
    end = start + next(i for i, byte in enumerate(value[start:]) if byte < 0x80) + 1
    return value[:start] + _zigzag(micros) + value[end:]


def _amount_bytes(value: bytes, amount: bytes) -> bytes:
    """A raw transaction value with the decimal's bytes replaced (amount is the 6th field)."""
    reader = io.BytesIO(value)
    reader.seek(_read_long(reader), io.SEEK_CUR)  # transaction_id
    _read_long(reader)  # event_time
    for _ in range(3):  # card_id, cardholder_id, merchant_id
        reader.seek(_read_long(reader), io.SEEK_CUR)
    start = reader.tell()
    end = _read_long(reader) + reader.tell()
    return value[:start] + _zigzag(len(amount)) + amount + value[end:]


def _read_long(reader: io.BytesIO) -> int:
    shift = raw = 0
    while True:
        byte = reader.read(1)[0]
        raw |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1)


def test_event_times_at_the_datetime_bounds_decode(transaction: dict[str, Any]) -> None:
    (value,) = _encode([transaction], RawAvro())
    values = [_with_event_time(value, micros) for micros in (_MIN_MICROS, 0, _MAX_MICROS)]
    decoded = TableDecoder(SCHEMA, RawAvro()).decode(values)
    assert decoded.rows.tolist() == [0, 1, 2]
    _check(decoded, values, RawAvro())


@pytest.mark.parametrize("micros", [_MAX_MICROS + 1, _MIN_MICROS - 1, 2**62, -(2**63)])
def test_timestamps_outside_the_datetime_range_are_errors(
    transaction: dict[str, Any], micros: int
) -> None:
    (value,) = _encode([transaction], RawAvro())
    bad = _with_event_time(value, micros)
    with pytest.raises(DecodeError, match="date value out of range"):
        RecordDecoder(SCHEMA, RawAvro()).decode(bad)
    decoded = TableDecoder(SCHEMA, RawAvro()).decode([value, bad])
    assert decoded.rows.tolist() == [0]
    assert [index for index, _ in decoded.errors] == [1]


@pytest.mark.parametrize(
    "amount",
    [
        b"\x00" * 8 + b"\x04\xd2",  # 12.34, sign-extended to 10 bytes: fastavro's business
        b"\xff" * 9 + b"\x85",  # -1.23 the same way
        (10**18 - 1).to_bytes(8, "big"),  # the widest value that fits decimal(18, 2)
        (10**18).to_bytes(8, "big"),  # one digit too many for decimal(18, 2)
        (-(10**18)).to_bytes(8, "big", signed=True),
        (10**30).to_bytes(13, "big"),
        b"",  # an empty decimal
    ],
)
def test_unusual_decimals_decode_like_the_reference(
    transaction: dict[str, Any], amount: bytes
) -> None:
    (value,) = _encode([transaction], RawAvro())
    odd = _amount_bytes(value, amount)
    values = [value, odd, value]
    decoded = TableDecoder(SCHEMA, RawAvro()).decode(values)
    _check(decoded, values, RawAvro())
    assert 0 in decoded.rows
    assert 2 in decoded.rows


def test_invalid_utf8_fails_only_its_value(transaction: dict[str, Any]) -> None:
    values = _encode([transaction, transaction | {"card_id": "ab"}, transaction], RawAvro())
    values[1] = values[1].replace(b"\x04ab", b"\x04\xc3\x28")  # a broken 2-byte sequence
    decoded = TableDecoder(SCHEMA, RawAvro()).decode(values)
    assert decoded.rows.tolist() == [0, 2]
    assert [index for index, _ in decoded.errors] == [1]
    _check(decoded, values, RawAvro())


def test_nothing_decodes_to_an_empty_table_with_the_schema() -> None:
    decoded = TableDecoder(SCHEMA, RawAvro()).decode([])
    assert decoded.table.num_rows == 0
    assert decoded.table.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert decoded.rows.dtype.kind == "i"
    assert len(decoded.rows) == 0
    assert decoded.errors == []
    all_bad = TableDecoder(SCHEMA, RawAvro()).decode([b"", b"\x05"])
    assert all_bad.table.num_rows == 0
    assert all_bad.table.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert np.array_equal(all_bad.rows, [])
    assert [index for index, _ in all_bad.errors] == [0, 1]
