"""What the built-in scenarios build campaigns from: ranges, rows, sprees at a pace, cash-outs.

Every helper draws only from the generator it is given, so a campaign keeps to its own
stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import Field, model_validator

from runtime.units import US_PER_HOUR
from simulator.core.geo import haversine_km
from simulator.fraud.contract import Campaign, ScenarioParams

if TYPE_CHECKING:
    from simulator.fraud.context import CampaignContext

__all__ = [
    "CampaignRows",
    "Count",
    "RangeParams",
    "between",
    "cashout_or_ordinary",
    "paced",
    "spree",
]


Count = Annotated[int, Field(ge=1, le=10_000)]


class RangeParams(ScenarioParams):
    """Scenario parameters whose ``[low, high]`` pairs must be ordered."""

    @model_validator(mode="after")
    def _ordered(self) -> RangeParams:
        for name, value in self:
            if (
                isinstance(value, tuple)
                and len(value) == 2
                and all(isinstance(v, int | float) for v in value)
                and value[0] > value[1]
            ):
                raise ValueError(f"{name} must be [low, high] with low <= high")
        return self


def between(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An integer drawn uniformly from the closed range ``bounds``."""
    return int(rng.integers(bounds[0], bounds[1] + 1))


def spree(
    rng: np.random.Generator, first_us: np.ndarray, owner: np.ndarray, gap_us: float
) -> np.ndarray:
    """Times of a spree per owner: from ``first_us[o]`` on, exponential gaps of mean ``gap_us``.

    ``owner`` names each row's owner (a card), rows of one owner together. A fraudster
    spends a working card fast, before it is blocked: gaps of minutes are the velocity
    the card's own history shows.
    """
    n = len(owner)
    gaps = rng.exponential(gap_us, n)
    new = np.ones(n, dtype=bool)
    new[1:] = owner[1:] != owner[:-1]
    gaps[new] = 0.0
    total = np.cumsum(gaps)
    head = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    return np.asarray(first_us, dtype=np.int64)[owner] + (total - total[head]).astype(np.int64)


def paced(
    rng: np.random.Generator,
    time_us: np.ndarray,
    owner: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    kmh: float,
) -> np.ndarray:
    """``time_us`` with each owner's consecutive shops a drive apart, at most ``kmh``.

    Rows of one owner are together and in time order (as :func:`spree` makes them); a
    gap too short to get from one shop to the next is stretched, and the owner's later
    rows move with it. Each drive has its own speed, 40% to 100% of ``kmh`` (a fixed
    speed would mark fraud rows by the speed alone). Rows without coordinates (online)
    need no travel.
    """
    n = len(time_us)
    new = np.ones(n, dtype=bool)
    new[1:] = owner[1:] != owner[:-1]
    gap = np.zeros(n)
    gap[1:] = np.diff(time_us)
    km = np.zeros(n)
    km[1:] = np.nan_to_num(haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:]))
    speed = kmh * rng.uniform(0.4, 1.0, n)
    gap = np.where(new, 0.0, np.maximum(gap, km / speed * US_PER_HOUR))
    total = np.cumsum(gap)
    head = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    return np.asarray(time_us, dtype=np.int64)[head] + (total - total[head]).astype(np.int64)


class CampaignRows:
    """Accumulates a campaign's transactions."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("time_us", "card", "merchant", "amount_minor", "entry_mode", "fraud")
        }

    def add(
        self,
        time_us: np.ndarray,
        card: int | np.ndarray,
        merchant: np.ndarray,
        amount_minor: np.ndarray,
        entry_mode: int | np.ndarray,
        *,
        fraud: bool = True,
    ) -> None:
        """Append rows; ``card`` and ``entry_mode`` may be one value for all of them."""
        n = len(time_us)
        self.cols["time_us"].append(np.asarray(time_us, dtype=np.int64))
        self.cols["card"].append(_column(card, np.int64, n))
        self.cols["merchant"].append(np.asarray(merchant, dtype=np.int64))
        self.cols["amount_minor"].append(np.asarray(amount_minor, dtype=np.int64))
        self.cols["entry_mode"].append(_column(entry_mode, np.int8, n))
        self.cols["fraud"].append(np.full(n, fraud))

    def campaign(self) -> Campaign:
        """The rows added so far as a :class:`Campaign`."""
        empty = {
            "time_us": np.int64,
            "card": np.int64,
            "merchant": np.int64,
            "amount_minor": np.int64,
            "entry_mode": np.int8,
            "fraud": bool,
        }
        return Campaign(
            **{
                k: np.concatenate(v) if v else np.zeros(0, dtype=empty[k])
                for k, v in self.cols.items()
            }
        )


def _column(value: int | np.ndarray, dtype: type[np.generic], n: int) -> np.ndarray:
    """``n`` rows of ``value``: one value repeated, or an array of ``n`` (or of one)."""
    values = np.asarray(value, dtype=dtype)
    if values.ndim == 0:
        return np.full(n, values, dtype=dtype)  # a quarter of broadcast_to's fixed cost
    return np.broadcast_to(values, (n,))


def cashout_or_ordinary(
    ctx: CampaignContext,
    rng: np.random.Generator,
    holder: int | np.ndarray,
    k: int,
    cashout_share: float,
    city: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` purchases: cash-outs at hotspots, else ordinary ones, online or near ``city``.

    Every merchant of the pool is equally likely, not the popular ones the victim
    frequents, so most purchases are at a merchant new to the card. Returns merchants
    and amounts in minor units.
    """
    merchant, amount = ctx.hotspot(rng, k, city)
    plain = np.flatnonzero(rng.random(k) >= cashout_share)
    if len(plain):
        if city is None:
            merchant[plain] = ctx.online_merchants(rng, len(plain), by_popularity=False)
        else:
            merchant[plain] = ctx.nearby_merchants(rng, city, len(plain), by_popularity=False)
        owners = np.broadcast_to(np.asarray(holder), (k,))[plain]
        amount[plain] = ctx.ordinary_amounts(rng, owners, merchant[plain])
    return merchant, amount
