"""Amounts respect each currency's ISO 4217 minor unit: whole yen and won, cents, fils."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import transaction_schema
from simulator.errors import ReferenceDataError
from simulator.world.money import AMOUNT_DECIMALS, minor_unit, quantise, step, to_minor
from simulator.world.reference import _currencies
from tests.conftest import read_transactions, run, small_settings


def _known(code: str) -> bool:
    try:
        minor_unit(code)
    except ReferenceDataError:
        return False
    return True


#: Every currency of a country in the reference data that ISO 4217 list one holds.
CURRENCIES = sorted({c for c in _currencies().values() if _known(c)})


def test_the_reference_currencies_and_their_minor_units() -> None:
    assert len(CURRENCIES) > 150
    assert {c: minor_unit(c) for c in ("USD", "EUR", "JPY", "KRW", "KWD", "BHD", "CLP")} == {
        "USD": 2,
        "EUR": 2,
        "JPY": 0,
        "KRW": 0,
        "KWD": 3,
        "BHD": 3,
        "CLP": 0,
    }
    assert {minor_unit(c) for c in CURRENCIES} == {0, 2, 3}
    assert transaction_schema().arrow.field("amount").type.scale == AMOUNT_DECIMALS


@pytest.mark.parametrize("code", ["BGN", "XAU", "", "ZZZ"])
def test_codes_without_an_iso_minor_unit_are_refused(code: str) -> None:
    with pytest.raises(ReferenceDataError, match="ISO 4217"):
        minor_unit(code)


@pytest.mark.parametrize("currency", CURRENCIES)
@settings(max_examples=8)
@given(
    usd=st.lists(st.floats(0.0, 1e5, allow_nan=False), min_size=1, max_size=40),
    per_usd=st.floats(1e-3, 3e4),
    factor=st.floats(0.1, 3.0),
)
def test_every_amount_is_a_whole_number_of_minor_units(
    currency: str, usd: list[float], per_usd: float, factor: float
) -> None:
    unit = Decimal(10) ** -minor_unit(currency)
    steps = step(currency)
    converted = to_minor(np.array(usd), np.full(len(usd), per_usd), steps)
    scaled = quantise(converted * factor, steps)  # e.g. first-party fraud's spend factor
    for amounts in (converted, scaled):
        assert (amounts >= steps).all()
        for hundredths in amounts.tolist():
            assert (Decimal(hundredths).scaleb(-AMOUNT_DECIMALS) % unit) == 0


def test_a_japanese_run_pays_in_whole_yen(tmp_path: Path, cache_dir: Path) -> None:
    settings = small_settings(
        tmp_path,
        cache_dir,
        'geography.home_countries={"JP": 1.0}',
        "travel.destinations.KR=0.3",
        "travel.international_share=0.6",
        "currency_per_usd.KRW=1380",
        # A country outside the shipped tables needs its rate and its price level.
        "travel.price_levels.KR=0.62",
        "fraud.target_rate=0.02",
        population={"cardholders": 1500, "block_size": 500},
    )
    run(settings)
    table = read_transactions(tmp_path)
    currency = table.column("currency").to_numpy(zero_copy_only=False)
    cents = pc.multiply(pc.cast(table.column("amount"), "float64"), 100.0).to_numpy()
    cents = np.rint(cents).astype(np.int64)
    fraud = table.column("is_fraud").to_numpy(zero_copy_only=False)
    jpy = currency == "JPY"
    assert jpy.mean() > 0.5
    assert (fraud & jpy).sum() > 0, "fraud amounts are checked too"
    assert (currency == "KRW").sum() > 0, "and spending abroad in another 0-decimal currency"
    for code in np.unique(currency).tolist():
        rows = currency == code
        assert (cents[rows] % step(code) == 0).all(), code
    assert (cents[jpy] % 100 == 0).all()
