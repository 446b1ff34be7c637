"""The world a run simulates: places, catalogs and the lookup tables behaviour needs.

A :class:`World` is built once per process from the settings and the run's seed, and
is read-only afterwards, so worker processes can share it (forked) and every block
of cardholders sees the same merchants, calendars and neighbourhoods. It keeps neither
the settings nor the random streams: what the engine reads besides the world comes
with the run (:class:`~simulator.settings.run.RunSpec`, :class:`~simulator.settings.run.RunSeed`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simulator.core.sampling import Segments
from simulator.core.seeding import Streams
from simulator.errors import ReferenceDataError
from simulator.settings.models import AmountModel, MccGroupConfig, Settings
from simulator.settings.run import RunSeed
from simulator.world.cache import cached
from simulator.world.calendar import Calendar, Holidays, public_holidays
from simulator.world.catalog import (
    CHANNEL_CARD_PRESENT,
    Cardholders,
    Cards,
    Merchants,
    build_cardholders,
    build_merchants,
)
from simulator.world.money import step
from simulator.world.places import Places, build_places
from simulator.world.reference import (
    Cities,
    country_currency,
    load_cities,
    mcc_description,
    price_levels,
)

__all__ = ["AmountTable", "World", "build_world"]


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
class World:
    """Everything the behaviour model reads. Immutable once built.

    Attributes:
        seed: The root seed the world was drawn from (a run with another is refused).
        block_size: Cardholders per block, the unit of seeding and parallel work.
        group_profiles: Category shares of spending at home (row 0) and away (row 1).
        group_ecommerce_share: Per category, the share of transactions online.
        card_types: Names of the ``Cards.card_type`` codes.
        card_networks: Names of the ``Cards.network`` codes.
        price_level: Per country, its price level relative to the United States (1.0).
    """

    seed: int
    block_size: int
    cities: Cities
    countries: list[str]
    currencies: list[str]
    country_of_city: np.ndarray
    timezones: list[str]
    tz_of_city: np.ndarray
    mcc_codes: list[str]
    mcc_group: np.ndarray
    group_names: list[str]
    group_profiles: np.ndarray
    group_ecommerce_share: np.ndarray
    card_types: list[str]
    card_networks: list[str]
    amounts: AmountTable
    currency_scale: np.ndarray
    currency_step: np.ndarray
    currency_of_country: np.ndarray
    price_level: np.ndarray
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
        return -(-len(self.holders) // self.block_size)

    def block_range(self, block: int) -> tuple[int, int]:
        """First and one-past-last cardholder index of a block."""
        size = self.block_size
        return block * size, min((block + 1) * size, len(self.holders))

    @cached_property
    def holder_country(self) -> np.ndarray:
        """Country index of each cardholder's home."""
        return self.country_of_city[self.holders.home_city]

    @cached_property
    def holder_price_level(self) -> np.ndarray:
        """Price level of each cardholder's home country (see :attr:`price_level`)."""
        return self.price_level[self.holder_country]

    @cached_property
    def holder_tz(self) -> np.ndarray:
        """Time zone index of each cardholder's home."""
        return self.tz_of_city[self.holders.home_city]

    @cached_property
    def merchant_country(self) -> np.ndarray:
        """Country index of each merchant's city."""
        return self.country_of_city[self.merchants.city]

    @cached_property
    def merchant_currency(self) -> np.ndarray:
        """Currency index of each merchant (its country's; see :attr:`currencies`)."""
        return self.currency_of_country[self.merchant_country]

    @cached_property
    def merchant_per_usd(self) -> np.ndarray:
        """Units of each merchant's currency per US dollar."""
        return self.currency_scale[self.merchant_currency]

    @cached_property
    def merchant_price_level(self) -> np.ndarray:
        """Price level of each merchant's country (see :attr:`price_level`)."""
        return self.price_level[self.merchant_country]

    @cached_property
    def merchant_card_present(self) -> np.ndarray:
        """Whether each merchant sells card present (else online)."""
        return self.merchants.channel == CHANNEL_CARD_PRESENT

    @cached_property
    def merchant_step(self) -> np.ndarray:
        """Smallest amount of each merchant's currency, in hundredths (see ``money.step``)."""
        return self.currency_step[self.merchant_currency]


def _currency_steps(currencies: list[str], countries: list[str]) -> np.ndarray:
    """Each currency's smallest amount in hundredths, naming the countries of one refused."""
    steps = []
    for currency in currencies:
        try:
            steps.append(step(currency))
        except ReferenceDataError as exc:
            users = [c for c in countries if country_currency(c) == currency]
            raise ReferenceDataError(
                f"{exc}; it is the currency of {', '.join(users)} in the gazetteer "
                "(geography.home_countries, travel.destinations)"
            ) from None
    return np.array(steps, dtype=np.int64)


def _brand_words() -> list[str]:
    text = (
        importlib.resources.files("simulator")
        .joinpath("data/brand_syllables.txt")
        .read_text("utf-8")
    )
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _mcc_table(
    mcc_groups: Mapping[str, MccGroupConfig],
) -> tuple[list[str], np.ndarray, list[AmountModel]]:
    codes: list[str] = []
    group: list[int] = []
    models: list[AmountModel] = []
    for g, (name, cfg) in enumerate(mcc_groups.items()):
        for code in cfg.mccs:
            try:
                mcc_description(code)
            except ReferenceDataError as exc:
                raise ReferenceDataError(f"mcc_groups.{name}.mccs: {exc}") from None
            codes.append(code)
            group.append(g)
            models.append(cfg.amount_by_mcc.get(code, cfg.amount))
    return codes, np.array(group, dtype=np.int16), models


