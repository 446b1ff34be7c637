"""Trips: for a block of cardholders and a date, where is each of them?

A trip that starts on a date is drawn from the stream ``("travel", block, date)``
alone, so whether someone is away on a given day depends on the seed, the block and
the few dates before it, and never on where a run starts or how work is split.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from simulator.core.sampling import draw_categorical
from simulator.core.seeding import Streams
from simulator.settings.models import TravelConfig
from simulator.world.build import World

__all__ = ["Whereabouts"]


class Whereabouts:
    """Location rows of cardholders, day by day, with a small cache of trip draws.

    Args:
        world: The built world.
        travel: How often, how far and how long people travel.
        streams: The run's random streams.
        cache_size: Trip draws (block and date) kept.
    """

    def __init__(
        self, world: World, travel: TravelConfig, streams: Streams, cache_size: int = 4096
    ) -> None:
        self._world = world
        self._travel = travel
        self._streams = streams
        self._starts = lru_cache(maxsize=cache_size)(self._draw_starts)
        #: Each block's last answer: with slices shorter than a day (``slice_hours`` below 24,
        #: a live stream's), a day's slices ask for the same day, one after another.
        self._located: dict[int, tuple[dt.date, tuple[np.ndarray, np.ndarray]]] = {}

    def _draw_starts(self, block: int, day: dt.date) -> tuple[np.ndarray, ...]:
        """The trips that start on ``day`` in ``block``: who, how long, abroad, where."""
        world = self._world
        cfg = self._travel
        lo, hi = world.block_range(block)
        n = hi - lo
        rng = self._streams.generator("travel", block, day.toordinal())
        starts = rng.random(n) < cfg.trips_per_year / 365.0
        days = np.minimum(rng.geometric(1.0 / cfg.mean_days, n), cfg.max_days)
        abroad = rng.random(n) < cfg.international_share
        u_city = rng.random(n)
        # Only the few cardholders who leave that day are kept.
        who = np.flatnonzero(starts)
        return who, days[who], abroad[who], u_city[who]

    def locate(self, block: int, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """Location rows and a travelling flag for every cardholder of ``block`` on ``day``.

        Read-only arrays: the answer is kept for the block's next slice of the same day.
        """
        last = self._located.get(block)
        if last is not None and last[0] == day:
            return last[1]
        found = self._locate(block, day)
        for values in found:
            values.flags.writeable = False
        self._located[block] = (day, found)
        return found

    def _locate(self, block: int, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
        world = self._world
        places = world.places
        lo, hi = world.block_range(block)
        # Native-width rows: they index the places' tables slice after slice.
        home_row = places.row_of_city[world.holders.home_city[lo:hi]].astype(np.intp)
        row = home_row.copy()
        away = np.zeros(hi - lo, dtype=bool)
        trips = [
            self._starts(block, day - dt.timedelta(days=back))
            for back in range(self._travel.max_days)
        ]
        who, days, abroad, u_city = (np.concatenate([t[i] for t in trips]) for i in range(4))
        back = np.repeat(np.arange(len(trips)), [len(t[0]) for t in trips])
        active = days > back
        if not active.any():
            return row, away
        # Someone on several trips is where the most recent one took them.
        who, abroad, u_city, back = who[active], abroad[active], u_city[active], back[active]
        order = np.lexsort((back, who))
        first = np.ones(len(order), dtype=bool)
        first[1:] = who[order][1:] != who[order][:-1]
        latest = order[first]
        idx, abroad, u = who[latest], abroad[latest], u_city[latest]
        go_abroad = abroad & (len(places.abroad_rows) > 0)
        dest = home_row[idx].copy()
        if go_abroad.any():
            dest[go_abroad] = places.abroad_rows[draw_categorical(u[go_abroad], places.abroad_cdf)]
        # Where a trip at home may go: only the travellers' countries are looked up.
        domestic_seg = places.domestic.lookup(world.holder_country[lo + idx].astype(np.int64))
        home_trip = ~go_abroad & (domestic_seg >= 0)
        dest[home_trip] = places.domestic.pick(domestic_seg[home_trip], u[home_trip])
        row[idx] = dest
        away[idx] = dest != home_row[idx]
        return row, away
