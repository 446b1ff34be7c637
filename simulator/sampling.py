"""Vectorised sampling primitives shared by the catalog and the behaviour model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Segments",
    "apportion",
    "cdf",
    "draw_categorical",
    "lognormal_unit_mean",
    "segment_cdf",
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


def segment_cdf(weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative weights within consecutive segments, each ending at exactly 1.

    Segments begin at ``starts`` (sorted, first 0) and run to the next start. Weights
    are normalised per segment before summing, so tiny weights after large ones keep
    their precision; a segment whose weights are all zero becomes uniform.
    """
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0:
        return w
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.diff(np.append(starts, len(w)))
    seg = np.repeat(np.arange(len(starts)), sizes)
    totals = np.add.reduceat(w, starts)
    flat = totals <= 0
    w = np.where(flat[seg], 1.0, w)
    totals = np.where(flat, sizes.astype(np.float64), totals)
    within = np.cumsum(w / totals[seg])
    offset = np.append(0.0, within[starts[1:] - 1]) if len(starts) > 1 else np.zeros(1)
    within -= offset[seg]
    ends = np.append(starts[1:], len(w)) - 1
    within[ends] = 1.0
    return np.clip(within, 0.0, 1.0)


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


@dataclass(frozen=True)
class Segments:
    """Many small weighted choices packed into one array.

    Items are grouped into segments (e.g. the merchants of one category in one city);
    :meth:`pick` draws one item of a given segment for each query, proportionally to
    the item weights, with a single ``searchsorted`` over all segments.

    Attributes:
        keys: Sorted segment keys (any integer encoding of the grouping).
        starts: First position of each segment in :attr:`items`.
        ends: One past the last position of each segment.
        items: Item indices, grouped by segment.
        search: Segment ordinal plus the within-segment cumulative weight.
    """

    keys: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    items: np.ndarray
    search: np.ndarray

    @classmethod
    def build(cls, segment_key: np.ndarray, weights: np.ndarray) -> Segments:
        """Group items ``0..n-1`` by ``segment_key``; items with a negative key are left out.

        Items keep their index order inside a segment.
        """
        order = np.argsort(segment_key, kind="stable")
        order = order[segment_key[order] >= 0]
        sorted_keys = segment_key[order]
        keys, starts = np.unique(sorted_keys, return_index=True)
        ends = np.append(starts[1:], len(order))
        seg_of_item = np.repeat(np.arange(len(keys)), ends - starts)
        within = segment_cdf(weights[order], starts)
        return cls(
            keys=keys,
            starts=starts.astype(np.int64),
            ends=ends.astype(np.int64),
            items=order.astype(np.int32),
            search=seg_of_item + within,
        )

    def lookup(self, key: np.ndarray) -> np.ndarray:
        """Segment ordinal of each key, or -1 where no segment has that key."""
        pos = np.searchsorted(self.keys, key)
        pos = np.minimum(pos, len(self.keys) - 1)
        return np.where(self.keys[pos] == key, pos, -1)

    def pick(self, segment: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One item of each given segment ordinal, chosen by the uniforms ``u``."""
        pos = np.searchsorted(self.search, segment + u, side="right")
        pos = np.clip(pos, self.starts[segment], self.ends[segment] - 1)
        return self.items[pos]
