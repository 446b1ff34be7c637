"""The built-in fraud scenarios, each shaped after its real-world pattern.

Their default parameters are in ``simulator/data/defaults.yaml`` (``fraud.scenarios``),
each number with its source. Every scenario draws only from the generator it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field
from typing_extensions import override

from runtime.units import US_PER_DAY, US_PER_HOUR, US_PER_MINUTE
from simulator.core.sampling import log_uniform
from simulator.fraud.campaign_kit import (
    CampaignRows,
    Count,
    RangeParams,
    between,
    cashout_or_ordinary,
    paced,
    spree,
)
from simulator.fraud.contract import Campaign, Scenario
from simulator.settings.types import Positive, Probability

if TYPE_CHECKING:
    from simulator.fraud.context import CampaignContext

__all__ = [
    "AccountTakeover",
    "AccountTakeoverParams",
    "CardTesting",
    "CardTestingParams",
    "CompromisedMerchant",
    "CompromisedMerchantParams",
    "FirstParty",
    "FirstPartyParams",
    "ImpossibleTravel",
    "ImpossibleTravelParams",
    "LostStolen",
    "LostStolenParams",
]


class CardTestingParams(RangeParams):
    """Parameters of card testing (defaults: ``fraud.scenarios`` in defaults.yaml)."""

    cards: tuple[Count, Count]
    test_merchants: tuple[Count, Count]
    tests_per_card: tuple[Count, Count]
    test_mccs: list[str] = Field(min_length=1)
    test_amount_usd: tuple[Positive, Positive]
    burst_minutes: Positive
    retry_minutes: Positive = Field(description="Mean gap between one number's attempts.")
    cashout_share: Probability
    cashouts_per_card: tuple[Count, Count]
    cashout_delay_hours: Positive
    cashout_gap_minutes: Positive = Field(description="Mean gap between cash-outs of a card.")


class CardTesting(Scenario[CardTestingParams]):
    """Stolen card numbers tested with micro-amount online authorisations, then cashed out.

    A batch of card numbers is tried in a burst at a few online merchants (digital goods
    and donations are typical), each number once or a few times within minutes; the
    numbers that work are spent on cash-outs within hours, one after another. A card's
    own history shows micro-amounts at a new merchant, then a quick run of purchases far
    above its usual amount.
    """

    name = "card_testing"

    Params = CardTestingParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        rows = CampaignRows()
        holders = ctx.victims(rng, between(rng, p.cards))
        start = ctx.at_local_hour(rng, start_us, ctx.home_city(int(holders[0])), p.hour_weights)
        sites = ctx.online_merchants(rng, between(rng, p.test_merchants), p.test_mccs)
        burst_us = p.burst_minutes * US_PER_MINUTE
        for holder in holders.tolist():
            card = ctx.card_of(holder, start)
            k = between(rng, p.tests_per_card)
            at = np.array([start + int(rng.random() * burst_us)])
            t = np.minimum(
                spree(rng, at, np.zeros(k, np.int64), p.retry_minutes * US_PER_MINUTE),
                start + int(burst_us),
            )
            merchant = sites[rng.integers(len(sites), size=k)]
            usd = np.round(log_uniform(rng, p.test_amount_usd, k), 2)
            rows.add(t, card, merchant, ctx.to_minor(usd, merchant), ctx.ecommerce_mode)
            if rng.random() < p.cashout_share:
                m = between(rng, p.cashouts_per_card)
                first = t[-1] + 1 + int(rng.exponential(p.cashout_delay_hours) * US_PER_HOUR)
                gap_us = p.cashout_gap_minutes * US_PER_MINUTE
                when = spree(rng, np.array([first]), np.zeros(m, np.int64), gap_us)
                merchant, amount = ctx.hotspot(rng, m)
                rows.add(when, card, merchant, amount, ctx.ecommerce_mode)
        return rows.campaign()


class CompromisedMerchantParams(RangeParams):
    """Parameters of compromised merchant (defaults: ``fraud.scenarios`` in defaults.yaml)."""

    breach_mccs: list[str] = Field(min_length=1)
    breach_days: tuple[Count, Count]
    cards: tuple[Count, Count]
    dormancy_days: tuple[float, float]
    frauds_per_card: tuple[Count, Count]
    spree_gap_minutes: Positive = Field(description="Mean gap between one card's frauds.")
    drive_kmh: Positive = Field(
        description="Shops of a spree are at least a drive this fast apart."
    )
    online_share: Probability
    far_km: Positive
    cashout_share: Probability


class CompromisedMerchant(Scenario[CompromisedMerchantParams]):
    """A breach at one merchant (a common point of purchase); its cards are defrauded later.

    During the breach window, cardholders living nearby shop at the merchant as usual
    (those genuine purchases are part of the campaign, not fraud). After a dormancy the
    stolen data is used elsewhere: online, or card present far away (cloned stripe),
    each card in a quick spree while its holder goes on shopping at home.
    """

    name = "compromised_merchant"

    Params = CompromisedMerchantParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        rows = CampaignRows()
        anchor = int(ctx.victims(rng, 1)[0])
        city = ctx.home_city(anchor)
        site = int(ctx.nearby_merchants(rng, city, 1, p.breach_mccs)[0])
        breach_us = between(rng, p.breach_days) * US_PER_DAY
        holders = ctx.residents(rng, ctx.neighbours_of(city), between(rng, p.cards))
        n = len(holders)
        if n == 0:
            return rows.campaign()
        visit = start_us + (rng.random(n) * breach_us).astype(np.int64)
        cards = np.array([ctx.card_of(int(h), int(t)) for h, t in zip(holders, visit, strict=True)])
        sites = np.full(n, site)
        amount = ctx.ordinary_amounts(rng, holders, sites)
        rows.add(visit, cards, sites, amount, ctx.entry_modes.get("chip", 0), fraud=False)
        # The stolen data is sold on and used after a dormancy: online, or cloned cards
        # in one far-away city (one crew per breach).
        first = (
            start_us + breach_us + (rng.uniform(*p.dormancy_days, n) * US_PER_DAY).astype(np.int64)
        )
        per_card = rng.integers(p.frauds_per_card[0], p.frauds_per_card[1] + 1, n)
        owner = np.repeat(np.arange(n), per_card)
        t = spree(rng, first, owner, p.spree_gap_minutes * US_PER_MINUTE)
        # The number stolen is the one used at the breached merchant, even if reissued since.
        card = cards[owner]
        online = (rng.random(n) < p.online_share)[owner]
        far = ctx.far_city(rng, city, p.far_km)
        for is_online, mode in (
            (True, ctx.ecommerce_mode),
            (False, ctx.entry_modes.get("magstripe", 0)),
        ):
            sel = np.flatnonzero(online == is_online)
            if len(sel):
                merchant, amount = cashout_or_ordinary(
                    ctx,
                    rng,
                    holders[owner[sel]],
                    len(sel),
                    p.cashout_share,
                    None if is_online else far,
                )
                when = t[sel]
                if not is_online:
                    m = ctx.world.merchants
                    when = paced(
                        rng, when, owner[sel], m.lat[merchant], m.lon[merchant], p.drive_kmh
                    )
                rows.add(when, card[sel], merchant, amount, mode)
        return rows.campaign()


class AccountTakeoverParams(RangeParams):
    """Parameters of account takeover (defaults: ``fraud.scenarios`` in defaults.yaml)."""

    purchases: tuple[Count, Count]
    first_gap_hours: Positive
    gap_ratio: float = Field(gt=0.0, le=1.0)
    cashout_share: Probability


class AccountTakeover(Scenario[AccountTakeoverParams]):
    """A fraudster takes over the online account: high-value orders at rising velocity.

    Orders at online shops new to the card, each gap shorter than the one before, from
    an hour or so down to minutes.
    """

    name = "account_takeover"

    Params = AccountTakeoverParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        rows = CampaignRows()
        holder = int(ctx.victims(rng, 1)[0])
        start = ctx.at_local_hour(rng, start_us, ctx.home_city(holder), p.hour_weights)
        k = between(rng, p.purchases)
        jitter = rng.uniform(0.75, 1.25, k - 1)
        gaps = np.sort(p.first_gap_hours * p.gap_ratio ** np.arange(k - 1) * jitter)[::-1]
        t = start + np.concatenate([[0], np.cumsum(gaps * US_PER_HOUR)]).astype(np.int64)
        merchant, amount = cashout_or_ordinary(ctx, rng, holder, k, p.cashout_share, None)
        rows.add(t, ctx.card_of(holder, start), merchant, amount, ctx.ecommerce_mode)
        return rows.campaign()


class LostStolenParams(RangeParams):
    """Parameters of lost or stolen card (defaults: ``fraud.scenarios`` in defaults.yaml)."""

    purchases: tuple[Count, Count]
    theft_minutes: Positive = Field(
        description="Mean time from the holder's purchase to the first fraud."
    )
    mean_gap_minutes: Positive
    drive_kmh: Positive = Field(
        description="Shops of a spree are at least a drive this fast apart."
    )
    cashout_share: Probability


class LostStolen(Scenario[LostStolenParams]):
    """A lost or stolen card spent fast, card present, near where it was lost.

    The card goes missing at or soon after one of the holder's own purchases (left at
    the till, pickpocketed on the way out: that purchase is staged, genuine); the finder
    then shops one store after another within the hour, at stores the holder does not
    use, until the loss is reported.
    """

    name = "lost_stolen"

    Params = LostStolenParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        rows = CampaignRows()
        holder = int(ctx.victims(rng, 1)[0])
        city = ctx.home_city(holder)
        start = ctx.at_local_hour(rng, start_us, city, p.hour_weights)
        card = ctx.card_of(holder, start)
        contactless = ctx.entry_modes.get("contactless", 0)
        shop = ctx.nearby_merchants(rng, city, 1)
        amount = ctx.ordinary_amounts(rng, np.array([holder]), shop)
        rows.add(np.array([start]), card, shop, amount, contactless, fraud=False)
        k = between(rng, p.purchases)
        theft = start + 1 + int(rng.exponential(p.theft_minutes) * US_PER_MINUTE)
        gap_us = p.mean_gap_minutes * US_PER_MINUTE
        t = spree(rng, np.array([theft]), np.zeros(k, np.int64), gap_us)
        merchant, amount = cashout_or_ordinary(ctx, rng, holder, k, p.cashout_share, city)
        m = ctx.world.merchants
        shops = np.concatenate([shop, merchant])
        t = paced(
            rng,
            np.r_[start, t],
            np.zeros(k + 1, np.int64),
            m.lat[shops],
            m.lon[shops],
            p.drive_kmh,
        )
        rows.add(t[1:], card, merchant, amount, contactless)
        return rows.campaign()


class ImpossibleTravelParams(RangeParams):
    """Parameters of impossible travel (defaults: ``fraud.scenarios`` in defaults.yaml)."""

    min_km: Positive
    min_speed_kmh: Positive = Field(description="The implied speed is at least this (no flight).")
    gap_hours: tuple[float, float]
    purchases: tuple[Count, Count]
    spree_gap_minutes: Positive = Field(description="Mean gap between the clone's purchases.")
    drive_kmh: Positive = Field(
        description="Shops of a spree are at least a drive this fast apart."
    )
    cashout_share: Probability


class ImpossibleTravel(Scenario[ImpossibleTravelParams]):
    """A cloned card used card present far away, hours after the holder shopped at home.

    The first purchase far away implies a speed no flight reaches; the rest follow it
    within minutes, at shops new to the card.
    """

    name = "impossible_travel"

    Params = ImpossibleTravelParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        rows = CampaignRows()
        holder = int(ctx.victims(rng, 1)[0])
        home = ctx.home_city(holder)
        at_home = ctx.at_local_hour(rng, start_us, home, p.hour_weights)
        card = ctx.card_of(holder, at_home)
        shop = ctx.nearby_merchants(rng, home, 1)
        chip = ctx.entry_modes.get("chip", 0)
        amount = ctx.ordinary_amounts(rng, np.array([holder]), shop)
        rows.add(np.array([at_home]), card, shop, amount, chip, fraud=False)
        gap_h = rng.uniform(*p.gap_hours)
        far = ctx.far_city(rng, home, max(p.min_km, gap_h * p.min_speed_kmh))
        k = between(rng, p.purchases)
        merchant, amount = cashout_or_ordinary(ctx, rng, holder, k, p.cashout_share, far)
        # Measured between the two shops; too few far places (a small country): a shorter gap.
        cities = ctx.world.merchants.city
        km = min(
            ctx.merchant_distance_km(int(shop[0]), int(merchant[0])),
            ctx.distance_km(int(cities[shop[0]]), int(cities[merchant[0]])),
        )
        gap_h = min(gap_h, km / p.min_speed_kmh * rng.uniform(0.5, 0.95))
        first = at_home + int(gap_h * US_PER_HOUR)
        gap_us = p.spree_gap_minutes * US_PER_MINUTE
        t = spree(rng, np.array([first]), np.zeros(k, np.int64), gap_us)
        m = ctx.world.merchants
        t = paced(rng, t, np.zeros(k, np.int64), m.lat[merchant], m.lon[merchant], p.drive_kmh)
        rows.add(t, card, merchant, amount, ctx.entry_modes.get("magstripe", 0))
        return rows.campaign()


class FirstPartyParams(RangeParams):
    """Parameters of first-party fraud (defaults: ``fraud.scenarios`` in defaults.yaml)."""

    purchases: tuple[Count, Count]
    span_days: Positive
    online_mccs: list[str] = Field(min_length=1)
    spend_factor: tuple[float, float]


class FirstParty(Scenario[FirstPartyParams]):
    """The cardholder's own ordinary-looking purchases, disputed weeks later."""

    name = "first_party"

    Params = FirstPartyParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        rows = CampaignRows()
        holder = int(ctx.victims(rng, 1)[0])
        start = ctx.at_local_hour(rng, start_us, ctx.home_city(holder), p.hour_weights)
        k = between(rng, p.purchases)
        t = start + np.sort((rng.random(k) * p.span_days * US_PER_DAY).astype(np.int64))
        t[0] = start
        merchant = ctx.online_merchants(rng, k, p.online_mccs)
        amount = ctx.ordinary_amounts(rng, np.full(k, holder), merchant)
        amount = ctx.quantise(amount * rng.uniform(*p.spend_factor, k), merchant)
        rows.add(t, ctx.card_of(holder, start), merchant, amount, ctx.ecommerce_mode)
        return rows.campaign()
