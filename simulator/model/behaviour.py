"""What a block of cardholders does during one time slice, computed as arrays.

Arrivals follow a non-homogeneous Poisson process per cardholder, sampled by
thinning: candidate times are proposed at a bounding rate and kept with probability
``intensity / bound``. The intensity is the cardholder's personal rate times, for
each merchant category, the category's share, its hour-of-day curve in the local
time of wherever the cardholder is, the merchant-side weekday, holiday and season
factors of the country the cardholder is in (the visited one when abroad), and the
cardholder-side payday factor of the home date.
Then each kept arrival picks a card, a channel, a merchant (near where the
cardholder is, by popularity) and an amount. Every draw comes from the stream
``("behaviour", block, date, slice)``, in a fixed order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from runtime.units import MINUTES_PER_DAY, US_PER_MINUTE, to_us
from simulator.core.gather import take2
from simulator.core.ids import pack_keys
from simulator.core.sampling import cdf, draw_categorical
from simulator.core.seeding import Streams
from simulator.model.travel import Whereabouts
from simulator.settings.run import RunSpec
from simulator.world.build import World
from simulator.world.calendar import tz_offsets_minutes
from simulator.world.catalog import CHANNEL_CARD_PRESENT, CHANNEL_ECOMMERCE
from simulator.world.spend import amounts_minor

__all__ = ["BlockEvents", "SliceContext", "simulate_block"]


@dataclass(frozen=True)
class SliceContext:
    """Tables shared by every block of one time slice.

    Attributes:
        start: Slice start (UTC, aware).
        index: Slice number within its UTC day.
        hours: Slice length.
        offsets: UTC offset in minutes per time zone and hour of the slice.
        day_factors: Merchant side: countries x (previous, same, next local date) x
            categories.
        holder_factors: Cardholder side: (previous, same, next home date) x categories.
        bound: Per-category upper bound of curve x day factor x holder factor.
        proposal_cdf: Cumulative category proposal weights, at home (row 0) and away (row 1).
        proposal_rate: Total proposal rate per unit personal rate, at home and away.
        ecommerce_share: Per category, the share of transactions online.
        entry_mode_cdf: Cumulative weights of the card-present entry modes.
        null_rates: Shares of rows without merchant city, coordinates and entry mode.
        local_share: Card-present spend in the city where the cardholder is.
        foreign_share: Online purchases from merchants anywhere, not only at home.
    """

    start: dt.datetime
    index: int
    hours: int
    offsets: np.ndarray
    day_factors: np.ndarray
    holder_factors: np.ndarray
    bound: np.ndarray
    proposal_cdf: np.ndarray
    proposal_rate: np.ndarray
    ecommerce_share: np.ndarray
    entry_mode_cdf: np.ndarray
    null_rates: tuple[float, float, float]
    local_share: float
    foreign_share: float

    @classmethod
    def build(cls, world: World, spec: RunSpec, start: dt.datetime) -> SliceContext:
        """Evaluate calendars and time zones for the slice starting at ``start``."""
        if start.tzinfo is None or start.utcoffset() != dt.timedelta(0):
            raise ValueError("slice start must be an aware UTC datetime")
        hours = spec.slice_hours
        day = start.date()
        days = [day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)]
        factors = world.calendar.day_factors(days)
        holder = world.calendar.holder_factors(days)
        bound = world.calendar.curve_max * factors.max(axis=(0, 1)) * holder.max(axis=0)
        weights = world.group_profiles * bound
        nulls = spec.null_rates
        return cls(
            start=start,
            index=start.hour // hours,
            hours=hours,
            offsets=tz_offsets_minutes(world.timezones, start, hours),
            day_factors=factors,
            holder_factors=holder,
            bound=bound,
            proposal_cdf=np.stack([cdf(w) for w in weights]),
            proposal_rate=weights.sum(axis=1),
            ecommerce_share=world.group_ecommerce_share,
            entry_mode_cdf=cdf(list(spec.entry_mode_weights)),
            null_rates=(
                nulls.get("merchant_city", 0.0),
                nulls.get("merchant_coordinates", 0.0),
                nulls.get("pos_entry_mode", 0.0),
            ),
            local_share=spec.local_share,
            foreign_share=spec.ecommerce_foreign_share,
        )


@dataclass(frozen=True)
class BlockEvents:
    """Transactions of one block in one slice, in generation order (not yet by time)."""

    time_us: np.ndarray
    holder: np.ndarray
    card: np.ndarray
    merchant: np.ndarray
    amount_minor: np.ndarray
    entry_mode: np.ndarray
    null_city: np.ndarray
    null_coordinates: np.ndarray
    key: np.ndarray

    def __len__(self) -> int:
        return len(self.key)


def simulate_block(
    world: World, streams: Streams, where: Whereabouts, ctx: SliceContext, block: int
) -> BlockEvents:
    """Simulate one block of cardholders over one slice."""
    holders = world.holders
    day = ctx.start.date()
    rng = streams.generator("behaviour", block, day.toordinal(), ctx.index)
    lo, hi = world.block_range(block)
    loc_row, away = where.locate(block, day)
    profile = away.astype(np.intp)

    # Proposals at the bounding rate, then thinning in local time.
    expected = holders.rate[lo:hi] * ctx.proposal_rate[profile] * (ctx.hours / 24.0)
    counts = rng.poisson(expected)
    owner = np.repeat(np.arange(hi - lo, dtype=np.intp), counts)
    n = len(owner)
    u = rng.random(n)
    group = draw_categorical(u, ctx.proposal_cdf[0])
    travelling = np.flatnonzero(profile[owner])
    group[travelling] = draw_categorical(u[travelling], ctx.proposal_cdf[1])
    minute = rng.random(n) * (ctx.hours * 60)
    # floor(minute / 60), exactly, without a float floor division (minute >= 0).
    hour = minute.astype(np.intp) // 60
    here = world.places.location_city[loc_row].astype(np.intp)
    day_idx, local_minute = _local_day(ctx, world.tz_of_city[here][owner], minute, hour)
    # At home, the home date is the local date; only travellers' differ.
    home_day = day_idx.copy()
    home_day[travelling], _ = _local_day(
        ctx,
        world.holder_tz[lo:hi][owner[travelling]],
        minute[travelling],
        hour[travelling],
    )
    # Merchant side: the country the cardholder is in; cardholder side: the home date.
    country = world.country_of_city[here][owner]
    intensity = (
        take2(world.calendar.minute_curve, group, local_minute)
        * ctx.day_factors[country, day_idx, group]
        * take2(ctx.holder_factors, home_day, group)
    )
    keep = np.flatnonzero(rng.random(n) * ctx.bound[group] < intensity)
    owner, group, minute = owner[keep], group[keep], minute[keep]
    n = len(owner)
    holder = owner + lo

    # Card: the primary card takes most of the spend.
    u = rng.random(n)
    cum = holders.card_cum
    slot = (u > cum[:, 0].take(holder)).astype(np.int64) + (u > cum[:, 1].take(holder))
    card = holders.card_offset[holder] + np.minimum(slot, holders.card_count[holder] - 1)

    merchant, channel = _choose_merchants(world, ctx, rng, holder, owner, group, loc_row)
    amount_minor = amounts_minor(world, rng, holder, merchant)

    modes = ctx.entry_mode_cdf
    entry = np.where(
        channel == CHANNEL_ECOMMERCE, len(modes), draw_categorical(rng.random(n), modes)
    ).astype(np.int8)
    city_rate, coordinates_rate, entry_rate = ctx.null_rates
    null_city = rng.random(n) < city_rate
    null_coordinates = rng.random(n) < coordinates_rate
    null_entry = rng.random(n) < entry_rate
    entry[null_entry] = -1

    start_us = to_us(ctx.start)
    time_us = start_us + (minute * US_PER_MINUTE).astype(np.int64)
    return BlockEvents(
        time_us=time_us,
        holder=holder.astype(np.int32),
        card=card.astype(np.int32),
        merchant=merchant.astype(np.int32),
        amount_minor=amount_minor,
        entry_mode=entry,
        null_city=null_city,
        null_coordinates=null_coordinates,
        key=pack_keys(day, ctx.index, block, n),
    )


def _local_day(
    ctx: SliceContext, tz: np.ndarray, minute: np.ndarray, hour: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Local date (0: the day before the slice's UTC date, 1: same, 2: next) and minute."""
    local = ctx.start.hour * 60 + minute + take2(ctx.offsets, tz, hour)
    # UTC offsets lie within -12 h and +14 h and a slice within its UTC day, so the local
    # time is less than a day before or after that day: floor(local / day) + 1, exactly,
    # by two comparisons instead of a float floor division.
    day_idx = (local >= 0).astype(np.intp) + (local >= MINUTES_PER_DAY)
    return day_idx, (local - (day_idx - 1) * MINUTES_PER_DAY).astype(np.intp)


