"""Entity catalogs: cardholders, their cards, and merchants, as columns.

Cardholders are drawn block by block, each block from its own seeded stream, so a
cardholder's attributes depend on the seed and its block only: growing the
population appends blocks and leaves existing cardholders unchanged. Ids are stable
and sequential; foreign keys are integer indices internally and strings on output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from simulator.core.geo import jitter
from simulator.core.sampling import (
    apportion,
    cdf,
    draw_categorical,
    lognormal_unit_mean,
    zipf_weights,
)
from simulator.core.seeding import Streams
from simulator.settings.models import (
    GeographyConfig,
    MccGroupConfig,
    MerchantsConfig,
    PopulationConfig,
)
from simulator.world.reference import Cities, city_cdf

__all__ = [
    "CHANNEL_CARD_PRESENT",
    "CHANNEL_ECOMMERCE",
    "Cardholders",
    "Cards",
    "Merchants",
    "build_cardholders",
    "build_merchants",
    "card_ids",
    "city_radius_km",
    "string_ids",
]

CHANNEL_CARD_PRESENT = 0
CHANNEL_ECOMMERCE = 1


def string_ids(prefix: str, start: int, count: int, width: int) -> pa.StringArray:
    """``prefix`` followed by zero-padded decimal numbers ``start .. start+count-1``."""
    numbers = np.arange(start, start + count, dtype=np.int64)
    digits = np.empty((count, width), dtype=np.uint8)
    rest = numbers.copy()
    for pos in range(width - 1, -1, -1):
        digits[:, pos] = 48 + rest % 10
        rest //= 10
    if count and rest.max() > 0:
        raise ValueError(f"{start + count - 1} does not fit in {width} digits")
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    body = np.concatenate([np.broadcast_to(head, (count, len(head))), digits], axis=1)
    step = len(head) + width
    offsets = np.arange(0, step * (count + 1), step, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(body.tobytes()))


def card_ids(start: int, count: int) -> pa.StringArray:
    """Card ids for card indices ``start .. start+count-1`` (replacement cards continue the run)."""
    return string_ids("card-", start, count, 10)


def city_radius_km(geo: GeographyConfig, population: np.ndarray) -> np.ndarray:
    """Radius of a city's built-up disc, growing with the square root of its population."""
    return np.maximum(
        geo.city_radius_min_km, geo.city_radius_km_per_sqrt_thousand * np.sqrt(population / 1000.0)
    )


@dataclass(frozen=True)
class Cardholders:
    """Cardholder columns (one row per cardholder, index = position)."""

    ids: pa.StringArray
    home_city: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    rate: np.ndarray
    spend: np.ndarray
    card_offset: np.ndarray
    card_count: np.ndarray
    card_cum: np.ndarray

    def __len__(self) -> int:
        return len(self.home_city)


@dataclass(frozen=True)
class Cards:
    """Card columns; a cardholder's cards are contiguous, primary card first."""

    ids: pa.StringArray
    holder: np.ndarray
    card_type: np.ndarray
    network: np.ndarray
    credit_limit: np.ndarray
    is_primary: np.ndarray

    def __len__(self) -> int:
        return len(self.holder)

    def ids_upto(self, count: int) -> pa.StringArray:
        """Ids of card indices ``0 .. count-1``: these cards, then replacements issued after."""
        if count <= len(self):
            return self.ids
        return pa.concat_arrays([self.ids, card_ids(len(self), count - len(self))])


@dataclass(frozen=True)
class Merchants:
    """Merchant columns. E-commerce merchants have NaN coordinates."""

    ids: pa.StringArray
    names: pa.StringArray
    mcc: np.ndarray
    group: np.ndarray
    channel: np.ndarray
    city: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray
    price: np.ndarray

    def __len__(self) -> int:
        return len(self.group)


