"""The card lifecycle: blocks and reissues, as the fraud planner decides them.

A detected card is blocked at an instant; a replacement card (a new card index after
the world's cards, same cardholder) takes over from that instant, but it is in the
post: it can be used only from its arrival (:attr:`CardRegistry.usable_at`), a delivery
delay after the block. Resolving a card at a time follows the chain of replacements,
whether or not the replacement has arrived.

A card's delivery delay is a keyed hash of the card it replaces, so it depends on
neither the order of blocks nor the stream of the campaign that caused one, and a
card blocked again earlier keeps its delay.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from runtime.units import US_PER_DAY
from simulator.core.ids import mix64
from simulator.world.catalog import Cards

__all__ = ["CardRegistry"]

NEVER = np.iinfo(np.int64).max


class CardRegistry:
    """Which card replaced which, and when; grows as cards are reissued.

    Args:
        cards: The world's cards (replacements get the indices after them).
        delivery_days: ``(low, high)``: days from a block until its replacement arrives,
            uniform; ``(0, 0)`` for a replacement usable at once.
        key: Secret of the hash that draws each delivery delay.

    Raises:
        ValueError: For a delivery range that is not ``0 <= low <= high``.
    """

    def __init__(
        self, cards: Cards, delivery_days: tuple[float, float] = (0.0, 0.0), key: int = 0
    ) -> None:
        low, high = delivery_days
        if not 0 <= low <= high:
            raise ValueError(f"delivery_days must be 0 <= low <= high, got {delivery_days}")
        self._cards = cards
        self._delivery_us = (low * US_PER_DAY, (high - low) * US_PER_DAY)
        self._key = key
        n = len(cards)
        #: When each card can first be used (the world's cards: always).
        self.usable_at = np.zeros(n, dtype=np.int64)
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

    def delivery_us(self, card: np.ndarray) -> np.ndarray:
        """Delivery delay of the replacement of each of ``card`` (microseconds)."""
        word = mix64(np.asarray(card, dtype=np.uint64), self._key)
        u = (word >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        low, span = self._delivery_us
        return (low + u * span).astype(np.int64)

    def block(self, card: int, at_us: int) -> None:
        """Block ``card`` at ``at_us`` (or earlier, if it already is); reissue it once.

        The replacement arrives its delivery delay after the (earliest) block.
        """
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
        new = int(self.replacement[card])
        self.usable_at[new] = at_us + int(self.delivery_us(np.array([card]))[0])

    def _grow(self) -> None:
        extra = max(1024, len(self.holder) // 8)
        self.usable_at = np.append(self.usable_at, np.zeros(extra, dtype=np.int64))
        self.block_at = np.append(self.block_at, np.full(extra, NEVER, dtype=np.int64))
        self.replacement = np.append(self.replacement, np.full(extra, -1, dtype=np.int64))
        self.holder = np.append(self.holder, np.full(extra, -1, dtype=np.int64))
        self.replaces = np.append(self.replaces, np.full(extra, -1, dtype=np.int64))

    def card_ids(self) -> pa.StringArray:
        """Ids of every card, the world's then the replacements (same prefix and width)."""
        return self._cards.ids_upto(self._count)
