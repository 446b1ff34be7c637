"""The event source: slices in simulated-time order, as Arrow tables.

Both the Parquet job and the Kafka stream consume the same iterator, so they see the
same events in the same order for a seed and configuration. The slices are computed in
this process (:class:`~simulator.model.slices.LocalSlices`) or, with ``workers > 1``,
dealt to lanes of worker processes and merged (:class:`~simulator.model.lanes.Lanes`),
with the same rows either way.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator

from simulator.fraud.cards import CardRegistry
from simulator.fraud.model import card_registry
from simulator.model.lanes import INLINE_WEIGHT, Lanes, deal
from simulator.model.slices import LocalSlices, Slice
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.world.build import World

__all__ = ["SliceSource"]


class SliceSource:
    """Iterates the run's slices, in this process or dealt to worker processes.

    Args:
        world: The built world.
        spec: What the engine reads besides the world (slices, purchases, trips, fraud).
        seed: The run's seed; it must be the one the world was built from.
        start: First instant simulated (aware UTC, at a slice boundary).
        end: Instant where the run stops (exclusive); None runs forever.
        workers: Processes simulating; 1 computes in this process. More deal the
            blocks to that many lanes (at most one per block); the slices are the same.
        shard: The shard of the run to simulate (its cardholder blocks and their fraud);
            by default the whole run.
        inline: This process's lane's share of the blocks against a worker lane's
            (:func:`~simulator.model.lanes.deal`): less when this process does more per
            row than landing it. The slices are the same for any share.

    Raises:
        ValueError: For naive times, or a seed other than the world's.
    """

    def __init__(
        self,
        world: World,
        spec: RunSpec,
        seed: RunSeed,
        start: dt.datetime,
        end: dt.datetime | None,
        workers: int = 1,
        shard: Shard = WHOLE,
        inline: float = INLINE_WEIGHT,
    ) -> None:
        if start.tzinfo is None or (end is not None and end.tzinfo is None):
            raise ValueError("start and end must be timezone-aware")
        if seed.entropy != world.seed:
            raise ValueError(f"the world was built from seed {world.seed}, not {seed.entropy}")
        self._world = world
        self._spec = spec
        self._streams = seed.streams
        start = start.astimezone(dt.UTC)
        end = end.astimezone(dt.UTC) if end is not None else None
        blocks = shard.blocks(world.n_blocks)
        lanes = max(min(workers, len(blocks)), 1)
        self._local: LocalSlices | None = None
        self._lanes: Lanes | None = None
        if lanes == 1:
            self._local = LocalSlices(world, spec, seed.streams, start, end, blocks)
        else:
            self._lanes = Lanes(
                world,
                [
                    functools.partial(LocalSlices, world, spec, seed.streams, start, end, mine)
                    for mine in deal(blocks, lanes, inline)
                ],
                card_registry(world, spec.fraud, seed.streams),
            )
        self._entered = False

    @property
    def cards(self) -> CardRegistry:
        """Blocks and reissues (the world's cards, then replacements).

        In this process: so far. On workers: at the end of the run.

        Raises:
            RuntimeError: On workers, before the run has ended.
        """
        if self._local is not None:
            return self._local.assembler.cards
        assert self._lanes is not None
        if self._lanes.cards is None:
            raise RuntimeError("a run on workers knows its cards at its end")
        return self._lanes.cards

    @property
    def world(self) -> World:
        """The world whose slices this source yields."""
        return self._world

    def __enter__(self) -> SliceSource:
        """Start the worker processes (if any) now, before the caller starts threads.

        Workers are forked so they inherit the built world; forking before any other
        thread exists (Parquet writers, Kafka clients) keeps the children free of locks
        held by threads that do not exist in them.
        """
        if self._lanes is not None and not self._entered:
            self._lanes.start()
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the worker processes; idempotent."""
        if self._lanes is not None:
            self._lanes.stop()

    def __iter__(self) -> Iterator[Slice]:
        """Yield slices in order (use inside ``with`` when ``workers > 1``)."""
        if self._local is not None:
            yield from self._local
            return
        if not self._entered:
            raise RuntimeError("SliceSource with workers > 1 must be entered (with ...) first")
        assert self._lanes is not None
        yield from self._lanes
