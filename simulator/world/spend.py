"""What a purchase costs: the per-MCC spend model, in each merchant's currency.

Amounts are hundredths of the currency unit, in whole steps of the currency's ISO 4217
minor unit (see :mod:`simulator.world.money`).
"""

from __future__ import annotations

import numpy as np

from simulator.world.build import World
from simulator.world.money import to_minor

__all__ = ["amounts_minor"]


def amounts_minor(
    world: World, rng: np.random.Generator, holder: np.ndarray, merchant: np.ndarray
) -> np.ndarray:
    """Amounts (hundredths of each merchant's currency) from the per-MCC spend model."""
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
    return to_minor(usd, world.merchant_per_usd[merchant], world.merchant_step[merchant])