def build_cardholders(
    pop: PopulationConfig, geo: GeographyConfig, streams: Streams, cities: Cities
) -> tuple[Cardholders, Cards]:
    """Draw every cardholder and card, block by block."""
    cards_cfg = pop.cards
    candidates, home_cdf = city_cdf(cities, geo.home_countries)
    count_cdf = cdf(cards_cfg.count_weights)
    type_cdf, network_cdf = (
        cdf(list(cards_cfg.types.values())),
        cdf(list(cards_cfg.networks.values())),
    )
    parts: dict[str, list[np.ndarray]] = {}
    card_parts: dict[str, list[np.ndarray]] = {}
    card_total = 0
    for block, lo in enumerate(range(0, pop.cardholders, pop.block_size)):
        n = min(pop.block_size, pop.cardholders - lo)
        rng = streams.generator("cardholders", block)
        home = candidates[draw_categorical(rng.random(n), home_cdf)]
        lat, lon = jitter(
            rng,
            cities.lat[home],
            cities.lon[home],
            city_radius_km(geo, cities.population[home]),
        )
        rate = rng.gamma(pop.activity_shape, pop.activity_mean / pop.activity_shape, n)
        spend = lognormal_unit_mean(rng, pop.spend_sigma, n)
        count = draw_categorical(rng.random(n), count_cdf) + 1
        for key, value in (
            ("home_city", home),
            ("lat", lat),
            ("lon", lon),
            ("rate", rate),
            ("spend", spend),
            ("card_count", count),
        ):
            parts.setdefault(key, []).append(value)

        crng = streams.generator("cards", block)
        m = int(count.sum())
        holder = np.repeat(np.arange(lo, lo + n, dtype=np.int32), count)
        first = np.zeros(m, dtype=bool)
        first[np.cumsum(count) - count] = True
        for key, value in (
            ("holder", holder),
            ("card_type", draw_categorical(crng.random(m), type_cdf).astype(np.int8)),
            ("network", draw_categorical(crng.random(m), network_cdf).astype(np.int8)),
            (
                "credit_limit",
                np.round(
                    crng.lognormal(
                        np.log(cards_cfg.credit_limit_median), cards_cfg.credit_limit_sigma, m
                    ),
                    -2,
                ),
            ),
            ("is_primary", first),
        ):
            card_parts.setdefault(key, []).append(value)
        card_total += m

    col = {k: np.concatenate(v) for k, v in parts.items()}
    ccol = {k: np.concatenate(v) for k, v in card_parts.items()}
    count = col["card_count"].astype(np.int32)
    offset = np.cumsum(count) - count
    # Spend over a cardholder's cards: the primary takes primary_share, the others split the rest.
    # Column by column in memory: a slice gathers each column for its rows' holders.
    cum = np.ones((len(count), 3), dtype=np.float64, order="F")
    share = cards_cfg.primary_share
    two = count == 2
    three = count == 3
    cum[two, 0] = share
    cum[three, 0] = share
    cum[three, 1] = share + (1 - share) / 2
    holders = Cardholders(
        ids=string_ids("ch-", 0, len(count), 9),
        home_city=col["home_city"].astype(np.int32),
        lat=col["lat"],
        lon=col["lon"],
        rate=col["rate"],
        spend=col["spend"],
        card_offset=offset.astype(np.int64),
        card_count=count,
        card_cum=cum,
    )
    cards = Cards(
        ids=card_ids(0, card_total),
        holder=ccol["holder"],
        card_type=ccol["card_type"],
        network=ccol["network"],
        credit_limit=ccol["credit_limit"],
        is_primary=ccol["is_primary"],
    )
    return holders, cards


