from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import avro_encode as avro_codec
from schemas.avro_encode import TableEncoder
from schemas.avro_records import RecordDecoder
from schemas.errors import DecodeError, SchemaError
from schemas.event import EventSchema, arrow_type, transaction_schema
from schemas.framing import ConfluentWireFormat, Framing, RawAvro
from simulator.model.engine import SliceSource
from simulator.settings.loading import load_settings
from simulator.settings.run import RunSeed, RunSpec
from simulator.world.build import build_world
from tests.strategies import sample_transaction, transactions

SCHEMA = transaction_schema()
FRAMINGS: list[Framing] = [RawAvro(), ConfluentWireFormat(42)]
_records = st.lists(transactions(), min_size=1, max_size=8)


def _table(records: list[dict[str, Any]], schema: EventSchema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(records, schema=schema.arrow)


def _fastavro(records: list[dict[str, Any]], schema: EventSchema = SCHEMA) -> list[bytes]:
    values = []
    for record in records:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema.avro, record)
        values.append(out.getvalue())
    return values


def _read(value: bytes, schema: EventSchema = SCHEMA) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(value), schema.avro)


@pytest.fixture
def transaction() -> dict[str, Any]:
    return sample_transaction()


def test_all_lists_the_public_names() -> None:
    defined = {
        name
        for name, value in vars(avro_codec).items()
        if not name.startswith("_") and getattr(value, "__module__", "") == avro_codec.__name__
    }
    assert set(avro_codec.__all__) == defined
    assert issubclass(DecodeError, SchemaError)


@given(_records, st.sampled_from(FRAMINGS))
def test_bytes_equal_fastavro_and_round_trip(
    records: list[dict[str, Any]], framing: Framing
) -> None:
    table = _table(records)
    values = TableEncoder(SCHEMA, framing).encode(table)
    assert values == [framing.frame(v) for v in _fastavro(table.to_pylist())]
    assert [_read(framing.unframe(v)) for v in values] == table.to_pylist() == records
    decoder = RecordDecoder(SCHEMA, framing)
    assert [decoder.decode(v) for v in values] == records
    decoded = decoder.decode_many(values)
    assert decoded.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert decoded.equals(table)


@given(_records, st.data())
def test_slices_and_chunks_encode_like_whole_tables(
    records: list[dict[str, Any]], data: st.DataObject
) -> None:
    table = _table(records)
    start = data.draw(st.integers(0, len(records)))
    stop = data.draw(st.integers(start, len(records)))
    part = pa.concat_tables([table.slice(start, stop - start), table.slice(0, start)])
    expected = _fastavro(records[start:stop] + records[:start])
    assert TableEncoder(SCHEMA, RawAvro()).encode(part) == expected


def test_negative_decimals_and_times_equal_fastavro(transaction: dict[str, Any]) -> None:
    # fastavro sizes -1.28 (unscaled -128) as ff 80, one byte more than minimal: kept.
    amounts = ["0.00", "0.01", "1.27", "1.28", "-1.28", "-1.29", "-0.01", "-327.68", "-327.69"]
    amounts += ["9999999999999999.99", "-9999999999999999.99", "-0.00"]
    before_epoch = dt.datetime(1969, 12, 31, 23, 59, tzinfo=dt.UTC)
    table = _table(
        [transaction | {"amount": Decimal(a), "event_time": before_epoch} for a in amounts]
    )
    assert TableEncoder(SCHEMA, RawAvro()).encode(table) == _fastavro(table.to_pylist())


# A schema with every type the encoder writes that the transaction schema does not use.
_OTHER = {
    "type": "record",
    "name": "Other",
    "namespace": "test",
    "fields": [
        {"name": "n", "type": "int"},
        {"name": "f", "type": ["float", "null"]},
        {"name": "b", "type": ["null", "bytes"]},
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "big", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["a", "b", "c"]}},
        {"name": "e2", "type": ["null", "test.E"]},
        {"name": "long", "type": ["null", "long"]},
        {"name": "flag", "type": ["null", "boolean"]},
        {"name": "s", "type": ["null", "string"]},
    ],
}


