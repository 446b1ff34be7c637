"""Vectorised sampling primitives shared by the catalog and the behaviour model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Segments",
    "alias_tables",
    "apportion",
    "cdf",
    "draw_categorical",
    "log_uniform",
    "lognormal_unit_mean",
    "zipf_weights",
]


def cdf(weights: np.ndarray | list[float]) -> np.ndarray:
    """The normalised cumulative distribution of non-negative weights (last entry exactly 1)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0 or np.any(w < 0):
        raise ValueError("weights must be non-negative with a positive total")
    out = np.cumsum(w) / total
    out[-1] = 1.0
    return out


def draw_categorical(u: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Map uniforms in [0, 1) to category indices through a cumulative distribution."""
    return np.searchsorted(cumulative, u, side="right").astype(np.int32)


def apportion(total: int, weights: np.ndarray | list[float]) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Deterministic: ties go to the earlier index.
    """
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    parts = np.floor(exact).astype(np.int64)
    short = total - int(parts.sum())
    if short:
        order = np.argsort(-(exact - parts), kind="stable")
        parts[order[:short]] += 1
    return parts


def zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Popularity weights ``rank ** -exponent`` with ranks shuffled over ``n`` items."""
    ranks = rng.permutation(n) + 1
    return ranks.astype(np.float64) ** -exponent


def lognormal_unit_mean(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """Log-normal multipliers with mean 1 and log-sd ``sigma``."""
    return rng.lognormal(-0.5 * sigma * sigma, sigma, n) if sigma > 0 else np.ones(n)


def log_uniform(rng: np.random.Generator, band: tuple[float, float], n: int) -> np.ndarray:
    """``n`` values whose logarithm is uniform between the logarithms of ``band``."""
    lo, hi = np.log(band[0]), np.log(band[1])
    return np.exp(lo + (hi - lo) * rng.random(n))


def alias_tables(weights: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables for consecutive segments of weights.

    Returns ``(prob, alias)``: for slot ``j`` of a segment, keep ``j`` with probability
    ``prob[j]``, else take position ``alias[j]`` (a global position in the same segment).
    A segment whose weights are all zero is treated as uniform.
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    prob = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    bounds = np.append(np.asarray(starts, dtype=np.int64), n)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        size = hi - lo
        if size <= 1:
            continue
        seg = w[lo:hi]
        total = seg.sum()
        scaled = (seg / total * size) if total > 0 else np.ones(size)
        small = [i for i in range(size) if scaled[i] < 1.0]
        large = [i for i in range(size) if scaled[i] >= 1.0]
        while small and large:
            s_i, l_i = small.pop(), large[-1]
            prob[lo + s_i] = scaled[s_i]
            alias[lo + s_i] = lo + l_i
            scaled[l_i] -= 1.0 - scaled[s_i]
            if scaled[l_i] < 1.0:
                small.append(large.pop())
        # Leftovers are 1 up to rounding.
        for i in small + large:
            prob[lo + i] = 1.0
    return prob, alias


@dataclass(frozen=True)
class Segments:
    """Many small weighted choices packed into flat arrays.

    Items are grouped into segments (e.g. the merchants of one category in one city);
    :meth:`pick` draws one item of a given segment for each query, proportionally to
    the item weights, in constant time per query (alias method, no search).

    Attributes:
        keys: Sorted segment keys (any integer encoding of the grouping).
        starts: First position of each segment in :attr:`items`.
        ends: One past the last position of each segment.
        items: Item values (e.g. indices), grouped by segment.
        prob: Alias-method probability of keeping each position.
        alias: Alias-method fallback position of each position.
    """

    keys: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    items: np.ndarray
    prob: np.ndarray
    alias: np.ndarray

    @classmethod
    def build(cls, segment_key: np.ndarray, weights: np.ndarray) -> Segments:
        """Group items ``0..n-1`` by ``segment_key``; items with a negative key are left out.

        Items keep their index order inside a segment.
        """
        order = np.argsort(segment_key, kind="stable")
        order = order[segment_key[order] >= 0]
        keys, starts = np.unique(segment_key[order], return_index=True)
        return cls.from_lists(keys, starts, order.astype(np.int32), np.asarray(weights)[order])

    @classmethod
    def from_lists(
        cls, keys: np.ndarray, starts: np.ndarray, items: np.ndarray, weights: np.ndarray
    ) -> Segments:
        """Segments from consecutive lists: segment ``i`` is ``items[starts[i]:starts[i+1]]``."""
        starts = np.asarray(starts, dtype=np.int64)
        prob, alias = alias_tables(weights, starts)
        return cls(
            keys=np.asarray(keys),
            starts=starts,
            ends=np.append(starts[1:], len(items)).astype(np.int64),
            items=items,
            prob=prob,
            alias=alias,
        )

    def map_items(self, values: np.ndarray) -> Segments:
        """The same segments and weights with each item replaced by ``values[item]``."""
        return Segments(
            self.keys, self.starts, self.ends, values[self.items], self.prob, self.alias
        )

    def lookup(self, key: np.ndarray) -> np.ndarray:
        """Segment ordinal of each key, or -1 where no segment has that key."""
        pos = np.searchsorted(self.keys, key)
        pos = np.minimum(pos, len(self.keys) - 1)
        return np.where(self.keys[pos] == key, pos, -1)

    def pick(self, segment: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One item of each given segment ordinal, chosen by the uniforms ``u`` in [0, 1).

        The integer part of ``u * size`` picks a slot and its fraction decides between
        the slot and its alias, so one uniform serves both steps.
        """
        start = self.starts[segment]
        x = u * (self.ends[segment] - start)
        slot = np.minimum(x.astype(np.int64), self.ends[segment] - start - 1)
        pos = start + slot
        keep = (x - slot) < self.prob[pos]
        return self.items[np.where(keep, pos, self.alias[pos])]