def _group_profiles(mcc_groups: Mapping[str, MccGroupConfig]) -> np.ndarray:
    """Category shares of spending at home and, boosted by ``travel_boost``, away."""
    share = np.array([g.share for g in mcc_groups.values()])
    boost = np.array([g.travel_boost for g in mcc_groups.values()])
    return np.stack([share / share.sum(), share * boost / (share * boost).sum()])


def _catalogs(
    settings: Settings, streams: Streams, cities: Cities, mcc_codes: list[str]
) -> tuple[Cardholders, Cards, Merchants]:
    """Cardholders and their cards, then merchants where the cardholders live."""
    holders, cards = build_cardholders(settings.population, settings.geography, streams, cities)
    merchants = build_merchants(
        settings.merchants,
        settings.mcc_groups,
        settings.geography,
        settings.travel.destinations,
        streams,
        cities,
        holders.home_city,
        mcc_codes,
        _brand_words(),
    )
    return holders, cards, merchants


def build_world(settings: Settings, seed: RunSeed) -> World:
    """The world for a run: read from ``cache_dir`` if it was built before, else built.

    Raises:
        ReferenceDataError: For settings the reference data cannot satisfy.
        ValueError: If ``seed`` was not built from these settings.
    """
    settings = seed.pin(settings)
    return cached(settings.cache_dir, settings.config_hash(), lambda: _build(settings, seed))


def _run_holidays(settings: Settings, countries: list[str]) -> Holidays:
    """The public holidays of the run's years (local dates reach a day past either end).

    They depend on nothing but the countries and the years, not the seed: kept in the
    cache for every seed's world (a fresh-seed run does not import ``holidays``).
    """
    first = settings.start_date - dt.timedelta(days=1)
    last = settings.start_date + dt.timedelta(days=settings.days)
    years = list(range(first.year, last.year + 1))
    key = hashlib.sha256(f"{','.join(countries)}\0{years}".encode()).hexdigest()
    return cached(settings.cache_dir, key, lambda: public_holidays(countries, years), "holidays")


def _build(settings: Settings, seed: RunSeed) -> World:
    """Build the world for a run (a cold build)."""
    home = settings.geography.home_countries
    countries = sorted(set(home) | set(settings.travel.destinations))
    currencies = sorted({country_currency(c) for c in countries})
    missing = [c for c in currencies if c not in settings.currency_per_usd]
    if missing:
        raise ReferenceDataError(
            f"currency_per_usd: no rate for {', '.join(missing)} "
            f"(needed by the countries {', '.join(countries)})"
        )
    level = price_levels(countries, settings.travel.price_levels)
    cities = load_cities(
        frozenset(countries), settings.geography.min_city_population, settings.cache_dir
    )
    country_index = {c: i for i, c in enumerate(countries)}
    country_of_city = np.array([country_index[c] for c in cities.country.tolist()], dtype=np.int16)
    timezones = sorted(set(cities.timezone.tolist()))
    tz_index = {z: i for i, z in enumerate(timezones)}
    tz_of_city = np.array([tz_index[z] for z in cities.timezone.tolist()], dtype=np.int32)
    mcc_codes, mcc_group, models = _mcc_table(settings.mcc_groups)
    currency_index = {c: i for i, c in enumerate(currencies)}
    currency_of_country = np.array(
        [currency_index[country_currency(c)] for c in countries], dtype=np.int16
    )
    currency_scale = np.array([settings.currency_per_usd[c] for c in currencies])
    currency_step = _currency_steps(currencies, countries)

    holders, cards, merchants = _catalogs(settings, seed.streams, cities, mcc_codes)
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
    places = build_places(
        settings.geography,
        settings.travel.destinations,
        cities,
        holders,
        merchants,
        cp_segments,
        country_of_city,
        n_groups,
    )
    cards_cfg = settings.population.cards
    return World(
        seed=seed.entropy,
        block_size=settings.population.block_size,
        cities=cities,
        countries=countries,
        currencies=currencies,
        country_of_city=country_of_city,
        timezones=timezones,
        tz_of_city=tz_of_city,
        mcc_codes=mcc_codes,
        mcc_group=mcc_group,
        group_names=list(settings.mcc_groups),
        group_profiles=_group_profiles(settings.mcc_groups),
        group_ecommerce_share=np.array([g.ecommerce_share for g in settings.mcc_groups.values()]),
        card_types=list(cards_cfg.types),
        card_networks=list(cards_cfg.networks),
        amounts=AmountTable.build(models),
        currency_scale=currency_scale,
        currency_step=currency_step,
        currency_of_country=currency_of_country,
        price_level=level,
        holders=holders,
        cards=cards,
        merchants=merchants,
        calendar=Calendar(
            settings.calendar, settings.mcc_groups, countries, _run_holidays(settings, countries)
        ),
        cp_segments=cp_segments,
        ecom_segments=ecom_segments,
        places=places,
    )
