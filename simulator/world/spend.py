"""What a purchase costs: the per-MCC spend model, in each merchant's currency.

The spend model is the cardholder's at home. A card-present purchase in another
country costs the same basket at that country's prices: the amount scales by the
visited country's price level over the home country's (World Bank PA.NUS.PPPC.RF,
``simulator/data/price_levels.csv``), then converts at the market rate. Online
purchases from foreign merchants keep home prices: what is bought across borders
online is mostly traded goods, priced near world prices.

Amounts are hundredths of the currency unit, in whole steps of the currency's ISO 4217
minor unit (see :mod:`simulator.world.money`).
"""

from __future__ import annotations

import numpy as np

from simulator.core.gather import take2
from simulator.world.build import World
from simulator.world.money import to_minor

__all__ = ["amounts_minor", "price_level_factor"]


def amounts_minor(
    world: World, rng: np.random.Generator, holder: np.ndarray, merchant: np.ndarray
) -> np.ndarray:
    """Amounts (hundredths of each merchant's currency) from the per-MCC spend model."""
    table = world.amounts
    n = len(holder)
    mcc = world.merchants.mcc[merchant].astype(np.intp)
    z = rng.standard_normal(n)
    u_point, u_which = rng.random(n), rng.random(n)
    usd = np.exp(table.log_median[mcc] + table.sigma[mcc] * z)
    usd *= world.holders.spend[holder] * world.merchants.price[merchant]
    np.clip(usd, table.minimum[mcc], table.maximum[mcc], out=usd)
    at_point = np.flatnonzero(u_point < table.point_share[mcc])
    m = mcc[at_point]
    which = (u_which[at_point, None] >= table.point_cdf[m]).sum(axis=1)
    usd[at_point] = take2(table.points, m, np.minimum(which, table.points.shape[1] - 1))
    usd *= price_level_factor(world, holder, merchant)
    return to_minor(usd, world.merchant_per_usd[merchant], world.merchant_step[merchant])


def price_level_factor(world: World, holder: np.ndarray, merchant: np.ndarray) -> np.ndarray:
    """Per row, the visited country's price level over the home one's (1 at home and online)."""
    visited = world.merchant_price_level[merchant]
    home = world.holder_price_level[holder]
    return np.where(world.merchant_card_present[merchant], visited / home, 1.0)
