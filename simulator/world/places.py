"""Where card-present spending can happen, and how to pick a merchant there.

Locations are the cities where cardholders live or merchants trade. Each has its
neighbouring merchant cities (nearest first, weighted by population and distance
decay) and, per category, the segment of card-present merchants to use: its own, or
the nearest city's that has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulator.core.geo import neighbours, unit_vectors
from simulator.core.sampling import Segments
from simulator.settings.models import GeographyConfig
from simulator.world.catalog import CHANNEL_CARD_PRESENT, Cardholders, Merchants
from simulator.world.reference import Cities, city_cdf

__all__ = ["Places", "build_places"]

#: Neighbour cities kept per location (the nearest are tried first).
_NEIGHBOURS_PER_CITY = 24


@dataclass(frozen=True)
class Places:
    """Where card-present spending can happen, and how to pick a merchant there.

    Attributes:
        row_of_city: City index to location row (-1 for cities no one can be in).
        location_city: City index of each location row.
        near: Per location row, the location rows of its neighbouring merchant cities
            (nearest first, weighted by population and distance decay).
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


def build_places(
    geo: GeographyConfig,
    destinations: Mapping[str, float],
    cities: Cities,
    holders: Cardholders,
    merchants: Merchants,
    cp_segments: Segments,
    country_of_city: np.ndarray,
    n_groups: int,
) -> Places:
    """The locations of a world and their neighbourhoods, by category.

    Args:
        geo: Home countries and the neighbourhood radius and decay.
        destinations: Travel destinations by country (the ones abroad get trips).
        cities: The gazetteer.
        holders: The cardholders (their home cities are locations).
        merchants: The merchants (their card-present cities are locations).
        cp_segments: Card-present merchants by city and category.
        country_of_city: Country index of each city.
        n_groups: Number of categories.
    """
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
    foreign = {c: w for c, w in destinations.items() if c not in geo.home_countries}
    abroad_cities, abroad_cdf = city_cdf(cities, foreign, among=merchant_cities)
    abroad_rows = row_of_city[abroad_cities]
    return Places(
        row_of_city=row_of_city,
        location_city=location_city.astype(np.int32),
        near=near_rows,
        resolved=resolved,
        domestic=domestic,
        abroad_cdf=abroad_cdf,
        abroad_rows=abroad_rows.astype(np.int32),
    )
