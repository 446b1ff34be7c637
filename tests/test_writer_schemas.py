"""How the sink picks each record's writer schema: fingerprint header or registry id.

A unit test of the resolution logic and its retries. The registry here is a stub that
counts calls and fails on demand; tests/test_sink_registry.py runs the sink against a
real Apicurio Registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from consumers.writer_schemas import Unresolved, WriterSchemas
from schemas.errors import RegistryError, RegistryUnavailable
from schemas.event import EventSchema, public_transaction_schema, transaction_schema
from schemas.framing import FINGERPRINT_HEADER, ConfluentWireFormat
from storage.retry import Retrying


@dataclass
class _Message:
    value_: bytes
    headers_: list[tuple[str, bytes | None]] | None = None

    def value(self) -> bytes:
        return self.value_

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self.headers_


@dataclass
class _StubRegistry:
    """Ids to fingerprints; fails ``outages`` times before answering."""

    known: dict[int, str]
    outages: int = 0
    url: str = "http://registry.test/apis/ccompat/v7"
    calls: list[int] = field(default_factory=list)

    def fingerprint(self, schema_id: int) -> str:
        self.calls.append(schema_id)
        if self.outages > 0:
            self.outages -= 1
            raise RegistryUnavailable(f"looking up schema id {schema_id}: connection refused")
        if schema_id not in self.known:
            raise RegistryError(f"looking up schema id {schema_id}: HTTP 404")
        return self.known[schema_id]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _schemas(registry: _StubRegistry | None, give_up_s: float = 30.0) -> WriterSchemas:
    clock = _Clock()
    retry = Retrying(
        base_s=1.0,
        cap_s=4.0,
        give_up_s=give_up_s,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        jitter=lambda: 0.5,
        transient=(RegistryUnavailable,),
        service="schema registry",
    )
    return WriterSchemas(registry, retry)  # type: ignore[arg-type]


def label_schema() -> EventSchema:
    """The labels topic's schema."""
    return transaction_schema("fraud_label")


def _framed(schema_id: int) -> _Message:
    return _Message(ConfluentWireFormat(schema_id).frame(b"\x20body"))


def test_raw_values_resolve_by_their_fingerprint_header() -> None:
    schemas = _schemas(None)
    for schema in (transaction_schema(), public_transaction_schema(), label_schema()):
        message = _Message(b"\x20body", [(FINGERPRINT_HEADER, schema.fingerprint.encode())])
        resolved = schemas.resolve(schemas.key(message))
        assert not isinstance(resolved, Unresolved)
        assert resolved[0] == schema
    # No header, or one naming no known schema: the full transaction schema.
    for headers in (None, [(FINGERPRINT_HEADER, b"0123456789abcdef")]):
        resolved = schemas.resolve(schemas.key(_Message(b"\x20body", headers)))
        assert not isinstance(resolved, Unresolved)
        assert resolved[0] == transaction_schema()


def test_without_a_registry_a_magic_byte_is_just_a_byte() -> None:
    schemas = _schemas(None)
    header = [(FINGERPRINT_HEADER, label_schema().fingerprint.encode())]
    assert schemas.key(_Message(ConfluentWireFormat(7).frame(b"x"), header)) == (
        label_schema().fingerprint.encode()
    )


def test_the_wire_header_wins_over_the_fingerprint_and_each_id_is_looked_up_once() -> None:
    stub = _StubRegistry({3: public_transaction_schema().fingerprint})
    schemas = _schemas(stub)
    header = [(FINGERPRINT_HEADER, transaction_schema().fingerprint.encode())]
    message = _Message(ConfluentWireFormat(3).frame(b"\x20body"), header)
    for _ in range(5):
        resolved = schemas.resolve(schemas.key(message))
        assert not isinstance(resolved, Unresolved)
        assert resolved[0] == public_transaction_schema()
    assert stub.calls == [3]


def test_unknown_ids_and_foreign_schemas_are_reasons_not_failures() -> None:
    stub = _StubRegistry({5: "feedfacecafebeef"})
    schemas = _schemas(stub)
    missing = schemas.resolve(schemas.key(_framed(9)))
    foreign = schemas.resolve(schemas.key(_framed(5)))
    assert isinstance(missing, Unresolved)
    assert "schema id 9" in missing
    assert isinstance(foreign, Unresolved)
    assert "schema id 5" in foreign
    assert "not a schema this sink knows" in foreign
    schemas.resolve(schemas.key(_framed(9)))
    assert stub.calls == [9, 5]  # the answers are cached too


def test_a_registry_outage_is_retried_then_answered() -> None:
    stub = _StubRegistry({3: transaction_schema().fingerprint}, outages=3)
    resolved = _schemas(stub).resolve(_framed(3).value()[:5])
    assert not isinstance(resolved, Unresolved)
    assert stub.calls == [3, 3, 3, 3]


def test_a_registry_down_past_the_give_up_time_raises_with_the_attempts() -> None:
    stub = _StubRegistry({3: transaction_schema().fingerprint}, outages=1_000)
    schemas = _schemas(stub, give_up_s=10.0)
    with pytest.raises(RegistryUnavailable, match=r"schema id 3: gave up after \d+ attempts"):
        schemas.resolve(_framed(3).value()[:5])
    assert 3 <= len(stub.calls) <= 6
