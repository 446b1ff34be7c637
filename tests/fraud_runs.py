"""Small simulated runs shared by the fraud tests, each computed once per session.

Building a world and planning the fraud warm-up cost seconds; the fraud test modules
ask for the same few runs, so they are cached here by their settings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from simulator.core.seeding import Streams
from simulator.fraud.cards import CardRegistry
from simulator.model.engine import SliceSource
from simulator.settings.loading import load_settings
from simulator.world.build import World, build_world

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


@dataclass(frozen=True)
class Run:
    """A finished run: every slice's rows and labels, and the card registry at the end."""

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
        return int(self.start.timestamp() * 1_000_000)

    def column(self, name: str) -> np.ndarray:
        """A column as numpy (timestamps as int64 microseconds, strings as objects)."""
        col = self.table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        return col.to_numpy(zero_copy_only=False)


@cache
def world(cardholders: int, cache_dir: Path, *overrides: str) -> World:
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
    assert settings.seed is not None
    return build_world(settings, Streams(settings.seed))


def with_fraud(base: World, **changes: object) -> World:
    """``base`` with other fraud settings (the fraud model does not shape the world)."""
    fraud = base.settings.fraud.model_copy(update=changes)
    fraud = type(fraud).model_validate(fraud.model_dump())
    return dataclasses.replace(base, settings=base.settings.model_copy(update={"fraud": fraud}))


def simulate(w: World, days: float, workers: int = 1) -> Run:
    """Run ``w`` from its start date for ``days`` and concatenate the slices."""
    start = dt.datetime.combine(w.settings.start_date, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=days)
    tables, cards, labels, new_cards = [], [], [], []
    with SliceSource(w, start, end, workers=workers) as source:
        for s in source:
            tables.append(s.table)
            cards.append(s.card)
            labels.append(s.labels)
            new_cards.append(s.new_cards)
        registry = source.cards
    return Run(
        world=w,
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
    return simulate(world(cardholders, cache_dir), days)


def usd(run: Run) -> np.ndarray:
    """Each row's amount in US dollars."""
    rates = run.world.settings.currency_per_usd
    amount = run.table.column("amount").cast(pa.float64()).to_numpy()
    currency = run.column("currency")
    names, inverse = np.unique(currency, return_inverse=True)
    per_usd = np.array([float(rates[c]) for c in names])
    return amount / per_usd[inverse]
