"""Small simulated runs shared by the fraud tests, each computed once per session.

Building a world and planning the fraud warm-up cost seconds; the fraud test modules
ask for the same few runs, so they are cached here by their settings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from runtime.units import to_us
from simulator.fraud.cards import CardRegistry
from simulator.model.engine import SliceSource
from simulator.settings.loading import load_settings
from simulator.settings.models import Settings
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.world.build import World, build_world


@dataclass(frozen=True)
class Built:
    """A world and the settings it was built from (their seed is the world's)."""

    settings: Settings
    world: World

    @property
    def seed(self) -> RunSeed:
        return RunSeed.from_settings(self.settings)

    @property
    def spec(self) -> RunSpec:
        return RunSpec.from_settings(self.settings)


@dataclass(frozen=True)
class Run:
    """A finished run: every slice's rows and labels, and the card registry at the end."""

    settings: Settings
    world: World
    start: dt.datetime
    end: dt.datetime
    table: pa.Table
    card: np.ndarray
    labels: pa.Table
    cards: CardRegistry
    new_cards: pa.StringArray

    @property
    def start_us(self) -> int:
        return to_us(self.start)

    @property
    def end_us(self) -> int:
        return to_us(self.end)

    def column(self, name: str) -> np.ndarray:
        """A column as numpy (timestamps as int64 microseconds, strings as objects)."""
        col = self.table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        return col.to_numpy(zero_copy_only=False)


@cache
def built(cardholders: int, cache_dir: Path, *overrides: str) -> Built:
    """The world of ``cardholders`` (seed 7) with ``overrides`` applied to its settings."""
    block = max(1024, min(65536, cardholders // 4))
    settings = load_settings(
        environ=False,
        overrides=[
            f"population.cardholders={cardholders}",
            f"population.block_size={block}",
            "days=1",
            "seed=7",
            f"cache_dir={cache_dir}",
            *overrides,
        ],
    )
    return Built(settings, build_world(settings, RunSeed.from_settings(settings)))


def with_fraud(base: Built, **changes: object) -> Built:
    """``base`` with other fraud settings (the fraud model does not shape the world)."""
    fraud = base.settings.fraud.model_copy(update=changes)
    fraud = type(fraud).model_validate(fraud.model_dump())
    return Built(base.settings.model_copy(update={"fraud": fraud}), base.world)


def simulate(b: Built, days: float, workers: int = 1, shard: Shard = WHOLE) -> Run:
    """Run ``b`` (or one shard of it) from its start date for ``days``; slices concatenated."""
    start = dt.datetime.combine(b.settings.start_date, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=days)
    tables, cards, labels, new_cards = [], [], [], []
    with SliceSource(b.world, b.spec, b.seed, start, end, workers, shard) as source:
        for s in source:
            tables.append(s.table)
            cards.append(s.card)
            labels.append(s.labels)
            new_cards.append(s.new_cards)
        registry = source.cards
    return Run(
        settings=b.settings,
        world=b.world,
        start=start,
        end=end,
        table=pa.concat_tables(tables),
        card=np.concatenate(cards),
        labels=pa.concat_tables(labels),
        cards=registry,
        new_cards=pa.concat_arrays(new_cards),
    )


@cache
def default_run(cache_dir: Path, cardholders: int, days: int) -> Run:
    """The default settings (seed 7) for ``cardholders`` over ``days``, cached."""
    return simulate(built(cardholders, cache_dir), days)


def usd(run: Run) -> np.ndarray:
    """Each row's amount in US dollars."""
    rates = dict(zip(run.world.currencies, run.world.currency_scale.tolist(), strict=True))
    amount = run.table.column("amount").cast(pa.float64()).to_numpy()
    currency = run.column("currency")
    names, inverse = np.unique(currency, return_inverse=True)
    per_usd = np.array([rates[c] for c in names])
    return amount / per_usd[inverse]