def _event_schema(raw: dict[str, Any]) -> EventSchema:
    # arrow_type does not resolve named references; the one here is the enum E.
    fields = [
        pa.field(f["name"], pa.string(), True)
        if f["type"] == ["null", "test.E"]
        else pa.field(f["name"], *arrow_type(f["type"]))
        for f in raw["fields"]
    ]
    return EventSchema("other", fastavro.parse_schema(raw), pa.schema(fields), "")


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


_others = st.fixed_dictionaries(
    {
        "n": st.integers(-(2**31), 2**31 - 1),
        "f": _maybe(st.floats(width=32, allow_nan=False)),
        "b": _maybe(st.binary(max_size=100)),
        "t": st.datetimes(timezones=st.just(dt.UTC)).map(
            lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
        ),
        "big": st.integers(-(10**38) + 1, 10**38 - 1).map(Decimal),
        "e": st.sampled_from("abc"),
        "e2": _maybe(st.sampled_from("abc")),
        "long": _maybe(st.integers(-(2**63), 2**63 - 1)),
        "flag": _maybe(st.booleans()),
        "s": _maybe(st.text(max_size=80)),
    }
)


@given(st.lists(_others, min_size=1, max_size=12))
def test_other_avro_types_equal_fastavro(records: list[dict[str, Any]]) -> None:
    schema = _event_schema(_OTHER)
    table = _table(records, schema)
    values = TableEncoder(schema, RawAvro()).encode(table)
    assert values == _fastavro(table.to_pylist(), schema)


def test_unsupported_types_are_refused_when_built() -> None:
    raw = {"type": "record", "name": "R", "fields": [{"name": "m", "type": "null"}]}
    schema = EventSchema("r", fastavro.parse_schema(raw), pa.schema([]), "")
    with pytest.raises(SchemaError, match="does not write"):
        TableEncoder(schema, RawAvro())


def test_encode_refuses_nulls_in_required_fields_and_unknown_symbols(
    transaction: dict[str, Any],
) -> None:
    encoder = TableEncoder(SCHEMA, RawAvro())
    loose = SCHEMA.arrow.set(0, pa.field("transaction_id", pa.string()))
    with pytest.raises(ValueError, match="transaction_id"):
        encoder.encode(pa.Table.from_pylist([transaction | {"transaction_id": None}], loose))
    # Arrow does not enforce a field's nullability, so a table can claim it and lie.
    table = _table([transaction])
    lying = pa.Table.from_arrays(
        [pa.nulls(1, pa.string()), *table.columns[1:]], schema=SCHEMA.arrow
    )
    with pytest.raises(ValueError, match="'transaction_id': 1 nulls, but the Avro type"):
        encoder.encode(lying)
    with pytest.raises(ValueError, match="'channel': 'atm' is not one of the symbols"):
        encoder.encode(_table([transaction | {"channel": "atm"}]))
    with pytest.raises(ValueError, match="does not cast"):
        encoder.encode(pa.table({"x": [1]}))


def test_encode_casts_a_compatible_table(transaction: dict[str, Any]) -> None:
    table = _table([transaction])
    reordered = table.select(table.column_names[::-1])
    wider = [
        f.with_type(pa.large_string()) if f.type == pa.string() else f for f in reordered.schema
    ]
    other = reordered.cast(pa.schema(wider))
    encoder = TableEncoder(SCHEMA, RawAvro())
    assert encoder.encode(other) == encoder.encode(table)
    assert encoder.encode(table.slice(0, 0)) == []


class _Suffixed:
    """A framing that is not a fixed header, so the encoder must call frame() per value."""

    name = "suffixed"

    def frame(self, payload: bytes) -> bytes:
        return payload + b"!"

    def unframe(self, data: bytes) -> bytes:
        if not data.endswith(b"!"):
            raise DecodeError("no suffix")
        return data[:-1]