def _choose_merchants(
    world: World,
    ctx: SliceContext,
    rng: np.random.Generator,
    holder: np.ndarray,
    owner: np.ndarray,
    group: np.ndarray,
    loc_row: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    places = world.places
    n = len(holder)
    n_groups = world.n_groups
    u_channel, u_near, u_city, u_pick, u_foreign = (rng.random(n) for _ in range(5))
    channel = np.where(
        u_channel < ctx.ecommerce_share[group], CHANNEL_ECOMMERCE, CHANNEL_CARD_PRESENT
    )

    row = loc_row[owner]
    nearby = np.flatnonzero(u_near >= ctx.local_share)
    row[nearby] = places.near.pick(row[nearby], u_city[nearby])
    segment = take2(places.resolved, row, group)
    channel = np.where(segment < 0, CHANNEL_ECOMMERCE, channel)

    # Row numbers, not masks: a random mask's gather is four times slower (numpy 2.4).
    merchant = np.empty(n, dtype=np.int64)
    cp = np.flatnonzero(channel == CHANNEL_CARD_PRESENT)
    merchant[cp] = world.cp_segments.pick(segment[cp], u_pick[cp])

    online = np.flatnonzero(channel != CHANNEL_CARD_PRESENT)
    country = world.holder_country[holder[online]].astype(np.int64)
    g = group[online].astype(np.int64)
    everywhere = len(world.countries) * n_groups + g
    key = np.where(
        u_foreign[online] < ctx.foreign_share,
        everywhere,
        country * n_groups + g,
    )
    seg = world.ecom_segments.lookup(key)
    seg = np.where(seg < 0, world.ecom_segments.lookup(everywhere), seg)
    merchant[online] = world.ecom_segments.pick(seg, u_pick[online])
    return merchant, channel
