"""The card lifecycle: blocks and reissues, as the fraud planner decides them.

A detected card is blocked at an instant; a replacement card (a new card index after
the world's cards, same cardholder) takes over from that instant, but it is in the
post: it can be used only from its arrival (:attr:`CardRegistry.usable_at`), a delivery
delay after the block. Resolving a card at a time follows the chain of replacements,
whether or not the replacement has arrived.

A card's delivery delay is a keyed hash of the card it replaces, so it depends on
neither the order of blocks nor the stream of the campaign that caused one, and a
card blocked again earlier keeps its delay.

Replacement indices follow the order blocks are planned in, which differs between a
whole run and its shards; nothing outside the process sees them. What is seen is a
card's lineage: the world card it descends from and its generation. A replacement's
id is the world card's id with ``-rG`` (``card-0000012345-r1``, then ``-r2``), and its
delivery delay hashes the lineage, so both are the same in every shard.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.units import US_PER_DAY
from simulator.core.ids import mix64
from simulator.world.catalog import Cards

__all__ = ["CardRegistry"]

NEVER = np.iinfo(np.int64).max
#: The arrays that make a registry's state, one entry per card.
_STATE = ("usable_at", "block_at", "replacement", "holder", "replaces", "root", "generation")


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
        #: The world card each card descends from, and how many reissues down it is.
        self.root = np.arange(n, dtype=np.int64)
        self.generation = np.zeros(n, dtype=np.int64)
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

    def lineage(self, card: np.ndarray) -> np.ndarray:
        """A number per card that is the same in every shard: its root and generation."""
        card = np.asarray(card, dtype=np.int64)
        return (self.generation[card] << 40) | self.root[card]

    def delivery_us(self, card: np.ndarray) -> np.ndarray:
        """Delivery delay of the replacement of each of ``card`` (microseconds)."""
        word = mix64(self.lineage(card).astype(np.uint64), self._key)
        u = (word >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        low, span = self._delivery_us
        return (low + u * span).astype(np.int64)

    def block(self, card: int, at_us: int) -> None:
        """Block ``card`` at ``at_us`` (or earlier, if it already is); reissue it once.

        The replacement arrives its delivery delay after the (earliest) block.
        """
        self.block_many(np.array([card]), np.array([at_us]))

    def block_many(self, cards: np.ndarray, at_us: np.ndarray) -> None:
        """Block each of ``cards`` (distinct) at its ``at_us`` (or earlier, if it already is).

        A card blocked for the first time is reissued once: replacements are numbered in
        the order given, and each arrives its delivery delay after its card's block.
        """
        cards = np.asarray(cards, dtype=np.int64)
        at_us = np.asarray(at_us, dtype=np.int64)
        earlier = at_us < self.block_at[cards]
        cards, at_us = cards[earlier], at_us[earlier]
        self.block_at[cards] = at_us
        fresh = cards[self.replacement[cards] < 0]
        while self._count + len(fresh) > len(self.holder):
            self._grow()
        new = np.arange(self._count, self._count + len(fresh), dtype=np.int64)
        self.replacement[fresh] = new
        self.holder[new] = self.holder[fresh]
        self.replaces[new] = fresh
        self.root[new] = self.root[fresh]
        self.generation[new] = self.generation[fresh] + 1
        self._count += len(fresh)
        self.usable_at[self.replacement[cards]] = at_us + self.delivery_us(cards)

    def _grow(self) -> None:
        extra = max(1024, len(self.holder) // 8)
        self.usable_at = np.append(self.usable_at, np.zeros(extra, dtype=np.int64))
        self.block_at = np.append(self.block_at, np.full(extra, NEVER, dtype=np.int64))
        self.replacement = np.append(self.replacement, np.full(extra, -1, dtype=np.int64))
        self.holder = np.append(self.holder, np.full(extra, -1, dtype=np.int64))
        self.replaces = np.append(self.replaces, np.full(extra, -1, dtype=np.int64))
        self.root = np.append(self.root, np.zeros(extra, dtype=np.int64))
        self.generation = np.append(self.generation, np.zeros(extra, dtype=np.int64))

    def state(self) -> dict[str, np.ndarray]:
        """The registry's arrays, up to its last card (to send to another process)."""
        return {name: getattr(self, name)[: self._count] for name in _STATE}

    def absorb(self, state: dict[str, np.ndarray], index: np.ndarray) -> None:
        """Take in another registry's blocks and reissues (of cards no other one touched).

        ``state`` is :meth:`state` of a registry over the same world cards; ``index``
        gives, for each of its replacement cards in order, the index it has here.
        """
        n = len(self._cards)
        if len(index):
            top = int(index.max()) + 1
            while top > len(self.holder):
                self._grow()
            self._count = max(self._count, top)

        def here(card: np.ndarray) -> np.ndarray:
            out = card.copy()
            later = card >= n
            out[later] = index[card[later] - n]
            return out

        touched = np.flatnonzero(state["block_at"][:n] < NEVER)
        self.block_at[touched] = state["block_at"][touched]
        self.replacement[touched] = here(state["replacement"][touched])
        if len(index):
            for name in ("usable_at", "block_at", "holder", "root", "generation"):
                getattr(self, name)[index] = state[name][n:]
            for name in ("replacement", "replaces"):
                own = state[name][n:]
                getattr(self, name)[index] = np.where(own >= 0, here(np.maximum(own, 0)), -1)

    def card_ids(self, start: int = 0) -> pa.StringArray:
        """Ids of the cards from index ``start`` on: the world's, then the replacements'.

        A replacement's id is its world card's with ``-r`` and its generation.
        """
        base = len(self._cards)
        world = self._cards.ids.slice(min(start, base))
        first = max(start, base)
        if first >= self._count:
            return world
        card = np.arange(first, self._count)
        roots = self._cards.ids.take(pa.array(self.root[card]))
        suffix = pc.binary_join_element_wise(
            "-r", pc.cast(pa.array(self.generation[card]), pa.string()), ""
        )
        reissued = pc.binary_join_element_wise(roots, suffix, "")
        return pa.concat_arrays([world, reissued]) if len(world) else reissued
