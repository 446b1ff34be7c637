"""The world a run simulates: places, catalogs and the lookup tables behaviour needs.

A :class:`World` is built once per process from the settings and the root seed, and
is read-only afterwards, so worker processes can share it (forked) and every block
of cardholders sees the same merchants, calendars and neighbourhoods.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simulator.core.geo import neighbours, unit_vectors
from simulator.core.sampling import Segments, cdf
from simulator.core.seeding import Streams
from simulator.errors import ReferenceDataError
from simulator.settings.models import AmountModel, Settings
from simulator.world.calendar import Calendar
from simulator.world.catalog import (
    CHANNEL_CARD_PRESENT,
    Cardholders,
    Cards,
    Merchants,
    build_cardholders,
    build_merchants,
)
from simulator.world.reference import Cities, country_currency, load_cities, mcc_description

__all__ = ["AmountTable", "Places", "World", "build_world"]

#: Neighbour cities kept per location (the nearest are tried first).
_NEIGHBOURS_PER_CITY = 24


@dataclass(frozen=True)
class AmountTable:
    """Amount models as arrays, one row per MCC (its own model or its group's)."""

    log_median: np.ndarray
    sigma: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    point_share: np.ndarray
    points: np.ndarray
    point_cdf: np.ndarray

    @classmethod
    def build(cls, models: list[AmountModel]) -> AmountTable:
        """Pack models; price-point lists are padded to a common width."""
        width = max([len(m.price_points) for m in models] + [1])
        points = np.zeros((len(models), width))
        point_cdf = np.ones((len(models), width))
        for i, m in enumerate(models):
            if m.price_points:
                k = len(m.price_points)
                points[i, :k] = m.price_points
                point_cdf[i, :k] = np.arange(1, k + 1) / k
        return cls(
            log_median=np.log([m.median for m in models]),
            sigma=np.array([m.sigma for m in models]),
            minimum=np.array([m.minimum for m in models]),
            maximum=np.array([m.maximum for m in models]),
            point_share=np.array([m.price_point_share for m in models]),
            points=points,
            point_cdf=point_cdf,
        )


@dataclass(frozen=True)
class Places:
    """Where card-present spending can happen, and how to pick a merchant there.

    Attributes:
        row_of_city: City index to location row (-1 for cities no one can be in).
        location_city: City index of each location row.
        near: Neighbouring merchant cities of each location row (CSR, nearest first).
        near_row: Location row of each neighbour entry.
        resolved: Location row x category -> segment of card-present merchants to use.
        domestic: Segments of merchant cities by country (weights: population).
        abroad_cdf: Cumulative weights of destination cities abroad.
        abroad_rows: Location rows of those cities.
    """

    row_of_city: np.ndarray
    location_city: np.ndarray
    near: Segments
    resolved: np.ndarray
    domestic: Segments
    abroad_cdf: np.ndarray
    abroad_rows: np.ndarray


@dataclass(frozen=True)
class World:
    """Everything the behaviour model reads. Immutable once built."""

    settings: Settings
    streams: Streams
    cities: Cities
    countries: list[str]
    currencies: list[str]
    country_of_city: np.ndarray
    timezones: list[str]
    tz_of_city: np.ndarray
    mcc_codes: list[str]
    mcc_group: np.ndarray
    group_names: list[str]
    amounts: AmountTable
    currency_scale: np.ndarray
    currency_of_country: np.ndarray
    holders: Cardholders
    cards: Cards
    merchants: Merchants
    calendar: Calendar
    cp_segments: Segments
    ecom_segments: Segments
    places: Places

    @property
    def n_groups(self) -> int:
        """Number of merchant-category groups."""
        return len(self.group_names)

    @property
    def n_blocks(self) -> int:
        """Number of cardholder blocks."""
        pop = self.settings.population
        return -(-pop.cardholders // pop.block_size)

    def block_range(self, block: int) -> tuple[int, int]:
        """First and one-past-last cardholder index of a block."""
        size = self.settings.population.block_size
        return block * size, min((block + 1) * size, self.settings.population.cardholders)

    @cached_property
    def holder_country(self) -> np.ndarray:
        """Country index of each cardholder's home."""
        return self.country_of_city[self.holders.home_city]


def _brand_words() -> list[str]:
    text = (
        importlib.resources.files("simulator")
        .joinpath("data/brand_syllables.txt")
        .read_text("utf-8")
    )
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _mcc_table(settings: Settings) -> tuple[list[str], np.ndarray, list[AmountModel]]:
    codes: list[str] = []
    group: list[int] = []
    models: list[AmountModel] = []
    for g, (name, cfg) in enumerate(settings.mcc_groups.items()):
        for code in cfg.mccs:
            try:
                mcc_description(code)
            except ReferenceDataError as exc:
                raise ReferenceDataError(f"mcc_groups.{name}.mccs: {exc}") from None
            codes.append(code)
            group.append(g)
            models.append(cfg.amount_by_mcc.get(code, cfg.amount))
    return codes, np.array(group, dtype=np.int16), models


def build_world(settings: Settings, streams: Streams) -> World:
    """Build the world for a run; raises :class:`ReferenceDataError` for impossible settings."""
    home = settings.geography.home_countries
    countries = sorted(set(home) | set(settings.travel.destinations))
    currencies = sorted({country_currency(c) for c in countries})
    missing = [c for c in currencies if c not in settings.currency_per_usd]
    if missing:
        raise ReferenceDataError(
            f"currency_per_usd: no rate for {', '.join(missing)} "
            f"(needed by the countries {', '.join(countries)})"
        )
    cities = load_cities(
        frozenset(countries), settings.geography.min_city_population, settings.cache_dir
    )
    country_index = {c: i for i, c in enumerate(countries)}
    country_of_city = np.array([country_index[c] for c in cities.country.tolist()], dtype=np.int16)
    timezones = sorted(set(cities.timezone.tolist()))
    tz_index = {z: i for i, z in enumerate(timezones)}
    tz_of_city = np.array([tz_index[z] for z in cities.timezone.tolist()], dtype=np.int32)
    mcc_codes, mcc_group, models = _mcc_table(settings)
    currency_index = {c: i for i, c in enumerate(currencies)}
    currency_of_country = np.array(
        [currency_index[country_currency(c)] for c in countries], dtype=np.int16
    )
    currency_scale = np.array([settings.currency_per_usd[c] for c in currencies])

    holders, cards = build_cardholders(settings, streams, cities)
    merchants = build_merchants(
        settings, streams, cities, holders.home_city, mcc_codes, _brand_words()
    )
    n_groups = len(settings.mcc_groups)
    cp = merchants.channel == CHANNEL_CARD_PRESENT
    cp_key = np.where(cp, merchants.city.astype(np.int64) * n_groups + merchants.group, -1)
    cp_segments = Segments.build(cp_key, np.where(cp, merchants.weight, 0.0))
    merchant_country = country_of_city[merchants.city].astype(np.int64)
    ecom_key = np.where(~cp, merchant_country * n_groups + merchants.group, -1)
    # One more segment per group holds every online merchant of that group, wherever registered.
    all_online = len(countries) * n_groups + merchants.group.astype(np.int64)
    ecom_key = np.concatenate([ecom_key, np.where(~cp, all_online, -1)])
    ecom_weight = np.where(~cp, merchants.weight, 0.0)
    ecom_segments = Segments.build(ecom_key, np.concatenate([ecom_weight, ecom_weight]))
    ecom_segments = ecom_segments.map_items(np.tile(np.arange(len(merchants), dtype=np.int32), 2))
    places = _places(settings, cities, holders, merchants, cp_segments, country_of_city, n_groups)
    return World(
        settings=settings,
        streams=streams,
        cities=cities,
        countries=countries,
        currencies=currencies,
        country_of_city=country_of_city,
        timezones=timezones,
        tz_of_city=tz_of_city,
        mcc_codes=mcc_codes,
        mcc_group=mcc_group,
        group_names=list(settings.mcc_groups),
        amounts=AmountTable.build(models),
        currency_scale=currency_scale,
        currency_of_country=currency_of_country,
        holders=holders,
        cards=cards,
        merchants=merchants,
        calendar=Calendar(settings, countries),
        cp_segments=cp_segments,
        ecom_segments=ecom_segments,
        places=places,
    )


def _places(
    settings: Settings,
    cities: Cities,
    holders: Cardholders,
    merchants: Merchants,
    cp_segments: Segments,
    country_of_city: np.ndarray,
    n_groups: int,
) -> Places:
    geo = settings.geography
    cp = merchants.channel == CHANNEL_CARD_PRESENT
    merchant_cities = np.unique(merchants.city[cp])
    location_city = np.unique(np.concatenate([holders.home_city, merchant_cities]))
    row_of_city = np.full(len(cities), -1, dtype=np.int32)
    row_of_city[location_city] = np.arange(len(location_city), dtype=np.int32)

    q = unit_vectors(cities.lat[location_city], cities.lon[location_city])
    t = unit_vectors(cities.lat[merchant_cities], cities.lon[merchant_cities])
    near = neighbours(q, t, geo.neighbour_radius_km, _NEIGHBOURS_PER_CITY)
    decay = (
        np.exp(-near.distance_km / geo.distance_decay_km)
        * cities.population[merchant_cities[near.target]]
    )
    near_rows = Segments.from_lists(
        np.arange(len(location_city)),
        near.offsets[:-1],
        row_of_city[merchant_cities[near.target]],
        decay,
    )

    resolved = np.full((len(location_city), n_groups), -1, dtype=np.int64)
    for g in range(n_groups):
        own = cp_segments.lookup(location_city.astype(np.int64) * n_groups + g)
        if not np.any(cp_segments.keys % n_groups == g) or not np.any(cp_segments.keys >= 0):
            continue
        has_g = cp_segments.lookup(merchant_cities.astype(np.int64) * n_groups + g)
        for k in range(_NEIGHBOURS_PER_CITY):
            missing = own < 0
            if not missing.any():
                break
            pos = near.offsets[:-1] + k
            valid = missing & (pos < near.offsets[1:])
            cand = np.where(valid, has_g[near.target[np.minimum(pos, len(near.target) - 1)]], -1)
            own = np.where(valid & (cand >= 0), cand, own)
        todo = np.flatnonzero(own < 0)
        if len(todo):
            with_g = np.flatnonzero(has_g >= 0)
            if len(with_g):
                cos = q[todo] @ t[with_g].T
                own[todo] = has_g[with_g[np.argmax(cos, axis=1)]]
        resolved[:, g] = own

    domestic = Segments.build(
        country_of_city[merchant_cities].astype(np.int64), cities.population[merchant_cities]
    )
    domestic = domestic.map_items(row_of_city[merchant_cities])
    dest = settings.travel.destinations
    home = set(geo.home_countries)
    abroad = np.array(
        [cities.country[c] in dest and cities.country[c] not in home for c in merchant_cities]
    )
    if abroad.any():
        ab_cities = merchant_cities[abroad]
        pop = cities.population[ab_cities].astype(np.float64)
        ab_country = cities.country[ab_cities]
        totals = {c: pop[ab_country == c].sum() for c in set(ab_country.tolist())}
        w = np.array([dest[c] / totals[c] for c in ab_country.tolist()]) * pop
        abroad_cdf, abroad_rows = cdf(w), row_of_city[ab_cities]
    else:
        abroad_cdf, abroad_rows = np.ones(0), np.zeros(0, dtype=np.int32)
    return Places(
        row_of_city=row_of_city,
        location_city=location_city.astype(np.int32),
        near=near_rows,
        resolved=resolved,
        domestic=domestic,
        abroad_cdf=abroad_cdf,
        abroad_rows=abroad_rows.astype(np.int32),
    )
