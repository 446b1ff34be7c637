"""Hypothesis strategies for the project's data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from schemas.framing import ConfluentWireFormat, Framing, RawAvro

_ids = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)
# Naive bounds are what st.datetimes takes; the values it draws carry UTC.
_moment = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),  # noqa: DTZ001
    max_value=dt.datetime(2300, 1, 1),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)
_amount = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999999999.99"), places=2)
_coordinate = st.floats(min_value=-180, max_value=180, allow_nan=False)


@st.composite
def transactions(draw: st.DrawFn) -> dict[str, Any]:
    """A transaction record as the Avro schema allows it (any field values, valid types)."""
    online = draw(st.booleans())
    fraud = draw(st.booleans())
    return {
        "transaction_id": draw(_ids),
        "event_time": draw(_moment),
        "card_id": draw(st.text(min_size=1, max_size=20)),
        "cardholder_id": draw(st.text(min_size=1, max_size=20)),
        "merchant_id": draw(st.text(min_size=1, max_size=20)),
        "amount": draw(_amount),
        "currency": draw(st.sampled_from(["USD", "EUR", "JPY", "GBP"])),
        "mcc": draw(st.from_regex(r"\A[0-9]{4}\Z")),
        "channel": "ecommerce" if online else "card_present",
        "pos_entry_mode": draw(st.none() | st.sampled_from(["chip", "contactless", "ecommerce"])),
        "merchant_country": draw(st.from_regex(r"\A[A-Z]{2}\Z")),
        "merchant_city": draw(st.none() | st.text(max_size=30)),
        "merchant_lat": None if online else draw(st.none() | st.floats(-90, 90)),
        "merchant_lon": None if online else draw(st.none() | _coordinate),
        "previous_transaction_id": draw(st.none() | _ids),
        "is_fraud": fraud,
        "fraud_scenario": draw(st.sampled_from(["card_testing", "account_takeover"]))
        if fraud
        else None,
        "fraud_case_id": draw(_ids) if fraud else None,
        "label_available_at": draw(st.none() | _moment) if fraud else None,
    }


def uint64s() -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=2**64 - 1)


def schema_ids() -> st.SearchStrategy[int]:
    """Schema Registry ids: what a Java ``int`` holds without its sign, ``[0, 2**31)``."""
    return st.integers(min_value=0, max_value=2**31 - 1)


def framings() -> st.SearchStrategy[Framing]:
    """The project's framings: raw Avro, or Confluent's wire format with any valid id."""
    return st.just(RawAvro()) | st.builds(ConfluentWireFormat, schema_ids())


def sample_transaction(**changes: Any) -> dict[str, Any]:
    """One valid card-present transaction record, with ``changes`` applied."""
    record: dict[str, Any] = {
        "transaction_id": "0123456789abcdef",
        "event_time": dt.datetime(2026, 11, 24, 12, 30, tzinfo=dt.UTC),
        "card_id": "card-1",
        "cardholder_id": "ch-1",
        "merchant_id": "m-1",
        "amount": Decimal("12.34"),
        "currency": "EUR",
        "mcc": "5411",
        "channel": "card_present",
        "pos_entry_mode": "chip",
        "merchant_country": "FR",
        "merchant_city": "Lyon",
        "merchant_lat": 45.76,
        "merchant_lon": 4.84,
        "previous_transaction_id": None,
        "is_fraud": False,
        "fraud_scenario": None,
        "fraud_case_id": None,
        "label_available_at": None,
    }
    return {**record, **changes}
