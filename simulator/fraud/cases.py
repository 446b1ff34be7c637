"""A campaign as the planner keeps it: its case number, its detection, the rows of a slice.

A case number packs the scenario's name, the campaign's kind (started at the steady
rate, or to fill a slice's shortfall) and its sequence number among that scenario's
campaigns of that kind. It depends on nothing else, so another scenario joining the
mix leaves every case number of this one as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.core.seeding import stable_word
from simulator.fraud.context import draw_delays_us
from simulator.fraud.contract import Campaign, Scenario

__all__ = ["STEADY", "TOPUP", "FraudRows", "case_key", "detect"]

#: Campaign kinds: started at the steady rate, or to fill a slice's shortfall.
STEADY, TOPUP = 0, 1
_SEQ_BITS = 31


def case_key(scenario: str, kind: int, seq: int) -> int:
    """The case number of a scenario's ``seq``-th campaign of ``kind`` (a non-negative int64).

    The scenario's name takes the top 31 bits, so cases of different scenarios never
    share a number (the planner refuses two names whose bits collide).

    Raises:
        ValueError: If ``seq`` does not fit in 31 bits.
    """
    if not 0 <= seq < 1 << _SEQ_BITS:
        raise ValueError(f"{scenario}: campaign {seq} exceeds {(1 << _SEQ_BITS) - 1} of a kind")
    word = stable_word(scenario) & 0x7FFF_FFFF
    return (word << (_SEQ_BITS + 1)) | (kind << _SEQ_BITS) | seq


@dataclass(frozen=True)
class FraudRows:
    """The campaign transactions of one slice (fraudulent and staged genuine ones).

    Attributes:
        scenario: Scenario index per row (into :attr:`FraudPlanner.names`).
        case: Case number per row (:func:`case_key`).
        fraud: False for the genuine cardholder's staged transactions.
        label_at_us: When the fraud is labelled, -1 for never (and for genuine rows).
    """

    time_us: np.ndarray
    card: np.ndarray
    merchant: np.ndarray
    amount_minor: np.ndarray
    entry_mode: np.ndarray
    fraud: np.ndarray
    scenario: np.ndarray
    case: np.ndarray
    label_at_us: np.ndarray

    def __len__(self) -> int:
        return len(self.time_us)

    @classmethod
    def empty(cls) -> FraudRows:
        """No rows."""
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, z.astype(np.int8), z.astype(bool), z.astype(np.int32), z, z)


def detect(
    sc: Scenario[Any], rows: Campaign, rng: np.random.Generator
) -> tuple[np.ndarray, dict[int, int]]:
    """Detection: each defrauded card is blocked a delay after its first fraud.

    Cards draw their delays in the order the campaign first uses them, not by card
    number, so a reissue elsewhere (a higher number) does not reorder the draws.

    Returns the rows that still happen (fraud before the block, every staged genuine
    row) and the block time of each card.
    """
    p = sc.params
    keep = np.ones(len(rows), dtype=bool)
    blocks: dict[int, int] = {}
    if not p.blocks_card:
        return keep, blocks
    used = rows.card[rows.fraud]
    _, first_use = np.unique(used, return_index=True)
    for card in used[np.sort(first_use)].tolist():
        first = int(rows.time_us[rows.fraud & (rows.card == card)].min())
        when = first + int(draw_delays_us(rng, p.detection_delay, 1)[0])
        blocks[card] = when
        keep &= ~(rows.fraud & (rows.card == card) & (rows.time_us >= when))
    return keep, blocks
