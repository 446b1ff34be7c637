"""Each fraud scenario shows its signature, planned directly and in simulated output.

Plan-level properties call a scenario's ``plan(ctx, rng, start_us)`` with a
:class:`CampaignContext` over a small world; output-level ones read 30 simulated days
of 10,000 cardholders (the run is shared with the prevalence tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.units import US_PER_DAY, US_PER_HOUR
from simulator.core.geo import haversine_km
from simulator.fraud.context import CampaignContext
from simulator.fraud.contract import Campaign, Scenario
from simulator.fraud.registry import build_scenario
from simulator.settings.fraud import FraudConfig
from simulator.world.build import World
from simulator.world.catalog import CHANNEL_CARD_PRESENT
from tests import fraud_runs as fr
from tests.fraud_runs import Built, Run

MICRO_USD = 5.0
IMPOSSIBLE_KMH = 1000.0
_START = 1_795_478_400_000_000  # 2026-11-24T00:00Z

seeds = st.integers(0, 2**63 - 1)
starts = st.integers(0, 60 * 24).map(lambda h: _START + h * US_PER_HOUR)


class Bench:
    """A world and a planning context (short repr: Hypothesis prints its arguments)."""

    def __init__(self, built: Built) -> None:
        self.world = built.world
        self.fraud = built.settings.fraud
        self.entry_modes = built.spec.entry_modes
        # No card is ever reissued: each card resolves to itself.
        self.ctx = self.context(lambda c, _t: c)

    def context(self, resolve: Callable[[int, int], int]) -> CampaignContext:
        return CampaignContext(self.world, self.fraud.hotspots, resolve, self.entry_modes)

    def __repr__(self) -> str:
        return f"Bench({len(self.world.holders.home_city)} cardholders)"


@pytest.fixture(scope="module")
def bench(cache_dir: Path) -> Bench:
    return Bench(fr.built(10_000, cache_dir))


@pytest.fixture(scope="module")
def month(cache_dir: Path) -> Run:
    return fr.default_run(cache_dir, 10_000, 30)


def scenario(fraud: FraudConfig, name: str) -> Scenario:
    return build_scenario(name, fraud.scenarios[name].params)


def usd(world: World, c: Campaign) -> np.ndarray:
    return c.amount_minor / 100.0 / world.merchant_per_usd[c.merchant]


def hotspot_floor(fraud: FraudConfig) -> float:
    return min(h.amount_usd[0] for h in fraud.hotspots.values() if h.weight > 0)


def km_between_cities(world: World, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c = world.cities
    return haversine_km(c.lat[a], c.lon[a], c.lat[b], c.lon[b])


# Plan-level properties --------------------------------------------------------------


def test_far_cities_are_far_and_their_cache_stays_bounded(bench: Bench) -> None:
    """A stream's far-city draws keep a bounded cache, and stay as far as asked.

    Each impossible-travel campaign draws its own minimum distance, so a cache keyed by
    it grew by an entry a campaign for as long as a stream ran.
    """
    ctx = bench.context(lambda c, _t: c)
    home = int(bench.world.holders.home_city[0])
    rng = np.random.default_rng(5)
    kept = ctx._far_cities.cache_info().maxsize
    assert kept is not None
    for k in range(kept + 300):
        min_km = 300.0 + k * 0.5
        far = ctx.far_city(rng, home, min_km)
        reach = float(km_between_cities(bench.world, np.array([home]), np.array([far]))[0])
        farthest = ctx._km_from(home).max()
        assert reach >= min_km or reach == pytest.approx(farthest)
    assert ctx._far_cities.cache_info().currsize == kept


@given(seed=seeds, start=starts)
def test_card_testing_plans_micro_bursts_then_cash_out(bench: Bench, seed: int, start: int) -> None:
    world, ctx = bench.world, bench.ctx
    sc = scenario(bench.fraud, "card_testing")
    p = sc.params
    c = sc.plan(ctx, np.random.default_rng(seed), start)
    amount = usd(world, c)
    assert c.fraud.all()
    assert (c.entry_mode == ctx.ecommerce_mode).all(), "card testing is card-not-present"
    test = amount < MICRO_USD
    assert test.any()
    assert len(np.unique(c.merchant[test])) <= p.test_merchants[1], "a few test merchants"
    burst = c.time_us[test]
    assert burst.max() - burst.min() <= p.burst_minutes * 60_000_000
    floor = hotspot_floor(bench.fraud)
    for card in np.unique(c.card[~test]).tolist():
        mine = c.card == card
        assert (test & mine).any(), "cash-out only on a tested card"
        assert c.time_us[~test & mine].min() > c.time_us[test & mine].max()
        assert amount[~test & mine].min() >= floor * 0.99, "cash-out is high value"


@given(seed=seeds, start=starts)
def test_compromised_merchant_cards_share_a_merchant_before_their_fraud(
    bench: Bench, seed: int, start: int
) -> None:
    c = scenario(bench.fraud, "compromised_merchant").plan(
        bench.ctx, np.random.default_rng(seed), start
    )
    assert _cards_without_common_visit(c) == []


def _cards_without_common_visit(c: Campaign) -> list[int]:
    """Defrauded cards with no genuine row at the common merchant before their fraud."""
    genuine_sites = np.unique(c.merchant[~c.fraud])
    assert len(genuine_sites) == 1, "one breached merchant"
    site = int(genuine_sites[0])
    missing = []
    for card in np.unique(c.card[c.fraud]).tolist():
        first = c.time_us[c.fraud & (c.card == card)].min()
        visits = ~c.fraud & (c.card == card) & (c.merchant == site) & (c.time_us < first)
        if not visits.any():
            missing.append(card)
    return missing


def test_compromised_merchant_fraud_stays_on_the_breached_card_after_a_reissue(
    bench: Bench,
) -> None:
    world = bench.world
    # Every card is reissued 14 days after the start: after every breach visit (breach
    # windows are at most 14 days), before most frauds (3-45 days of dormancy after it).
    reissue_at = _START + 14 * US_PER_DAY
    offset = len(world.cards)

    def resolve(card: int, at_us: int) -> int:
        return card + offset if at_us >= reissue_at else card

    ctx = bench.context(resolve)
    sc = scenario(bench.fraud, "compromised_merchant")
    for seed in range(5):
        c = sc.plan(ctx, np.random.default_rng(seed), _START)
        assert _cards_without_common_visit(c) == []


@given(seed=seeds, start=starts)
def test_impossible_travel_outruns_any_flight(bench: Bench, seed: int, start: int) -> None:
    world, ctx = bench.world, bench.ctx
    c = scenario(bench.fraud, "impossible_travel").plan(ctx, np.random.default_rng(seed), start)
    assert len(np.unique(c.card)) == 1
    home = c.time_us[~c.fraud]
    assert len(home) == 1, "one genuine purchase at home sets the stage"
    first = int(np.argmin(np.where(c.fraud, c.time_us, np.iinfo(np.int64).max)))
    m = world.merchants
    assert m.channel[c.merchant[first]] == CHANNEL_CARD_PRESENT
    g = int(np.flatnonzero(~c.fraud)[0])
    km = km_between_cities(world, m.city[c.merchant[[g]]], m.city[c.merchant[[first]]])[0]
    hours = (c.time_us[first] - c.time_us[g]) / US_PER_HOUR
    assert hours > 0
    assert km / hours > IMPOSSIBLE_KMH, f"{km:.0f} km in {hours:.2f} h"


@given(seed=seeds, start=starts)
def test_lost_stolen_is_card_present_near_home_and_fast(
    bench: Bench, seed: int, start: int
) -> None:
    world, ctx = bench.world, bench.ctx
    sc = scenario(bench.fraud, "lost_stolen")
    c = sc.plan(ctx, np.random.default_rng(seed), start)
    assert (~c.fraud).sum() == 1, "one genuine purchase, where the card goes missing"
    assert c.time_us[~c.fraud].max() < c.time_us[c.fraud].min()
    assert len(np.unique(c.card)) == 1
    m = world.merchants
    assert (m.channel[c.merchant] == CHANNEL_CARD_PRESENT).all()
    assert (c.entry_mode != ctx.ecommerce_mode).all()
    holder = int(world.cards.holder[c.card[0]])
    home = np.full(len(c), world.holders.home_city[holder])
    assert km_between_cities(world, home, m.city[c.merchant]).max() < 300.0
    t = np.sort(c.time_us)
    assert (t[-1] - t[0]) / US_PER_HOUR < 24, "spent within the day, before it is reported"


@given(seed=seeds, start=starts)
def test_lost_stolen_shops_are_a_drive_apart_within_minutes(
    bench: Bench, seed: int, start: int
) -> None:
    world, ctx = bench.world, bench.ctx
    sc = scenario(bench.fraud, "lost_stolen")
    c = sc.plan(ctx, np.random.default_rng(seed), start)
    order = np.argsort(c.time_us, kind="stable")
    t, shop = c.time_us[order], c.merchant[order]
    m = world.merchants
    km = haversine_km(m.lat[shop[:-1]], m.lon[shop[:-1]], m.lat[shop[1:]], m.lon[shop[1:]])
    hours = np.diff(t) / US_PER_HOUR
    assert (km <= sc.params.drive_kmh * hours + 1e-6).all(), "no faster than a drive"
    fraud_gaps = np.diff(np.sort(c.time_us[c.fraud])) / US_PER_HOUR
    assert len(fraud_gaps) == 0 or np.median(fraud_gaps) < 6, "one shop after another"


@given(seed=seeds, start=starts)
def test_account_takeover_is_high_value_online_at_rising_velocity(
    bench: Bench, seed: int, start: int
) -> None:
    world, ctx = bench.world, bench.ctx
    c = scenario(bench.fraud, "account_takeover").plan(ctx, np.random.default_rng(seed), start)
    assert c.fraud.all()
    assert len(np.unique(c.card)) == 1
    assert (c.entry_mode == ctx.ecommerce_mode).all()
    assert (world.merchants.channel[c.merchant] != CHANNEL_CARD_PRESENT).all()
    gaps = np.diff(np.sort(c.time_us))
    assert (np.diff(gaps) <= 0).all(), "each gap no longer than the one before"


@given(seed=seeds, start=starts)
def test_first_party_is_ordinary_online_spend(bench: Bench, seed: int, start: int) -> None:
    world, ctx = bench.world, bench.ctx
    sc = scenario(bench.fraud, "first_party")
    p = sc.params
    assert not p.blocks_card
    assert p.label_source == "chargeback"
    c = sc.plan(ctx, np.random.default_rng(seed), start)
    assert c.fraud.all()
    assert (c.entry_mode == ctx.ecommerce_mode).all()
    assert usd(world, c).min() >= 0.01


def test_first_party_amounts_are_ordinary_not_cash_outs(bench: Bench) -> None:
    """First-party claims are everyday purchases: judged over many campaigns, not per row.

    Ordinary spend has a long tail (a few electronics purchases pass $5,000).
    """
    sc = scenario(bench.fraud, "first_party")
    start = 1_795_478_400_000_000
    amount = np.concatenate(
        [usd(bench.world, sc.plan(bench.ctx, np.random.default_rng(s), start)) for s in range(2000)]
    )
    assert np.median(amount) < 100.0, "a typical claim is an everyday online purchase"
    assert np.quantile(amount, 0.99) < 5_000.0, "ordinary amounts, not a cash-out"


# Simulated output ------------------------------------------------------------------


def _fraud_cases(run: Run, name: str) -> dict[str, np.ndarray]:
    scen = run.column("fraud_scenario")
    rows = np.flatnonzero(scen == name)
    case = run.column("fraud_case_id")[rows]
    return {c: rows[case == c] for c in np.unique(case).tolist()}


def test_every_scenario_appears_in_a_month(month: Run) -> None:
    names = set(pc.unique(month.table.column("fraud_scenario")).drop_null().to_pylist())
    assert names == set(month.settings.fraud.scenarios)


def test_output_card_testing_bursts_then_cashes_out(month: Run) -> None:
    t, amount, card = month.column("event_time"), fr.usd(month), month.card
    ecom = month.column("channel") == "ecommerce"
    merchant = month.column("merchant_id")
    checked = 0
    for rows in _fraud_cases(month, "card_testing").values():
        assert ecom[rows].all()
        if t[rows].min() < month.start_us + 2 * US_PER_DAY:
            continue  # may have been tested before the run
        checked += 1
        test = amount[rows] < MICRO_USD
        assert test.any()
        assert len(np.unique(merchant[rows][test])) <= 3
        for c in np.unique(card[rows][~test]).tolist():
            mine = card[rows] == c
            assert (test & mine).any()
            assert t[rows][~test & mine].min() > t[rows][test & mine].max()
    assert checked >= 10


def test_output_impossible_travel_follows_a_genuine_purchase_far_away(month: Run) -> None:
    t, card = month.column("event_time"), month.card
    fraud = month.column("is_fraud")
    lat = month.table.column("merchant_lat").to_numpy(zero_copy_only=False)
    lon = month.table.column("merchant_lon").to_numpy(zero_copy_only=False)
    slow = []
    cases = _fraud_cases(month, "impossible_travel")
    for case, rows in cases.items():
        first = rows[np.argmin(t[rows])]
        if t[first] < month.start_us + US_PER_DAY:
            continue  # its genuine purchase at home may precede the run
        before = np.flatnonzero((card == card[first]) & ~fraud & (t < t[first]))
        before = before[~np.isnan(lat[before].astype(float))]
        if not len(before):
            continue
        g = before[np.argmax(t[before])]
        km = haversine_km(lat[[g]], lon[[g]], lat[[first]], lon[[first]])[0]
        kmh = km / max((t[first] - t[g]) / US_PER_HOUR, 1e-9)
        if kmh <= IMPOSSIBLE_KMH:
            slow.append((case, round(km), round(kmh)))
    assert len(cases) >= 10
    assert slow == []


def test_output_lost_stolen_is_card_present_near_home(month: Run) -> None:
    w, t = month.world, month.column("event_time")
    channel = month.column("channel")
    merchant = pc.index_in(month.table.column("merchant_id"), value_set=w.merchants.ids)
    mcity = w.merchants.city[merchant.to_numpy(zero_copy_only=False)]
    home = w.holders.home_city[month.cards.holder[month.card]]
    for rows in _fraud_cases(month, "lost_stolen").values():
        assert (channel[rows] == "card_present").all()
        assert km_between_cities(w, home[rows], mcity[rows]).max() < 300.0
        assert (t[rows].max() - t[rows].min()) / US_PER_HOUR < 24


def test_output_account_takeover_is_online_and_high_value(month: Run) -> None:
    amount = fr.usd(month)
    channel = month.column("channel")
    floor = hotspot_floor(month.settings.fraud)
    share = month.settings.fraud.scenarios["account_takeover"].params["cashout_share"]
    high = []
    for rows in _fraud_cases(month, "account_takeover").values():
        assert (channel[rows] == "ecommerce").all()
        high.append(amount[rows] >= floor * 0.99)
    assert np.concatenate(high).mean() >= 0.8 * share, "mostly cash-out amounts"


# Blocks and reissues -----------------------------------------------------------------


def test_rows_name_the_card_and_holder_the_registry_says(month: Run) -> None:
    reg = month.cards
    ids = reg.card_ids()
    assert month.table.column("card_id").equals(pa.chunked_array([ids.take(pa.array(month.card))]))
    holders = month.world.holders.ids.take(pa.array(reg.holder[month.card]))
    assert month.table.column("cardholder_id").equals(pa.chunked_array([holders]))
    assert (
        len(month.new_cards) == 0
        or month.new_cards.to_pylist() == ids.to_pylist()[len(ids) - len(month.new_cards) :]
    )


def test_genuine_rows_never_use_a_blocked_card(month: Run) -> None:
    genuine = ~month.column("is_fraud")
    t = month.column("event_time")
    late = genuine & (month.cards.block_at[month.card] <= t)
    assert not late.any()


def test_no_fraud_on_a_card_after_its_block(month: Run) -> None:
    fraud = month.column("is_fraud")
    t = month.column("event_time")
    late = np.flatnonzero(fraud & (month.cards.block_at[month.card] <= t))
    assert late.tolist() == []


def test_a_blocked_cards_holder_moves_to_its_replacement(month: Run) -> None:
    reg, t = month.cards, month.column("event_time")
    base = len(month.world.cards)
    card = month.card
    on_new = np.flatnonzero(card >= base)
    assert len(on_new) > 100, "some cards were blocked and reissued"
    old = reg.replaces[card[on_new]]
    assert (old >= 0).all()
    assert (reg.holder[old] == reg.holder[card[on_new]]).all()
    assert (reg.replacement[old] == card[on_new]).all()
    assert (t[on_new] >= reg.block_at[old]).all(), "a replacement is used from the block on"
    # Blocked inside the run: the holder's next transactions on that card slot use the new card.
    blocked = np.flatnonzero(
        (reg.block_at[:base] > month.start_us + US_PER_DAY)
        & (reg.block_at[:base] < month.start_us + 20 * US_PER_DAY)
    )
    assert len(blocked) > 10
    moved = 0
    for c in blocked.tolist():
        new = int(reg.replacement[c])
        assert reg.holder[new] == reg.holder[c]
        if (card == new).any():
            moved += 1
    assert moved >= 0.5 * len(blocked)
