"""A campaign as the planner keeps it: its case number, its detection, the rows of a slice.

A case number packs the scenario's name, the cardholder block the campaign is planned
in, the campaign's kind (started at the steady rate, or to fill a slice's shortfall)
and its sequence number among that block's campaigns of that scenario and kind. It
depends on nothing else, so another scenario joining the mix leaves every case number
of this one as it was, and a shard numbers its cases as the whole run does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.core.seeding import stable_word
from simulator.fraud.context import draw_delays_us
from simulator.fraud.contract import Campaign, Scenario

__all__ = ["STEADY", "TOPUP", "FraudRows", "case_key", "detect"]

#: Campaign kinds: started at the steady rate, or to fill a slice's shortfall.
STEADY, TOPUP = 0, 1
_NAME_BITS, _BLOCK_BITS, _SEQ_BITS = 20, 16, 26


def case_key(scenario: str, block: int, kind: int, seq: int) -> int:
    """The case number of ``block``'s ``seq``-th campaign of ``kind`` of a scenario.

    A non-negative int64: the scenario's name takes the top 20 bits (the planner
    refuses two names whose bits collide), then the block, the kind and ``seq``.

    Raises:
        ValueError: If ``block`` or ``seq`` does not fit in its bits.
    """
    if not 0 <= block < 1 << _BLOCK_BITS:
        raise ValueError(f"{scenario}: block {block} exceeds {(1 << _BLOCK_BITS) - 1}")
    if not 0 <= seq < 1 << _SEQ_BITS:
        raise ValueError(
            f"{scenario}: campaign {seq} of block {block} exceeds {(1 << _SEQ_BITS) - 1} of a kind"
        )
    word = stable_word(scenario) & ((1 << _NAME_BITS) - 1)
    return (((word << _BLOCK_BITS | block) << 1 | kind) << _SEQ_BITS) | seq


@dataclass(frozen=True)
class FraudRows:
    """The campaign transactions of one slice (fraudulent and staged genuine ones).

    Attributes:
        scenario: Scenario index per row (into :attr:`FraudModel.names`).
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

    @classmethod
    def concat(cls, parts: Sequence[FraudRows]) -> FraudRows:
        """The rows of ``parts``, one after another."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in cls.__dataclass_fields__
            }
        )


def detect(
    sc: Scenario[Any], rows: Campaign, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Detection: each defrauded card is blocked a delay after its first fraud.

    Cards draw their delays in the order the campaign first uses them, not by card
    number, so a reissue elsewhere (a higher number) does not reorder the draws.

    Returns the rows that still happen (fraud before the block, every staged genuine
    row), and the cards blocked with their block times, in first-use order.
    """
    p = sc.params
    keep = np.ones(len(rows), dtype=bool)
    if not p.blocks_card:
        return keep, (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    fraud = np.flatnonzero(rows.fraud)
    used = rows.card[fraud]
    cards, first_use, of_row = np.unique(used, return_index=True, return_inverse=True)
    first = np.full(len(cards), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, of_row, rows.time_us[fraud].astype(np.int64))
    # One draw per card, in first-use order (the same draws as one at a time).
    order = np.argsort(first_use, kind="stable")
    when = np.empty(len(cards), dtype=np.int64)
    when[order] = first[order] + draw_delays_us(rng, p.detection_delay, len(cards))
    keep[fraud[rows.time_us[fraud] >= when[of_row]]] = False
    return keep, (cards[order], when[order])