def build_merchants(
    mcfg: MerchantsConfig,
    mcc_groups: Mapping[str, MccGroupConfig],
    geo: GeographyConfig,
    destinations: Mapping[str, float],
    streams: Streams,
    cities: Cities,
    holders_home: np.ndarray,
    mcc_codes: list[str],
    brand_words: list[str],
) -> Merchants:
    """Draw the merchant population: category, channel, fixed place, popularity, price level.

    Card-present shops at home open where the simulated cardholders live (the city of a
    random cardholder), so a small sample of merchants still serves every town that
    has customers; shops abroad and online merchants' registered cities follow
    population.
    """
    groups = list(mcc_groups.values())
    rng = streams.generator("merchants")
    towns = len(np.unique(holders_home))
    total = max(
        mcfg.minimum,
        round(mcfg.per_cardholder * len(holders_home)),
        round(mcfg.per_home_city * towns),
    )
    per_group = apportion(total, [g.merchant_share for g in groups])
    mcc_index = {code: i for i, code in enumerate(mcc_codes)}
    home_idx, home_cdf = city_cdf(cities, geo.home_countries)
    abroad_idx, abroad_cdf = city_cdf(cities, destinations)

    cols: dict[str, list[np.ndarray]] = {}
    for g, (group, n_raw) in enumerate(zip(groups, per_group, strict=True)):
        if group.share <= 0 and n_raw == 0:
            continue
        e = group.ecommerce_share
        need_cp, need_ec = int(e < 1), int(e > 0)
        n = max(int(n_raw), need_cp + need_ec)
        odds = e * mcfg.ecommerce_merchant_ratio
        frac = 0.0 if e == 0 else odds / (odds + (1 - e))
        n_ec = min(max(round(n * frac), need_ec), n - need_cp)
        channel = np.zeros(n, dtype=np.int8)
        channel[:n_ec] = CHANNEL_ECOMMERCE
        codes = list(group.mccs)
        mcc = np.array([mcc_index[c] for c in codes], dtype=np.int16)[
            draw_categorical(rng.random(n), cdf(list(group.mccs.values())))
        ]
        abroad_p = np.where(
            channel == CHANNEL_ECOMMERCE, mcfg.ecommerce_foreign_share, mcfg.abroad_share
        )
        abroad = rng.random(n) < abroad_p
        at_home = np.where(
            channel == CHANNEL_CARD_PRESENT,
            holders_home[rng.integers(0, len(holders_home), n)],
            home_idx[draw_categorical(rng.random(n), home_cdf)],
        )
        city = np.where(
            abroad, abroad_idx[draw_categorical(rng.random(n), abroad_cdf)], at_home
        ).astype(np.int32)
        lat, lon = jitter(
            rng,
            cities.lat[city],
            cities.lon[city],
            city_radius_km(geo, cities.population[city]),
        )
        online = channel == CHANNEL_ECOMMERCE
        lat[online] = np.nan
        lon[online] = np.nan
        weight = np.empty(n)
        for ch in (0, 1):
            sel = channel == ch
            weight[sel] = zipf_weights(rng, int(sel.sum()), mcfg.popularity_exponent)
        for key, value in (
            ("mcc", mcc),
            ("group", np.full(n, g, dtype=np.int16)),
            ("channel", channel),
            ("city", city),
            ("lat", lat),
            ("lon", lon),
            ("weight", weight),
            ("price", lognormal_unit_mean(rng, mcfg.price_sigma, n)),
            ("brand", rng.integers(0, len(brand_words), size=(n, 2))),
        ):
            cols.setdefault(key, []).append(value)
    col = {k: np.concatenate(v) for k, v in cols.items()}
    n_all = len(col["group"])
    return Merchants(
        ids=string_ids("m-", 0, n_all, 8),
        names=_merchant_names(col["brand"], brand_words, cities.name[col["city"]], col["channel"]),
        mcc=col["mcc"],
        group=col["group"],
        channel=col["channel"],
        city=col["city"],
        lat=col["lat"],
        lon=col["lon"],
        weight=col["weight"],
        price=col["price"],
    )


def _merchant_names(
    brand: np.ndarray, words: list[str], city_names: np.ndarray, channel: np.ndarray
) -> pa.StringArray:
    names = [
        f"{words[a]}{words[b].lower()} Online"
        if ch == CHANNEL_ECOMMERCE
        else f"{words[a]}{words[b].lower()} {city}"
        for (a, b), city, ch in zip(
            brand.tolist(), city_names.tolist(), channel.tolist(), strict=True
        )
    ]
    return pa.array(names, type=pa.string())
