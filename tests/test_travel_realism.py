"""Abroad, prices follow the visited country and shops keep the visited country's calendar.

Statistical checks on short simulated runs in which nearly every cardholder travels
abroad: amounts at card-present merchants scale with the visited country's price level
(World Bank PA.NUS.PPPC.RF), and a public holiday of the visited country, not one of
home, changes what its shops sell.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from simulator.errors import ReferenceDataError
from simulator.settings.loading import load_settings
from simulator.settings.run import RunSeed
from simulator.world.build import build_world
from simulator.world.calendar import Calendar
from tests import fraud_runs as fr
from tests.fraud_runs import Run

#: Everyone is away nearly all the time, abroad, so visited countries see many rows.
_ABROAD = (
    "fraud.target_rate=0",
    "travel.trips_per_year=200",
    "travel.international_share=1",
)


def _day(cache_dir: Path, day: str, *overrides: str) -> Run:
    return fr.simulate(fr.built(20_000, cache_dir, *_ABROAD, f"start_date={day}", *overrides), 1)


def _card_present_in(run: Run, country: str) -> np.ndarray:
    return (run.column("merchant_country") == country) & (run.column("channel") == "card_present")


def test_amounts_abroad_follow_the_visited_countrys_price_level(cache_dir: Path) -> None:
    run = _day(cache_dir, "2026-11-18", "travel.destinations={CH: 1, IN: 1}")
    world = run.world
    level = dict(zip(world.countries, world.price_level.tolist(), strict=True))
    expected = level["CH"] / level["IN"]
    assert expected > 3, "Switzerland is far dearer than India (World Bank, 2023)"
    # Each shop's own dearness is not the country's: take it out, then compare like with
    # like (the same MCC), since travellers buy a different mix in each country.
    merchant = pc.index_in(run.table.column("merchant_id"), world.merchants.ids).to_numpy()
    usd = fr.usd(run) / world.merchants.price[merchant]
    mcc = run.column("mcc")
    ch, india = _card_present_in(run, "CH"), _card_present_in(run, "IN")
    logs, weights = [], []
    for code in np.unique(mcc[ch | india]).tolist():
        a, b = usd[ch & (mcc == code)], usd[india & (mcc == code)]
        if min(len(a), len(b)) >= 50:
            logs.append(np.log(np.median(a) / np.median(b)))
            weights.append(min(len(a), len(b)))
    assert sum(weights) > 2000, "too few rows in both countries for medians"
    observed = float(np.exp(np.average(logs, weights=weights)))
    assert observed == pytest.approx(expected, rel=0.1)
    # At home nothing changes: the ratio of a US purchase to a Swiss one is the level's.
    us = _card_present_in(run, "US")
    for code in ("5812", "5814", "5411"):
        home = np.median(usd[us & (mcc == code)]) / np.median(usd[ch & (mcc == code)])
        assert home == pytest.approx(1 / level["CH"], rel=0.2)


def _shop_counts(run: Run, groups: list[str]) -> dict[str, int]:
    """Card-present rows in France per category group."""
    in_france = _card_present_in(run, "FR")
    mcc = run.column("mcc")
    mccs = {g: list(run.settings.mcc_groups[g].mccs) for g in groups}
    return {g: int((in_france & np.isin(mcc, mccs[g])).sum()) for g in groups}


@pytest.mark.parametrize(
    ("holiday", "ordinary", "french"),
    [
        ("2026-07-14", "2026-07-07", True),  # Fête nationale (Tuesdays): French shops close
        ("2026-11-26", "2026-11-19", False),  # US Thanksgiving (Thursdays): not in France
    ],
)
def test_the_visited_countrys_holidays_shape_its_shops(
    cache_dir: Path, holiday: str, ordinary: str, french: bool
) -> None:
    destinations = "travel.destinations={FR: 1}"
    on = _day(cache_dir, holiday, destinations)
    off = _day(cache_dir, ordinary, destinations)
    groups = ["grocery", "retail", "services"]
    factors = {g: on.settings.mcc_groups[g].holiday_factor for g in groups}
    assert all(f < 0.8 for f in factors.values())
    counts_on, counts_off = _shop_counts(on, groups), _shop_counts(off, groups)
    total_off = sum(counts_off.values())
    assert total_off > 1000
    observed = sum(counts_on.values()) / total_off
    closed = sum(factors[g] * counts_off[g] for g in groups) / total_off
    expected = closed if french else 1.0
    assert observed == pytest.approx(expected, abs=0.1), (counts_on, counts_off)


def test_a_country_without_a_price_level_is_named(cache_dir: Path) -> None:
    settings = load_settings(
        environ=False,
        overrides=[
            "population.cardholders=200",
            "seed=1",
            f"cache_dir={cache_dir}",
            "travel.destinations={TH: 1}",
            "currency_per_usd.THB=36.0",
        ],
    )
    with pytest.raises(ReferenceDataError, match=r"travel\.price_levels.*TH"):
        build_world(settings, RunSeed.from_settings(settings))
    fixed = settings.model_copy(
        update={"travel": settings.travel.model_copy(update={"price_levels": {"TH": 0.35}})}
    )
    world = build_world(fixed, RunSeed.from_settings(fixed))
    assert world.price_level[world.countries.index("TH")] == 0.35
    assert world.price_level[world.countries.index("US")] == 1.0


def test_paydays_follow_home_and_holidays_the_merchants_country() -> None:
    settings = load_settings(environ=False)
    cal = Calendar(settings.calendar, settings.mcc_groups, ["FR", "US"])
    groups = list(settings.mcc_groups)
    services = groups.index("services")
    bastille = cal.day_factors([dt.date(2026, 7, 14)])
    assert bastille[0, 0, services] < 0.5 * bastille[1, 0, services]
    # Paydays are the cardholder's: one factor for every merchant country.
    pay = cal.holder_factors([dt.date(2026, 7, 15), dt.date(2026, 7, 16)])
    assert pay[0, services] == pytest.approx(1.0)  # services carry no seasonal weight
    grocery = groups.index("grocery")
    assert pay[0, grocery] > pay[1, grocery] == pytest.approx(1.0)
