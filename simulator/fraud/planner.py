"""The fraud planner: how many campaigns start, what reaches each slice, detection, labels.

Prevalence is held by construction, not by a coin per transaction. For each slice the
planner knows how many genuine transactions the population made (``legit``) and sets
the slice's quota of fraudulent ones to ``legit * r / (1 - r)`` (with the remainder
carried to the next slice), so the fraud rate by count is the target whatever the
span or the population. Campaigns start at the rate that keeps the quota filled on
average (each scenario's share of the quota over its mean transactions per campaign);
the exact count is then met by stopping the newest campaigns early (an earlier
detection) or starting extra short ones.

Each block of cardholders has a planner of its own (:class:`FraudPlanner`): its
campaigns' victims are the block's cardholders, its quota the block's genuine count,
slice after slice. A block's fraud therefore depends on the seed, the settings and the
block's own genuine rows only: not on how blocks were split across workers, nor on
which other blocks a shard simulates, so the shards of a run add up to the run. What
every block shares (the scenarios, their calibration, the card registry) is the
run's :class:`~simulator.fraud.model.FraudModel`.

The streams are keyed by scenario name, never by a scenario's position in the mix,
and by block:

* ``("fraud-starts", name, block, slice)``: how many of the scenario's campaigns start
  in the block and slice, and when (``("fraud-warmup", name, block, first slice)`` for
  all the warm-up's slices at once);
* ``("fraud-campaign", name, block, kind, seq)``: everything one campaign draws, ``seq``
  counting the block's campaigns of that scenario and kind (0 steady, 1 top-up);
* ``("fraud-calibration", name, k)``: the sample campaigns that size the steady rate;
* ``("fraud-topups", block, slice)``: which scenario fills a shortfall, and when.

A case is keyed by its scenario, block, kind and ``seq`` too (:func:`case_key`). So
adding a scenario, or changing another one's share at an equal rate for this one,
leaves a scenario's steady campaigns (victims, times, case ids) as they were; only
the trims and top-ups that hold the exact count, which weigh the whole mix, differ.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from runtime.units import US_PER_DAY
from simulator.core.ids import keyed_uniforms
from simulator.core.sampling import cdf, draw_categorical
from simulator.fraud.cards import NEVER
from simulator.fraud.cases import STEADY, TOPUP, FraudRows, case_key, detect
from simulator.fraud.context import draw_delays_us
from simulator.fraud.contract import Campaign, Scenario
from simulator.fraud.live import Live, WarmUp, fraud_count, rows_of
from simulator.fraud.model import FraudModel
from simulator.world.money import quantise

__all__ = ["FraudPlanner"]

_TOPUP_ATTEMPTS = 10_000
#: A scenario with at least this share of its rows within a day of its start is fast.
_FAST = 0.5


class FraudPlanner:
    """Plans one block's fraud slice by slice.

    Args:
        model: The run's fraud model.
        block: The cardholder block whose cardholders are the victims.
    """

    def __init__(self, model: FraudModel, block: int) -> None:
        self._model = model
        self._world = model.world
        self._config = model.config
        self._streams = model.streams
        self._slice_us = model.slice_us
        self.block = block
        self.names = model.names
        self._scenarios = model.scenarios
        self._share = model.share
        self._mean, self._fast, self._reach = model.mean, model.fast, model.reach
        self.cards = model.cards
        lo, hi = self._world.block_range(block)
        self.ctx = model.ctx.among(range(lo, hi))
        #: Genuine transactions the block's cardholders make in a slice, on average.
        self._steady_legit = (
            float(self._world.holders.rate[lo:hi].sum()) * self._slice_us / US_PER_DAY
        )
        self._live: list[Live] = []
        #: Fraud rows emitted so far by scenario (steers top-ups and trims to the mix).
        self._emitted = np.zeros(len(self._scenarios))
        #: Campaigns planned so far, by scenario and kind (the ``seq`` of the next one).
        self._planned = np.zeros((len(self._scenarios), 2), dtype=np.int64)
        self._made = 0
        # The quota is the block's expected count rounded down, the fraction carried on.
        # Starting from a uniform fraction makes the rounding unbiased, so the blocks'
        # errors (each under one row) cancel in a run's total instead of adding up.
        self._carry = float(keyed_uniforms(np.array([block]), model.quota_secret)[0])
        self._warmed = False
        #: While warming up: the registry blocks made, to replay from a kept warm-up.
        self._blocked: list[tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def rate(self) -> float:
        """The target fraud rate by count."""
        return self._config.target_rate

    @property
    def warmed(self) -> bool:
        """Whether the warm-up was planned or resumed."""
        return self._warmed

    def plan_slice(self, start_us: int, legit: int) -> FraudRows:
        """Plan up to the end of the slice starting at ``start_us`` and return its rows.

        Args:
            start_us: Slice start (microseconds since the epoch, a slice boundary).
            legit: Genuine transactions the block's cardholders made in this slice.
        """
        if self.rate <= 0 or not self._scenarios:
            return FraudRows.empty()
        if not self._warmed:
            self.warm_up(start_us)
        return self._slice(start_us, legit)

    def warm_up(self, run_start: int) -> WarmUp:
        """Plan the ``warmup_days`` before ``run_start``; returns what :meth:`resume` takes.

        Called before the first slice (:meth:`plan_slice` does, if nobody did).
        """
        self._warmed = True
        self._blocked = []
        if self.rate > 0 and self._scenarios:
            self._warm_up(run_start)
        warm = WarmUp(list(self._live), self._planned.copy(), self._made, self._blocked)
        self._blocked = None
        return warm

    def resume(self, warm: WarmUp) -> None:
        """Start from a warm-up kept from an earlier run: its campaigns, its card blocks.

        In place of :meth:`warm_up`, on a registry where this block planned nothing yet;
        the blocks are made again in their order, so the replacement cards are the same.
        """
        if self._warmed:
            raise RuntimeError(f"block {self.block} has warmed up already")
        self._warmed = True
        for cards, when in warm.blocked:
            self.cards.block_many(cards, when)
        self._live = list(warm.live)
        self._planned = warm.planned.copy()
        self._made = warm.made

    def _begin(self, s0: int, legit: int, run_start: int) -> float:
        """Start this slice's campaigns at the steady rate; skip those ending before the run.

        Returns the slice's expected fraud count.
        """
        index = s0 // self._slice_us
        expected = legit * self.rate / (1.0 - self.rate)
        starts = expected * self._share / self._mean
        for i, name in enumerate(self.names):
            rng = self._streams.generator("fraud-starts", name, self.block, index)
            n = int(starts[i]) + int(rng.random() < starts[i] - int(starts[i]))
            for _ in range(n):
                at = s0 + int(rng.random() * self._slice_us)
                if at + self._reach[i] >= run_start:
                    self._start(i, at)
        return expected

    def _warm_up(self, run_start: int) -> None:
        """Plan the ``warmup_days`` before the run: only their campaigns' later rows matter.

        The warm-up's starts are drawn at once, one stream per scenario and block
        (``("fraud-warmup", name, block, first slice)``), at the block's steady rate
        (its cardholders' mean genuine count per slice); its slices are then planned in
        order, as the run's are.
        """
        step = self._slice_us
        first = run_start - self._config.warmup_days * US_PER_DAY
        slices = np.arange(first, run_start, step, dtype=np.int64)
        expected = self._steady_legit * self.rate / (1.0 - self.rate)
        rate = expected * self._share / self._mean
        due: list[list[tuple[int, int]]] = [[] for _ in slices]
        for i, name in enumerate(self.names):
            rng = self._streams.generator("fraud-warmup", name, self.block, first // step)
            whole = int(rate[i])
            count = whole + (rng.random(len(slices)) < rate[i] - whole)
            owner = np.repeat(np.arange(len(slices)), count)
            at = slices[owner] + (rng.random(len(owner)) * step).astype(np.int64)
            reaches = at + self._reach[i] >= run_start
            for slot, when in zip(owner[reaches].tolist(), at[reaches].tolist(), strict=True):
                due[slot].append((i, when))
        for starts in due:
            for i, when in starts:
                self._start(i, when)
        # The warm-up's own rows are not the run's: each campaign goes on from its first
        # row in the run. (Taking them slice by slice, as the run does, would change
        # nothing: taking rows touches no card, and the starts above keep their order.)
        for c in self._live:
            c.pos = int(np.searchsorted(c.rows.time_us, run_start, side="left"))
        self._live = [c for c in self._live if c.pos < len(c.rows)]

    def _slice(self, s0: int, legit: int) -> FraudRows:
        s1 = s0 + self._slice_us
        expected = self._begin(s0, legit, s0)
        rng = self._streams.generator("fraud-topups", self.block, s0 // self._slice_us)
        # Genuine rows forgone while cards were in the post may have left the carry negative.
        quota = max(int(expected + self._carry), 0)
        self._carry = expected + self._carry - quota
        taken = self._gather(s1)
        attempts = 0
        while True:
            # A later campaign or a trim may have blocked a card earlier than rows taken.
            taken = self._unblocked(taken)
            fraud = fraud_count(taken)
            if fraud > quota:
                self._trim(taken, fraud - quota)
                continue
            if fraud == quota or attempts >= _TOPUP_ATTEMPTS:
                break
            attempts += 1
            live = self._start(
                self._topup_choice(rng),
                s0 + int(rng.random() * self._slice_us * 0.9),
                kind=TOPUP,
            )
            taken += self._gather(s1, only=live)
        for c, idx in taken:
            self._emitted[c.scenario] += int(np.count_nonzero(c.rows.fraud[idx]))
        self._live = [c for c in self._live if c.pos < len(c.rows)]
        return rows_of(taken)

    def _start(self, i: int, at_us: int, kind: int = STEADY) -> Live:
        """Plan, detect and label scenario ``i``'s next campaign of ``kind``, from ``at_us``."""
        name, sc = self.names[i], self._scenarios[i]
        seq = int(self._planned[i, kind])
        self._planned[i, kind] += 1
        case = case_key(name, self.block, kind, seq)
        rng = self._streams.generator("fraud-campaign", name, self.block, kind, seq)
        rows = sc.plan(self.ctx, rng, at_us)
        # Nobody has a replacement's number before it arrives: not the holder, not a thief.
        rows = rows.take(self.cards.usable_at[rows.card] <= rows.time_us)
        # Every amount respects its currency's minor unit, a plugin's too (whole yen).
        steps = self._world.merchant_step[rows.merchant]
        rows = replace(rows, amount_minor=quantise(rows.amount_minor, steps))
        keep, (cards, when) = detect(sc, rows, rng)
        self.cards.block_many(cards, when)
        if self._blocked is not None:
            self._blocked.append((cards, when))
        rows = rows.take(keep)
        rows = rows.take(np.argsort(rows.time_us, kind="stable"))
        label = self._labels(sc, rows, rng)
        live = Live(case, i, rows, label, made=self._made, kind=kind)
        self._made += 1
        self._live.append(live)
        return live

    def _labels(self, sc: Scenario[Any], rows: Campaign, rng: np.random.Generator) -> np.ndarray:
        p = sc.params
        n = len(rows)
        delay = draw_delays_us(rng, p.label_delay, n)
        never = rng.random(n) < self._config.unlabelled_share
        blocked = self.cards.block_at[rows.card] if p.blocks_card else np.full(n, NEVER)
        found = np.where(blocked == NEVER, rows.time_us, np.maximum(blocked, rows.time_us))
        return np.where(never | ~rows.fraud, -1, found + delay)

    def _gather(self, s1: int, only: Live | None = None) -> list[tuple[Live, np.ndarray]]:
        """Take every live campaign's rows before ``s1``; fraud on a blocked card is dropped."""
        out = []
        for c in [only] if only is not None else self._live:
            hi = int(np.searchsorted(c.rows.time_us, s1, side="left"))
            if hi <= c.pos:
                continue
            out.append((c, self._not_blocked(c, np.arange(c.pos, hi))))
            c.pos = hi
        return out

    def _topup_choice(self, rng: np.random.Generator) -> int:
        """A short scenario to fill a shortfall, the ones furthest below their share first."""
        deficit = np.maximum(self._share * (self._emitted.sum() + 1) - self._emitted, 0.0)
        weight = deficit * self._fast
        if weight.sum() <= 0:
            weight = self._share * self._fast
        if weight.sum() <= 0:
            weight = self._share
        return int(draw_categorical(rng.random(1), cdf(weight))[0])

    def _surplus(self, scenario: int) -> float:
        return float(self._emitted[scenario] - self._share[scenario] * self._emitted.sum())

    def _not_blocked(self, c: Live, idx: np.ndarray) -> np.ndarray:
        """The rows ``idx`` of ``c`` without its fraud on cards blocked by then.

        Rows on a replacement still in the post (a block decided since) go too.
        """
        card, t = c.rows.card[idx], c.rows.time_us[idx]
        blocked = self.cards.block_at[card] <= t
        waiting = self.cards.usable_at[card] > t
        return idx[~((c.rows.fraud[idx] & blocked) | waiting)]

    def forgo(self, rows: int) -> None:
        """``rows`` genuine transactions counted in a slice's ``legit`` did not happen.

        They were on cards in the post; the next slices' quota makes up for them, so the
        fraud rate by count stays the target.
        """
        self._carry -= rows * self.rate / (1.0 - self.rate)

    def _unblocked(self, taken: list[tuple[Live, np.ndarray]]) -> list[tuple[Live, np.ndarray]]:
        return [(c, self._not_blocked(c, idx)) for c, idx in taken]

    def _trim(self, taken: list[tuple[Live, np.ndarray]], excess: int) -> None:
        """Stop the newest campaigns' last rows of the slice until ``excess`` fraud rows are gone.

        A stopped card of a steady campaign was detected sooner: it is blocked at its
        first dropped row, and nothing of the campaign happens on it afterwards; the
        campaign's other cards go on (one card's detection does not reveal the others).
        A top-up, started only to fill the slice, was just smaller: it stops whole and
        blocks nothing. So does a campaign whose scenario blocks no card (the holder's
        own fraud).
        """
        # Scenarios whose rows come within a day give way first: a top-up can make them
        # up, while a slow scenario's (a breach used weeks later) trimmed rows are lost
        # to it for good. Then scenarios above their share, newest campaigns first.
        order = sorted(
            range(len(taken)),
            key=lambda j: (
                self._fast[taken[j][0].scenario] < _FAST,
                -self._surplus(taken[j][0].scenario),
                -taken[j][0].made,
            ),
        )
        for j in order:
            if excess <= 0:
                return
            c, idx = taken[j]
            frauds = idx[c.rows.fraud[idx]]
            drop = min(excess, len(frauds))
            if drop == 0:
                continue
            cut = int(frauds[len(frauds) - drop])
            dropped = idx[idx >= cut]
            if c.kind == STEADY and self._scenarios[c.scenario].params.blocks_card:
                hit = dropped[c.rows.fraud[dropped]]
                cards, first = np.unique(c.rows.card[hit], return_index=True)
                for card, row in zip(cards.tolist(), hit[first].tolist(), strict=True):
                    self.cards.block(int(card), int(c.rows.time_us[row]))
            else:
                c.pos = len(c.rows)
            taken[j] = (c, idx[idx < cut])
            excess -= drop
