"""A blocked card's replacement comes by mail: nothing on it before it arrives.

The delivery delay is checked on the card registry directly (many blocks, its
distribution against the configured range); the rest on 30 simulated days of 10,000
cardholders, the run the fraud tests share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.units import US_PER_DAY
from simulator.fraud.cards import _STATE, CardRegistry
from simulator.world.catalog import Cards
from tests import fraud_runs as fr
from tests.fraud_runs import Run


@pytest.fixture(scope="module")
def month(cache_dir: Path) -> Run:
    return fr.default_run(cache_dir, 10_000, 30)


def test_the_delivery_delay_follows_the_configured_range(cache_dir: Path) -> None:
    world = fr.built(10_000, cache_dir).world
    reg = CardRegistry(world.cards, (7.0, 10.0), key=12345)
    rng = np.random.default_rng(3)
    cards = rng.choice(len(world.cards), size=8000, replace=False)
    at = (rng.random(len(cards)) * 30 * US_PER_DAY).astype(np.int64)
    for card, when in zip(cards.tolist(), at.tolist(), strict=True):
        reg.block(card, when)
    new = reg.replacement[cards]
    days = (reg.usable_at[new] - reg.block_at[cards]) / US_PER_DAY
    assert days.min() >= 7.0
    assert days.max() <= 10.0
    # Uniform on [7, 10]: mean 8.5, quartiles 7.75 and 9.25, sd 0.866.
    assert days.mean() == pytest.approx(8.5, abs=0.05)
    assert np.quantile(days, [0.25, 0.75]) == pytest.approx([7.75, 9.25], abs=0.08)
    assert days.std() == pytest.approx(3 / np.sqrt(12), rel=0.05)
    # Blocked again earlier: the same delay from the earlier block.
    first = int(cards[0])
    delay = int(reg.usable_at[new[0]] - reg.block_at[first])
    reg.block(first, int(reg.block_at[first]) - US_PER_DAY)
    assert reg.usable_at[new[0]] - reg.block_at[first] == delay
    with pytest.raises(ValueError, match="delivery_days"):
        CardRegistry(world.cards, (3.0, 1.0))


def _cards(n: int) -> Cards:
    holder = np.arange(n, dtype=np.int64) // 2
    return Cards(
        ids=pa.array([f"c{i}" for i in range(n)]),
        holder=holder,
        card_type=np.zeros(n, dtype=np.int8),
        network=np.zeros(n, dtype=np.int8),
        credit_limit=np.zeros(n),
        is_primary=np.ones(n, dtype=bool),
    )


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 2999), st.integers(0, 50)), max_size=1500),
        max_size=4,
    )
)
def test_blocking_many_cards_at_once_is_blocking_them_one_by_one(
    rounds: list[list[tuple[int, int]]],
) -> None:
    """Same state, replacement numbers and growth as one :meth:`block` per card, in order."""
    one, many = (CardRegistry(_cards(3000), (2.0, 9.0), key=7) for _ in range(2))
    for blocks in rounds:
        chosen = dict(blocks)  # distinct cards, in first-seen order
        cards = np.array(list(chosen), dtype=np.int64)
        at = np.array(list(chosen.values()), dtype=np.int64) * US_PER_DAY
        for card, when in zip(cards.tolist(), at.tolist(), strict=True):
            one.block(one.resolve(card, 0), when)
        many.block_many(many.resolve_many(cards, np.zeros(len(cards), np.int64)), at)
    assert len(one) == len(many)
    for name in _STATE:
        assert np.array_equal(getattr(one, name), getattr(many, name)), name


def test_the_run_uses_the_configured_delivery(month: Run) -> None:
    reg = month.cards
    base = len(month.world.cards)
    new = np.arange(base, len(reg))
    assert len(new) > 100
    days = (reg.usable_at[new] - reg.block_at[reg.replaces[new]]) / US_PER_DAY
    low, high = month.settings.fraud.replacement.delivery_days
    assert days.min() >= low
    assert days.max() <= high
    assert days.mean() == pytest.approx((low + high) / 2, abs=0.3)


def test_no_transaction_on_a_replacement_before_it_arrives(month: Run) -> None:
    t = month.column("event_time")
    early = np.flatnonzero(month.cards.usable_at[month.card] > t)
    assert early.tolist() == []
    on_new = month.card >= len(month.world.cards)
    assert on_new.sum() > 100, "replacements are used once they arrive"


def test_previous_transaction_links_stay_per_card(month: Run) -> None:
    ids = month.column("transaction_id")
    prev = month.column("previous_transaction_id")
    order = np.argsort(month.card, kind="stable")  # rows are in time order
    card, ids, prev = month.card[order], ids[order], prev[order]
    first = np.ones(len(card), dtype=bool)
    first[1:] = card[1:] != card[:-1]
    assert all(p is None for p in prev[first])
    assert (prev[~first] == ids[np.flatnonzero(~first) - 1]).all()


def test_holders_are_quieter_while_the_replacement_is_in_the_post(month: Run) -> None:
    reg, world = month.cards, month.world
    base = len(world.cards)
    start, end = month.start_us, month.start_us + 30 * US_PER_DAY
    old = reg.replaces[base : len(reg)]
    new = np.arange(base, len(reg))
    # World cards blocked well inside the run, with a window of the same length before.
    block, arrive = reg.block_at[old], reg.usable_at[new]
    inside = (old < base) & (block - (arrive - block) >= start) & (arrive <= end)
    old, block, arrive = old[inside], block[inside], arrive[inside]
    assert len(old) > 30
    genuine = ~month.column("is_fraud")
    t = month.column("event_time")
    row_holder = reg.holder[month.card]
    by_holder = {}
    for h in np.unique(reg.holder[old]).tolist():
        by_holder[h] = t[genuine & (row_holder == h)]
    single = world.holders.card_count[reg.holder[old]] == 1
    before = during = 0
    during_single = 0
    for c, b, a, one in zip(old.tolist(), block.tolist(), arrive.tolist(), single, strict=True):
        times = by_holder[int(reg.holder[c])]
        before += int(((times >= b - (a - b)) & (times < b)).sum())
        gap = int(((times >= b) & (times < a)).sum())
        during += gap
        during_single += gap if one else 0
    assert during_single == 0, "a holder of one card spends nothing by card while waiting"
    assert during < 0.8 * before, (during, before)
