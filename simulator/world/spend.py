"""What a purchase costs: the per-MCC spend model, in each merchant's currency."""

from __future__ import annotations

import numpy as np

from simulator.world.build import World

__all__ = ["amounts_minor", "to_minor"]


def to_minor(usd: np.ndarray, per_usd: np.ndarray) -> np.ndarray:
    """US-dollar amounts in minor units at ``per_usd`` units a dollar (at least one unit)."""
    return np.maximum(np.rint(usd * per_usd * 100.0), 1).astype(np.int64)


def amounts_minor(
    world: World, rng: np.random.Generator, holder: np.ndarray, merchant: np.ndarray
) -> np.ndarray:
    """Amounts (minor units of each merchant's currency) from the per-MCC spend model."""
    table = world.amounts
    n = len(holder)
    mcc = world.merchants.mcc[merchant]
    z = rng.standard_normal(n)
    u_point, u_which = rng.random(n), rng.random(n)
    usd = np.exp(table.log_median[mcc] + table.sigma[mcc] * z)
    usd *= world.holders.spend[holder] * world.merchants.price[merchant]
    np.clip(usd, table.minimum[mcc], table.maximum[mcc], out=usd)
    at_point = np.flatnonzero(u_point < table.point_share[mcc])
    m = mcc[at_point]
    which = (u_which[at_point, None] >= table.point_cdf[m]).sum(axis=1)
    usd[at_point] = table.points[m, np.minimum(which, table.points.shape[1] - 1)]
    return to_minor(usd, world.merchant_per_usd[merchant])
