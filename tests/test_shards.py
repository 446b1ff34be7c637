"""Shards add up to the run: for any N, the union of shards 0..N-1 is the single run.

Each block of cardholders plans its own fraud, so a shard (a set of blocks) needs no
other shard's rows. These tests compare whole tables: every column of every row,
``previous_transaction_id`` and the labels included, so each card's chain is the
single run's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.settings.run import Shard
from tests import fraud_runs as fr
from tests.fraud_runs import Built, Run

#: Cardholders per block: small, so a few thousand cardholders make several blocks.
BLOCK = 512


@cache
def _built(cardholders: int, cache_dir: Path) -> Built:
    base = fr.built(cardholders, cache_dir, f"population.block_size={BLOCK}")
    # Ten times the default rate: enough fraud, blocks and reissues in a small run.
    return fr.with_fraud(base, target_rate=0.02, warmup_days=20)


@cache
def _run(cardholders: int, days: int, cache_dir: Path, shard: Shard) -> Run:
    return fr.simulate(_built(cardholders, cache_dir), days, shard=shard)


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("transaction_id", "ascending")])


def _union(parts: list[pa.Table]) -> pa.Table:
    return _sorted(pa.concat_tables(parts))


def _assert_union(cardholders: int, days: int, n: int, cache_dir: Path) -> None:
    whole = _run(cardholders, days, cache_dir, Shard(0, 1))
    shards = [_run(cardholders, days, cache_dir, Shard(k, n)) for k in range(n)]
    union = _union([s.table for s in shards])
    assert union.num_rows == whole.table.num_rows
    assert union.equals(_sorted(whole.table)), f"the union of {n} shards differs from the run"
    labels = pa.concat_tables([s.labels for s in shards])
    key = [("transaction_id", "ascending"), ("label_time", "ascending")]
    assert labels.sort_by(key).equals(whole.labels.sort_by(key))
    issued = sorted(pa.concat_arrays([s.new_cards for s in shards]).to_pylist())
    assert issued == sorted(whole.new_cards.to_pylist())


@given(
    cardholders=st.sampled_from([900, 1500, 2600]),
    days=st.integers(1, 2),
    n=st.integers(1, 5),
)
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_union_of_shards_is_the_run(
    cardholders: int, days: int, n: int, cache_dir: Path
) -> None:
    # 900 cardholders make 2 blocks: N above 2 leaves shards with no block at all.
    _assert_union(cardholders, days, n, cache_dir)


def test_a_shard_without_blocks_is_empty(cache_dir: Path) -> None:
    empty = _run(900, 1, cache_dir, Shard(4, 5))
    assert empty.table.num_rows == 0
    assert empty.labels.num_rows == 0


def test_shards_carry_fraud_reissues_and_chains(cache_dir: Path) -> None:
    """The run the property compares has what could break: fraud, reissued cards, chains."""
    whole = _run(2600, 2, cache_dir, Shard(0, 1))
    fraud = whole.column("is_fraud")
    assert fraud.sum() > 50
    assert len(whole.new_cards) > 10
    assert all("-r" in c for c in whole.new_cards.to_pylist())
    prev = whole.table.column("previous_transaction_id")
    assert prev.null_count < whole.table.num_rows // 2
    _assert_union(2600, 2, 3, cache_dir)


def test_each_shard_holds_its_prevalence(cache_dir: Path) -> None:
    target = 0.02
    for k in range(3):
        run = _run(2600, 2, cache_dir, Shard(k, 3))
        rate = float(np.mean(run.column("is_fraud")))
        assert rate == pytest.approx(target, rel=0.15), f"shard {k}/3: fraud rate {rate:.4f}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "shard 3 is not in 0..1"),
        ("-1/2", "shard -1 is not in 0..1"),
        ("0/0", "at least one shard"),
        ("1", "expected K/N"),
        ("a/b", "expected K/N"),
    ],
)
def test_bad_shards_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)


def test_shards_deal_blocks_round_robin() -> None:
    assert list(Shard(1, 3).blocks(8)) == [1, 4, 7]
    assert list(Shard(4, 5).blocks(3)) == []
    covered = sorted(b for k in range(4) for b in Shard(k, 4).blocks(10))
    assert covered == list(range(10))


def test_workers_are_lanes_of_the_same_rows(cache_dir: Path) -> None:
    """``--workers`` deals a shard's blocks to processes: the shard's rows, in its order."""
    one = _run(2600, 2, cache_dir, Shard(1, 2))
    three = fr.simulate(_built(2600, cache_dir), 2, workers=3, shard=Shard(1, 2))
    assert three.table.equals(one.table)
    assert three.labels.equals(one.labels)


def _sabotage_a_worker_block(
    monkeypatch: pytest.MonkeyPatch, built: Built, act: Callable[[int, int], None]
) -> int:
    """Make ``act(block, day)`` run before the worker lane simulates one of its blocks.

    Returns the block: one the worker lane of a 2-worker run simulates, not this
    process's lane. Workers are forked, so they inherit the patch.
    """
    from simulator.model import slices
    from simulator.model.lanes import deal

    bad = deal(range(built.world.n_blocks), 2)[1][0]
    real = slices.simulate_block
    days = {"n": 0}

    def patched(world: object, streams: object, where: object, ctx: object, block: int) -> object:
        if block == bad:
            days["n"] += 1
            act(block, days["n"])
        return real(world, streams, where, ctx, block)  # type: ignore[arg-type]

    monkeypatch.setattr(slices, "simulate_block", patched)
    return bad


def test_a_failing_worker_fails_the_run_with_its_error(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(block: int, day: int) -> None:
        raise ValueError(f"block {block} is broken")

    built = _built(2600, cache_dir)
    bad = _sabotage_a_worker_block(monkeypatch, built, fail)
    with pytest.raises(RuntimeError, match=rf"worker 1 failed(.|\n)*block {bad} is broken"):
        fr.simulate(built, 1, workers=2)


def test_a_worker_that_dies_fails_the_run_with_its_exit_code(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker gone without a word (killed, out of memory) stops the run; nothing hangs."""
    import os

    def die_on_day_three(block: int, day: int) -> None:
        if day == 3:  # two days already sent
            os._exit(7)

    built = _built(2600, cache_dir)
    _sabotage_a_worker_block(monkeypatch, built, die_on_day_three)
    with pytest.raises(RuntimeError, match=r"worker 1 stopped \(exit code 7\)"):
        fr.simulate(built, 4, workers=2)
