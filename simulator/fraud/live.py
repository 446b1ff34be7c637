"""A fraud planner's campaigns under way, and a block's warm-up kept between runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.fraud.cases import STEADY, FraudRows
from simulator.fraud.contract import Campaign

__all__ = ["Live", "WarmUp", "fraud_count", "rows_of"]


@dataclass
class Live:
    """A campaign with rows still to come; ``made`` orders campaigns by creation."""

    case: int
    scenario: int
    rows: Campaign
    label_at_us: np.ndarray
    made: int
    kind: int = STEADY
    pos: int = 0


@dataclass(frozen=True)
class WarmUp:
    """A block's warm-up: its campaigns still under way when the run starts.

    It depends on the seed, the settings and the run's start only (the warm-up plans at
    the block's expected genuine rate, not at a count the run simulated), so it can be
    kept between runs like the world (:meth:`FraudPlanner.resume`).

    Attributes:
        live: The campaigns with rows in the run, each positioned at its first one.
        planned: Campaigns planned, by scenario and kind.
        made: Campaigns made in all.
        blocked: The cards the warm-up's detections blocked, and when: the arguments of
            each :meth:`~simulator.fraud.cards.CardRegistry.block_many`, in order.
    """

    live: list[Live]
    planned: np.ndarray
    made: int
    blocked: list[tuple[np.ndarray, np.ndarray]]


def fraud_count(taken: list[tuple[Live, np.ndarray]]) -> int:
    """Fraud rows among the rows ``idx`` taken of each campaign."""
    return sum(int(np.count_nonzero(c.rows.fraud[idx])) for c, idx in taken)


def rows_of(taken: list[tuple[Live, np.ndarray]]) -> FraudRows:
    """The rows ``idx`` taken of each campaign, as one slice's fraud rows."""
    parts = [(c, r) for c, r in taken if len(r)]
    if not parts:
        return FraudRows.empty()

    def col(get: str) -> np.ndarray:
        return np.concatenate([getattr(c.rows, get)[r] for c, r in parts])

    return FraudRows(
        time_us=col("time_us"),
        card=col("card"),
        merchant=col("merchant"),
        amount_minor=col("amount_minor"),
        entry_mode=col("entry_mode"),
        fraud=col("fraud"),
        scenario=np.concatenate([np.full(len(r), c.scenario, dtype=np.int32) for c, r in parts]),
        case=np.concatenate([np.full(len(r), c.case, dtype=np.int64) for c, r in parts]),
        label_at_us=np.concatenate([c.label_at_us[r] for c, r in parts]),
    )
