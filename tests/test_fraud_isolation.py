"""A scenario's campaigns are its own: adding another scenario leaves them as they were.

Prevalence is held exactly, so trims and top-ups weigh the whole mix and the emitted
rows of one scenario may change when another joins. What must not change is the
plan: the campaigns a scenario starts at its steady rate, their case ids, victims,
times, merchants and amounts. A third scenario is added with a rate that keeps the
first two scenarios' expected fraud (their share of the quota) as it was.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.units import US_PER_DAY, to_us
from simulator.fraud.cases import STEADY, TOPUP, case_key
from simulator.fraud.contract import Campaign
from simulator.fraud.model import FraudModel
from simulator.fraud.planner import FraudPlanner
from simulator.settings.fraud import FraudConfig
from tests import fraud_runs as fr
from tests.fraud_runs import Built

A, B, C = "lost_stolen", "account_takeover", "card_testing"
DAYS = 4
LEGIT_PER_DAY = 13_000


class _Recording(FraudPlanner):
    """Records every campaign as its scenario planned it (before detection), with its case."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.planned: list[tuple[Any, ...]] = []
        self._last: tuple[int, Campaign] | None = None
        for sc in self._scenarios:
            plan = sc.plan

            def recorded(ctx: Any, rng: Any, start_us: int, plan: Any = plan) -> Campaign:
                rows = plan(ctx, rng, start_us)
                self._last = (start_us, rows)
                return rows

            sc.plan = recorded  # type: ignore[method-assign]

    def _start(self, i: int, at_us: int, kind: int = STEADY) -> Any:
        live = super()._start(i, at_us, kind)
        assert self._last is not None
        start_us, rows = self._last
        holders = self.cards.holder[rows.card]
        self.planned.append(
            (
                self.names[i],
                kind,
                live.case,
                start_us,
                rows.time_us.tolist(),
                holders.tolist(),
                rows.merchant.tolist(),
                rows.amount_minor.tolist(),
                rows.entry_mode.tolist(),
                rows.fraud.tolist(),
            )
        )
        return live


def _mix(base: FraudConfig, shares: dict[str, float], rate: float) -> FraudConfig:
    scenarios = {
        name: cfg.model_copy(update={"share": shares.get(name, 0.0)})
        for name, cfg in base.scenarios.items()
    }
    changed = base.model_copy(
        update={"scenarios": scenarios, "target_rate": rate, "warmup_days": 3}
    )
    return FraudConfig.model_validate(changed.model_dump())


def _plan(built: Built, fraud: FraudConfig) -> _Recording:
    """Plan ``DAYS`` one-day slices of block 0's fraud over the same genuine counts."""
    spec = built.spec
    assert spec.slice_us == US_PER_DAY
    model = FraudModel(built.world, fraud, built.seed.streams, spec.slice_us, spec.entry_modes)
    planner = _Recording(model, 0)
    first = to_us(dt.datetime.combine(built.settings.start_date, dt.time(), tzinfo=dt.UTC))
    for day in range(DAYS):
        planner.plan_slice(first + day * spec.slice_us, LEGIT_PER_DAY)
    return planner


def _steady(planner: _Recording, name: str) -> list[tuple[Any, ...]]:
    return [p for p in planner.planned if p[0] == name and p[1] == STEADY]


@pytest.fixture(scope="module")
def built(cache_dir: Path) -> Built:
    return fr.built(10_000, cache_dir)


def test_adding_a_scenario_leaves_the_others_campaigns_unchanged(built: Built) -> None:
    base = built.settings.fraud
    rate = 0.01
    # A and B each get half of the quota, then a quarter: doubling the odds r / (1 - r)
    # keeps each one's expected fraud, so each starts the same steady campaigns.
    two = _plan(built, _mix(base, {A: 1.0, B: 1.0}, rate))
    three = _plan(built, _mix(base, {A: 1.0, B: 1.0, C: 2.0}, 2 * rate / (1 + rate)))

    assert len(_steady(three, C)) > 0, "the third scenario plans campaigns of its own"
    for name in (A, B):
        before, after = _steady(two, name), _steady(three, name)
        assert len(before) >= 20, name
        assert before == after, f"{name}: its steady campaigns changed when {C} joined"
    # The exact count is held by top-ups, which do depend on the whole mix.
    assert any(p[1] == TOPUP for p in two.planned + three.planned)


def test_case_numbers_name_their_scenario_block_kind_and_sequence() -> None:
    keys = {
        case_key(name, block, kind, seq)
        for name in (A, B, C)
        for block in (0, 5)
        for kind in (0, 1)
        for seq in (0, 7)
    }
    assert len(keys) == 24
    assert min(keys) >= 0
    assert max(keys) < 2**63
    assert case_key(A, 0, STEADY, 3) == case_key(A, 0, STEADY, 3)
    with pytest.raises(ValueError, match="exceeds"):
        case_key(A, 0, STEADY, 2**26)
    assert np.int64(case_key(C, 2**16 - 1, TOPUP, 2**26 - 1)) > 0
