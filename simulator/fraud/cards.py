"""The card lifecycle: blocks and reissues, as the fraud planner decides them.

A detected card is blocked at an instant; a replacement card (a new card index after
the world's cards, same cardholder) takes over from that instant. Resolving a card at
a time follows the chain of replacements.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simulator.world.catalog import Cards

__all__ = ["CardRegistry"]

NEVER = np.iinfo(np.int64).max


class CardRegistry:
    """Which card replaced which, and when; grows as cards are reissued.

    Args:
        cards: The world's cards (replacements get the indices after them).
    """

    def __init__(self, cards: Cards) -> None:
        self._cards = cards
        n = len(cards)
        self.block_at = np.full(n, NEVER, dtype=np.int64)
        self.replacement = np.full(n, -1, dtype=np.int64)
        self.holder = cards.holder.astype(np.int64)
        self.replaces = np.full(n, -1, dtype=np.int64)
        self._count = n

    def __len__(self) -> int:
        return self._count

    def resolve(self, card: int, at_us: int) -> int:
        """The card in use at ``at_us`` in place of ``card``."""
        while self.block_at[card] <= at_us:
            card = int(self.replacement[card])
        return card

    def resolve_many(self, card: np.ndarray, time_us: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`resolve` for rows of (card, time)."""
        card = card.astype(np.int64, copy=True)
        while True:
            moved = self.block_at[card] <= time_us
            if not moved.any():
                return card
            card[moved] = self.replacement[card[moved]]

    def block(self, card: int, at_us: int) -> None:
        """Block ``card`` at ``at_us`` (or earlier, if it already is); reissue it once."""
        if at_us >= self.block_at[card]:
            return
        self.block_at[card] = at_us
        if self.replacement[card] < 0:
            new = self._count
            if new == len(self.holder):
                self._grow()
            self.replacement[card] = new
            self.holder[new] = self.holder[card]
            self.replaces[new] = card
            self._count += 1

    def _grow(self) -> None:
        extra = max(1024, len(self.holder) // 8)
        self.block_at = np.append(self.block_at, np.full(extra, NEVER, dtype=np.int64))
        self.replacement = np.append(self.replacement, np.full(extra, -1, dtype=np.int64))
        self.holder = np.append(self.holder, np.full(extra, -1, dtype=np.int64))
        self.replaces = np.append(self.replaces, np.full(extra, -1, dtype=np.int64))

    def card_ids(self) -> pa.StringArray:
        """Ids of every card, the world's then the replacements (same prefix and width)."""
        return self._cards.ids_upto(self._count)
