"""What a scenario may read while planning: victims, their cards, merchants, amounts.

A :class:`CampaignContext` wraps the read-only :class:`~simulator.world.build.World` and the
planner's card registry (which card a cardholder holds at a given time, after blocks
and reissues). Every method that draws takes the caller's generator, so a campaign's
randomness stays in its own stream.
"""

from __future__ import annotations

import copy
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache, lru_cache

import numpy as np

from runtime.units import US_PER_HOUR, from_us
from simulator.core.geo import haversine_km
from simulator.core.sampling import cdf, draw_categorical, log_uniform
from simulator.settings.fraud import Delay, Hotspot
from simulator.world.build import World
from simulator.world.money import quantise, to_minor
from simulator.world.spend import amounts_minor

#: Far-city candidate sets and distance rows kept (each a few thousand cities' worth).
_FAR_KEPT = 1024

__all__ = ["CampaignContext", "delays_us", "draw_delays_us"]


#: The active card of a card index at an instant (follows reissues).
CardResolver = Callable[[int, int], int]
#: A merchant pool: near a city (None: online), of some MCCs (None: any), by popularity.
_PoolKey = tuple[int | None, tuple[str, ...] | None, bool]


def draw_delays_us(rng: np.random.Generator, delay: Delay, n: int) -> np.ndarray:
    """``n`` log-normal delays in microseconds, capped at ``delay.max_hours``."""
    return delays_us(delay, rng.standard_normal(n))


def delays_us(delay: Delay, normal: np.ndarray) -> np.ndarray:
    """Log-normal delays in microseconds from standard normal draws, capped at ``max_hours``."""
    hours = np.minimum(delay.median_hours * np.exp(delay.sigma * normal), delay.max_hours)
    return (hours * US_PER_HOUR).astype(np.int64)


