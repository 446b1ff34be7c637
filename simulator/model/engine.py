"""The event source: slices in simulated-time order, as Arrow tables.

The discrete-event :class:`~simulator.core.environment.Environment` schedules one event per
time slice; handling it computes every block of cardholders for that slice (in this
process or in a pool of workers), merges the blocks and links card histories. Both
the Parquet job and the Kafka stream consume the same iterator, so they see the same
events in the same order for a seed and configuration.
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from runtime.units import from_us, to_us
from simulator.core.environment import Environment
from simulator.core.seeding import Streams
from simulator.fraud.cards import CardRegistry
from simulator.model.assemble import Assembler
from simulator.model.behaviour import BlockEvents, SliceContext, simulate_block
from simulator.model.travel import Whereabouts
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.world.build import World

__all__ = ["Slice", "SliceSource"]

#: A slice's block results, computed on demand (in process) or awaited (from workers).
Pending = Callable[[], "list[BlockEvents]"]


@dataclass(frozen=True)
class Slice:
    """One slice of simulated time and its transactions, sorted by event time."""

    start: dt.datetime
    end: dt.datetime
    table: pa.Table
    card: np.ndarray
    labels: pa.Table
    new_cards: pa.StringArray


class _Blocks:
    """Computes blocks of a slice: the world, the spec, the streams and the trips drawn."""

    def __init__(self, world: World, spec: RunSpec, streams: Streams) -> None:
        self.world = world
        self.spec = spec
        self.streams = streams
        self.where = Whereabouts(world, spec.travel, streams)

    def simulate(self, start: dt.datetime, blocks: Sequence[int]) -> list[BlockEvents]:
        ctx = SliceContext.build(self.world, self.spec, start)
        return [simulate_block(self.world, self.streams, self.where, ctx, b) for b in blocks]


# Worker-side state, inherited through fork (or rebuilt by the initializer).
_WORKER: _Blocks | None = None


def _worker_init(world: World, spec: RunSpec, streams: Streams) -> None:
    global _WORKER
    _WORKER = _Blocks(world, spec, streams)


def _worker_ping() -> None:
    """Nothing: submitted once per worker to start the processes."""


def _worker_simulate(start: dt.datetime, blocks: Sequence[int]) -> list[BlockEvents]:
    if _WORKER is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker was not initialised")
    return _WORKER.simulate(start, blocks)


class SliceSource:
    """Iterates the run's slices, optionally computing blocks in worker processes.

    Args:
        world: The built world.
        spec: What the engine reads besides the world (slices, purchases, trips, fraud).
        seed: The run's seed; it must be the one the world was built from.
        start: First instant simulated (aware UTC, at a slice boundary).
        end: Instant where the run stops (exclusive); None runs forever.
        workers: Processes computing blocks; 1 computes in this process.
        shard: The shard of the run to simulate (its cardholder blocks and their fraud);
            by default the whole run.

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
    ) -> None:
        if start.tzinfo is None or (end is not None and end.tzinfo is None):
            raise ValueError("start and end must be timezone-aware")
        if seed.entropy != world.seed:
            raise ValueError(f"the world was built from seed {world.seed}, not {seed.entropy}")
        self._world = world
        self._spec = spec
        self._streams = seed.streams
        self._start = start.astimezone(dt.UTC)
        self._end = end.astimezone(dt.UTC) if end is not None else None
        self._hours = spec.slice_hours
        self._workers = workers
        self._blocks = shard.blocks(world.n_blocks)
        self._assembler = Assembler(world, spec, seed.streams, self._blocks)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def cards(self) -> CardRegistry:
        """Blocks and reissues so far (the world's cards, then replacements)."""
        return self._assembler.cards

    @property
    def world(self) -> World:
        """The world whose slices this source yields."""
        return self._world

    def _chunks(self) -> list[range]:
        n = len(self._blocks)
        parts = max(min(n, self._workers * 2), 1)
        bounds = [round(i * n / parts) for i in range(parts + 1)]
        return [self._blocks[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    def __enter__(self) -> SliceSource:
        """Start the worker processes (if any) now, before the caller starts threads.

        Workers are forked so they inherit the built world; forking before any other
        thread exists (Parquet writers, Kafka clients) keeps the children free of locks
        held by threads that do not exist in them.
        """
        if self._workers > 1 and self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_worker_init,
                initargs=(self._world, self._spec, self._streams),
            )
            # Processes start on the first submission: make it now.
            for f in [self._pool.submit(_worker_ping) for _ in range(self._workers)]:
                f.result()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the worker processes; idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __iter__(self) -> Iterator[Slice]:
        """Yield slices in order (use inside ``with`` when ``workers > 1``)."""
        if self._workers == 1:
            blocks = _Blocks(self._world, self._spec, self._streams)
            every = self._blocks

            def compute(start: dt.datetime) -> Pending:
                return lambda: blocks.simulate(start, every)

            yield from self._run(compute)
            return
        if self._pool is None:
            raise RuntimeError("SliceSource with workers > 1 must be entered (with ...) first")
        pool, chunks = self._pool, self._chunks()

        def submit(start: dt.datetime) -> Pending:
            futures = [pool.submit(_worker_simulate, start, c) for c in chunks]
            return lambda: [events for f in futures for events in f.result()]

        yield from self._run(submit)

    def _run(self, submit: Callable[[dt.datetime], Pending]) -> Iterator[Slice]:
        step = dt.timedelta(hours=self._hours)
        env = Environment(to_us(self._start))
        pending: deque[tuple[dt.datetime, Pending]] = deque()
        ready: deque[Slice] = deque()

        def due(start: dt.datetime) -> bool:
            return self._end is None or start < self._end

        def on_slice(env: Environment) -> None:
            start = from_us(env.now_us)
            # Keep the next slice in flight while this one is assembled.
            while len(pending) < 2 and due(start + step * len(pending)):
                at = start + step * len(pending)
                pending.append((at, submit(at)))
            at, result = pending.popleft()
            out = self._assembler.table(result(), at)
            ready.append(Slice(at, at + step, out.table, out.card, out.labels, out.new_cards))
            if due(start + step):
                env.schedule(to_us(start + step), on_slice, name="slice")

        if due(self._start):
            env.schedule(to_us(self._start), on_slice, name="slice")
        while env.peek() is not None:
            env.step()
            while ready:
                yield ready.popleft()
