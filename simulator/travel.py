"""Trips: for a block of cardholders and a date, where is each of them?

A trip that starts on a date is drawn from the stream ``("travel", block, date)``
alone, so whether someone is away on a given day depends on the seed, the block and
the few dates before it, and never on where a run starts or how work is split.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

import numpy as np

from simulator.sampling import draw_categorical
from simulator.world import World

__all__ = ["Whereabouts"]


class Whereabouts:
    """Location rows of cardholders, day by day, with a small cache of trip draws."""

    def __init__(self, world: World, cache_size: int = 4096) -> None:
        self._world = world
        self._cache: OrderedDict[tuple[int, int], tuple[np.ndarray, ...]] = OrderedDict()
        self._cache_size = cache_size

    def _starts(self, block: int, day: dt.date) -> tuple[np.ndarray, ...]:
        key = (block, day.toordinal())
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        world = self._world
        cfg = world.settings.travel
        lo, hi = world.block_range(block)
        n = hi - lo
        rng = world.streams.generator("travel", block, day.toordinal())
        starts = rng.random(n) < cfg.trips_per_year / 365.0
        days = np.minimum(rng.geometric(1.0 / cfg.mean_days, n), cfg.max_days)
        abroad = rng.random(n) < cfg.international_share
        u_city = rng.random(n)
        drawn = (starts, days, abroad, u_city)
        self._cache[key] = drawn
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return drawn

    def locate(self, block: int, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """Location rows and a travelling flag for every cardholder of ``block`` on ``day``."""
        world = self._world
        places = world.places
        lo, hi = world.block_range(block)
        home_row = places.row_of_city[world.holders.home_city[lo:hi]]
        row = home_row.copy()
        away = np.zeros(hi - lo, dtype=bool)
        country = world.holder_country[lo:hi].astype(np.int64)
        domestic_seg = places.domestic.lookup(country)
        for back in range(world.settings.travel.max_days - 1, -1, -1):
            starts, days, abroad, u_city = self._starts(block, day - dt.timedelta(days=back))
            active = starts & (days > back)
            if not active.any():
                continue
            idx = np.flatnonzero(active)
            go_abroad = abroad[idx] & (len(places.abroad_rows) > 0)
            dest = np.empty(len(idx), dtype=np.int32)
            if go_abroad.any():
                dest[go_abroad] = places.abroad_rows[draw_categorical(u_city[idx][go_abroad], places.abroad_cdf)]
            home_trip = ~go_abroad & (domestic_seg[idx] >= 0)
            dest[home_trip] = places.domestic.pick(domestic_seg[idx][home_trip], u_city[idx][home_trip])
            stay = ~go_abroad & ~home_trip
            dest[stay] = home_row[idx][stay]
            row[idx] = dest
            away[idx] = dest != home_row[idx]
        return row, away