class CampaignContext:
    """The world as scenarios see it.

    Args:
        world: The built world.
        hotspots: Cash-out hotspots by name.
        resolve_card: The planner's view of which card replaced which, and when.
        entry_modes: The card-present entry modes, in index order.
    """

    def __init__(
        self,
        world: World,
        hotspots: Mapping[str, Hotspot],
        resolve_card: CardResolver,
        entry_modes: Sequence[str],
    ) -> None:
        self.world = world
        self._resolve = resolve_card
        m = world.merchants
        self._m_city = m.city
        self._cp = world.merchant_card_present
        self._mcc_code = np.array([int(c) for c in world.mcc_codes], dtype=np.int64)[m.mcc]
        self._holders = range(len(world.holders))
        self._holder_cdf = cdf(world.holders.rate)
        cp_idx = np.flatnonzero(self._cp)
        order = np.argsort(m.city[cp_idx], kind="stable")
        self._cp_by_city = cp_idx[order]
        self._cp_city_sorted = m.city[self._cp_by_city]
        self._cp_cities = np.unique(self._cp_city_sorted)
        by_home = np.argsort(world.holders.home_city, kind="stable")
        self._holders_by_city = by_home
        self._holder_city_sorted = world.holders.home_city[by_home]
        self._hotspots = [h for h in hotspots.values() if h.weight > 0]
        self._hotspot_cdf = cdf([h.weight for h in self._hotspots])
        self.entry_modes = {name: i for i, name in enumerate(entry_modes)}
        self.ecommerce_mode = len(entry_modes)
        # Shared by the blocks' copies (:meth:`among`): pools and far cities by key.
        self._pools: dict[_PoolKey, tuple[np.ndarray, np.ndarray]] = {}
        # Bounded: the minimum distance of a far city is drawn per campaign, so a stream
        # kept an entry a campaign for as long as it ran (0.25 MB a simulated day at
        # 100k cardholders, in proportion to the population). Misses recompute them.
        self._far_cities = lru_cache(maxsize=_FAR_KEPT)(self._far_cities_of)
        self._km_from = lru_cache(maxsize=_FAR_KEPT)(self._km_from_of)
        self._near_merchants: dict[int, np.ndarray] = {}
        self._mcc_sets: dict[tuple[str, ...], np.ndarray] = {}

    def among(self, holders: range, resolve_card: CardResolver | None = None) -> CampaignContext:
        """This context with victims drawn from ``holders`` only (one block's).

        The merchants, their pools and every table of the world are shared, not copied.
        """
        ctx = copy.copy(self)
        ctx._holders = holders
        ctx._holder_cdf = cdf(self.world.holders.rate[holders.start : holders.stop])
        home = self.world.holders.home_city[holders.start : holders.stop]
        by_home = np.argsort(home, kind="stable")
        ctx._holders_by_city = holders.start + by_home
        ctx._holder_city_sorted = home[by_home]
        if resolve_card is not None:
            ctx._resolve = resolve_card
        return ctx

    # Victims and cards -----------------------------------------------------------

    def victims(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` cardholders, more active ones more likely (their cards are used more)."""
        return self._holders.start + draw_categorical(rng.random(k), self._holder_cdf)

    def neighbours_of(self, city: int) -> list[int]:
        """The city and its neighbouring merchant cities, nearest first."""
        places = self.world.places
        row = int(places.row_of_city[city])
        cities = [city]
        if row >= 0:
            seg = int(places.near.lookup(np.array([row]))[0])
            if seg >= 0:
                rows = places.near.items[places.near.starts[seg] : places.near.ends[seg]]
                cities += places.location_city[rows].tolist()
        return list(dict.fromkeys(cities))

    def residents(self, rng: np.random.Generator, cities: list[int], k: int) -> np.ndarray:
        """Up to ``k`` distinct cardholders living in ``cities`` (fewer if fewer live there)."""
        # Search with the array's own dtype: a Python int would convert the whole array.
        c = np.asarray(cities, dtype=self._holder_city_sorted.dtype)
        lo = np.searchsorted(self._holder_city_sorted, c, side="left")
        hi = np.searchsorted(self._holder_city_sorted, c, side="right")
        parts = [self._holders_by_city[a:b] for a, b in zip(lo, hi, strict=True)]
        pool = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if len(pool) <= k:
            return pool
        return rng.choice(pool, size=k, replace=False)

    def card_of(self, holder: int, at_us: int, slot: int = 0) -> int:
        """The card the cardholder holds in ``slot`` (0: primary) at ``at_us``, after reissues."""
        h = self.world.holders
        slot = min(slot, int(h.card_count[holder]) - 1)
        return self._resolve(int(h.card_offset[holder]) + slot, at_us)

    def home_city(self, holder: int) -> int:
        """City index of the cardholder's home."""
        return int(self.world.holders.home_city[holder])

    # Places and time ---------------------------------------------------------------

    def distance_km(self, city_a: int, city_b: int) -> float:
        """Great-circle distance between two cities."""
        c = self.world.cities
        return _km(c.lat, c.lon, city_a, city_b)

    def merchant_distance_km(self, a: int, b: int) -> float:
        """Distance between two card-present merchants' shops."""
        m = self.world.merchants
        return _km(m.lat, m.lon, a, b)

    def far_city(self, rng: np.random.Generator, from_city: int, min_km: float) -> int:
        """A merchant city at least ``min_km`` away (by population), else the farthest one."""
        cities, cum = self._far_cities(from_city, min_km)
        if cum is None:
            return int(cities[0])
        return int(cities[draw_categorical(rng.random(1), cum)[0]])

    def _far_cities_of(self, from_city: int, min_km: float) -> tuple[np.ndarray, np.ndarray | None]:
        """The candidates of :meth:`far_city` and their CDF (None: the farthest alone)."""
        cities = self._cp_cities
        c = self.world.cities
        km = self._km_from(from_city)
        far = np.flatnonzero(km >= min_km)
        if not len(far):
            return cities[[int(np.argmax(km))]], None
        return cities[far], cdf(c.population[cities[far]].astype(np.float64))

    def _km_from_of(self, from_city: int) -> np.ndarray:
        """Distances from ``from_city`` to every card-present merchant city."""
        cities = self._cp_cities
        c = self.world.cities
        n = len(cities)
        return haversine_km(
            np.full(n, c.lat[from_city]), np.full(n, c.lon[from_city]), c.lat[cities], c.lon[cities]
        )

    def at_local_hour(
        self, rng: np.random.Generator, after_us: int, city: int, weights: list[float] | None
    ) -> int:
        """An instant within 24 h after ``after_us``, its local hour in ``city`` by ``weights``."""
        if weights is None:
            return after_us + int(rng.random() * 24 * US_PER_HOUR)
        offset_h = _utc_offset_hours(str(self.world.cities.timezone[city]), after_us)
        local = (after_us / US_PER_HOUR + offset_h) % 24
        hour = int(np.searchsorted(cdf(weights), rng.random(), side="right"))
        wait = ((min(hour, 23) - local) % 24 + rng.random()) % 24
        return after_us + int(wait * US_PER_HOUR)

    # Merchants -----------------------------------------------------------------------

    def _merchants_in(self, cities: list[int]) -> np.ndarray:
        c = np.asarray(cities, dtype=self._cp_city_sorted.dtype)
        lo = np.searchsorted(self._cp_city_sorted, c, side="left")
        hi = np.searchsorted(self._cp_city_sorted, c, side="right")
        if len(c) == 1:
            return self._cp_by_city[int(lo[0]) : int(hi[0])]
        return np.concatenate([self._cp_by_city[a:b] for a, b in zip(lo, hi, strict=True)])

    def _near(self, city: int) -> np.ndarray:
        """The card-present merchants in or near ``city`` (kept: the pools of a city share them)."""
        found = self._near_merchants.get(city)
        if found is None:
            found = self._near_merchants[city] = self._merchants_in(self.neighbours_of(city))
        return found

    def _mcc_wanted(self, mccs: tuple[str, ...]) -> np.ndarray:
        """Whether each MCC is one of ``mccs``, indexed by the code."""
        found = self._mcc_sets.get(mccs)
        if found is None:
            codes = [int(m) for m in mccs]
            found = np.zeros(max(10_000, *codes, int(self._mcc_code.max())) + 1, dtype=bool)
            found[codes] = True
            self._mcc_sets[mccs] = found
        return found

    def _pool(self, key: _PoolKey) -> tuple[np.ndarray, np.ndarray]:
        """Merchants (card present near a city, or online) of some MCCs, with their CDF."""
        cached = self._pools.get(key)
        if cached is not None:
            return cached
        city, mccs, by_popularity = key
        pool = self._near(city) if city is not None else np.flatnonzero(~self._cp)
        if mccs is not None and pool.size:
            wanted = self._mcc_wanted(mccs)[self._mcc_code[pool]]
            if wanted.any():
                pool = pool[wanted]
        if not pool.size:
            where = "online" if city is None else f"near city {city}"
            raise LookupError(f"no merchant {where}")
        weight = self.world.merchants.weight[pool] if by_popularity else np.ones(len(pool))
        cached = (pool, cdf(weight))
        self._pools[key] = cached
        return cached

    def _pick(self, rng: np.random.Generator, key: _PoolKey, k: int) -> np.ndarray:
        pool, cum = self._pool(key)
        return pool[draw_categorical(rng.random(k), cum)]

    def nearby_merchants(
        self,
        rng: np.random.Generator,
        city: int,
        k: int,
        mccs: Iterable[str] | None = None,
        *,
        by_popularity: bool = True,
    ) -> np.ndarray:
        """``k`` card-present merchants in or near ``city``, optionally by MCC.

        By popularity, as cardholders choose; ``by_popularity=False`` makes every one
        equally likely, as a fraudster who does not shop where the victim does, so most
        picks are new to the card. Falls back to any nearby merchant when none of those
        MCCs is near.
        """
        return self._pick(rng, (city, _mcc_key(mccs), by_popularity), k)

    def online_merchants(
        self,
        rng: np.random.Generator,
        k: int,
        mccs: Iterable[str] | None = None,
        *,
        by_popularity: bool = True,
    ) -> np.ndarray:
        """``k`` e-commerce merchants, optionally of some MCCs (``by_popularity`` as above)."""
        return self._pick(rng, (None, _mcc_key(mccs), by_popularity), k)

    # Amounts -------------------------------------------------------------------------

    def to_minor(self, usd: np.ndarray, merchant: np.ndarray) -> np.ndarray:
        """US-dollar amounts in hundredths of each merchant's currency.

        In whole steps of its ISO 4217 minor unit (whole yen, cents), at least one step.
        """
        w = self.world
        return to_minor(np.asarray(usd), w.merchant_per_usd[merchant], w.merchant_step[merchant])

    def quantise(self, amount: np.ndarray, merchant: np.ndarray) -> np.ndarray:
        """Amounts (hundredths) rounded to whole steps of each merchant's currency."""
        return quantise(amount, self.world.merchant_step[merchant])

    def ordinary_amounts(
        self, rng: np.random.Generator, holder: np.ndarray, merchant: np.ndarray
    ) -> np.ndarray:
        """Amounts drawn from the same per-MCC model as genuine spending (hundredths)."""
        return amounts_minor(self.world, rng, holder, merchant)

    def hotspot(
        self, rng: np.random.Generator, k: int, city: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``k`` cash-out purchases: merchants of a hotspot's MCCs and amounts in its band.

        Online merchants when ``city`` is None, else card-present ones near ``city``;
        each merchant of a hotspot is equally likely (where goods resell, not where the
        victim shops), so most cash-outs are at a merchant new to the card. Returns
        merchants and amounts in hundredths of their currencies.
        """
        which = draw_categorical(rng.random(k), self._hotspot_cdf)
        merchant = np.empty(k, dtype=np.int64)
        usd = np.empty(k)
        for h in np.unique(which).tolist():
            spot = self._hotspots[h]
            rows = np.flatnonzero(which == h)
            if city is None:
                merchant[rows] = self.online_merchants(
                    rng, len(rows), spot.mccs, by_popularity=False
                )
            else:
                merchant[rows] = self.nearby_merchants(
                    rng, city, len(rows), spot.mccs, by_popularity=False
                )
            usd[rows] = log_uniform(rng, spot.amount_usd, len(rows))
        return merchant, self.to_minor(np.round(usd, 2), merchant)


def _mcc_key(mccs: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if mccs is None else tuple(sorted(mccs))


def _km(lat: np.ndarray, lon: np.ndarray, a: int, b: int) -> float:
    """Great-circle distance between points ``a`` and ``b`` of coordinate arrays."""
    return float(haversine_km(lat[[a]], lon[[a]], lat[[b]], lon[[b]])[0])


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _utc_offset_hours(zone: str, at_us: int) -> float:
    offset = from_us(at_us).astimezone(_zone(zone)).utcoffset()
    return offset.total_seconds() / 3600.0 if offset is not None else 0.0