def test_any_framing_is_applied_per_value(transaction: dict[str, Any]) -> None:
    table = _table([transaction, transaction | {"merchant_city": None}])
    framing = _Suffixed()
    values = TableEncoder(SCHEMA, framing).encode(table)
    assert values == [v + b"!" for v in _fastavro(table.to_pylist())]
    assert RecordDecoder(SCHEMA, framing).decode_many(values).equals(table)


def test_confluent_header_is_checked(transaction: dict[str, Any]) -> None:
    framing = ConfluentWireFormat(42)
    (value,) = TableEncoder(SCHEMA, framing).encode(_table([transaction]))
    assert value[:5] == b"\x00\x00\x00\x00\x2a"
    decoder = RecordDecoder(SCHEMA, framing)
    assert decoder.decode(value) == transaction
    with pytest.raises(DecodeError, match="magic byte is 0x01"):
        decoder.decode(b"\x01" + value[1:])
    with pytest.raises(DecodeError, match="schema id is 43, expected 42"):
        decoder.decode(value[:4] + b"\x2b" + value[5:])
    with pytest.raises(DecodeError, match="shorter than the 5-byte header"):
        decoder.decode(value[:4])
    with pytest.raises(DecodeError):
        RecordDecoder(SCHEMA, RawAvro()).decode(value)
    for bad in (-1, 2**31, True):
        with pytest.raises(ValueError, match="schema_id"):
            ConfluentWireFormat(bad)


@given(_records, st.sampled_from(FRAMINGS), st.data())
def test_truncated_or_padded_values_raise_decode_error(
    records: list[dict[str, Any]], framing: Framing, data: st.DataObject
) -> None:
    decoder = RecordDecoder(SCHEMA, framing)
    values = TableEncoder(SCHEMA, framing).encode(_table(records))
    value = data.draw(st.sampled_from(values))
    cut = data.draw(st.integers(0, len(value) - 1))
    with pytest.raises(DecodeError):
        decoder.decode(value[:cut])
    with pytest.raises(DecodeError, match="1 bytes left"):
        decoder.decode(value + b"\x00")
    with pytest.raises(DecodeError):
        decoder.decode_many([*values, value[:cut]])


@given(st.binary(max_size=200))
def test_garbage_raises_decode_error_or_decodes_whole(garbage: bytes) -> None:
    decoder = RecordDecoder(SCHEMA, RawAvro())
    try:
        record = decoder.decode(garbage)
    except DecodeError:
        return
    assert list(record) == SCHEMA.arrow.names


def test_decode_error_says_what_failed() -> None:
    with pytest.raises(DecodeError, match=r"1-byte transaction payload does not decode") as info:
        RecordDecoder(SCHEMA, RawAvro()).decode(b"\x05")
    assert isinstance(info.value.__cause__, Exception)


def test_decode_many_of_nothing_has_the_schema() -> None:
    table = RecordDecoder(SCHEMA, RawAvro()).decode_many([])
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMA.arrow, check_metadata=True)


@pytest.fixture(scope="module")
def simulated(cache_dir: Path) -> pa.Table:
    """One simulated day of 800 cardholders (about a thousand rows)."""
    settings = load_settings(
        None,
        {
            "seed": 3,
            "cache_dir": str(cache_dir),
            "population": {"cardholders": 800, "block_size": 400},
        },
        environ=False,
    )
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    start = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    spec = RunSpec.from_settings(settings)
    return next(iter(SliceSource(world, spec, seed, start, start + dt.timedelta(days=1)))).table


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_simulated_table_round_trips(simulated: pa.Table, framing: Framing) -> None:
    assert simulated.num_rows > 500
    values = TableEncoder(SCHEMA, framing).encode(simulated)
    assert values == [framing.frame(v) for v in _fastavro(simulated.to_pylist())]
    decoded = RecordDecoder(SCHEMA, framing).decode_many(values)
    assert decoded.schema.equals(SCHEMA.arrow, check_metadata=True)
    assert decoded.equals(simulated)
