"""The event source: slices in simulated-time order, as Arrow tables.

The discrete-event :class:`~simulator.core.environment.Environment` schedules one event per
time slice; handling it computes every block of cardholders for that slice, plans each
block's fraud and assembles the slice. Both the Parquet job and the Kafka stream consume
the same iterator, so they see the same events in the same order for a seed and
configuration.

With ``workers > 1`` the run is dealt to lanes: worker processes that each simulate
a sub-shard of the blocks end to end (genuine rows, fraud, links), as a shard would.
This process merges the lanes' slices by event time and position, so the rows are the
single process's, byte for byte, and every stage but the final merge runs on every
core.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import pyarrow as pa

from runtime.units import from_us, to_us
from simulator.core.environment import Environment
from simulator.core.seeding import Streams
from simulator.fraud.cards import CardRegistry
from simulator.fraud.model import card_registry
from simulator.model.assemble import Assembler
from simulator.model.behaviour import SliceContext, simulate_block
from simulator.model.rows import Rows, SliceRows, TableRows
from simulator.model.travel import Whereabouts
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.world.build import World

__all__ = ["Slice", "SliceSource"]


@dataclass(frozen=True)
class Slice:
    """One slice of simulated time and its transactions, sorted by event time.

    The rows' Arrow table is built when first asked for (:attr:`table`, then kept), or a
    file's worth at a time (:meth:`tables`, nothing kept), which is how the batch job
    lands a large slice without holding all its strings at once.
    """

    start: dt.datetime
    end: dt.datetime
    rows: Rows
    card: np.ndarray
    key: np.ndarray
    labels: pa.Table
    label_key: np.ndarray
    new_cards: pa.StringArray

    @functools.cached_property
    def table(self) -> pa.Table:
        """The slice's transactions, built once and kept."""
        return self.rows.table()

    def tables(self, max_rows: int) -> Iterator[pa.Table]:
        """The slice's transactions in tables of at most ``max_rows`` rows, in order.

        Each is built when reached and is not kept (but for an empty slice, one empty
        table). Cutting the slice at ``max_rows`` from its start gives the same tables
        as cutting :attr:`table`.
        """
        whole = self.__dict__.get("table")
        rows = TableRows(whole) if whole is not None else self.rows
        n = rows.num_rows
        for lo in range(0, max(n, 1), max_rows):
            yield rows.table(lo, min(lo + max_rows, n))


class _Local:
    """Slices of some blocks, computed in this process."""

    def __init__(
        self,
        world: World,
        spec: RunSpec,
        streams: Streams,
        start: dt.datetime,
        end: dt.datetime | None,
        blocks: Sequence[int],
    ) -> None:
        self.world = world
        self.spec = spec
        self.streams = streams
        self.start = start
        self.end = end
        self.blocks = blocks
        self.assembler = Assembler(world, spec, streams, blocks)
        self.where = Whereabouts(world, spec.travel, streams)

    def __iter__(self) -> Iterator[Slice]:
        step = dt.timedelta(hours=self.spec.slice_hours)
        env = Environment(to_us(self.start))
        ready: deque[Slice] = deque()

        def due(start: dt.datetime) -> bool:
            return self.end is None or start < self.end

        def on_slice(env: Environment) -> None:
            at = from_us(env.now_us)
            ctx = SliceContext.build(self.world, self.spec, at)
            out = self.assembler.table(
                [simulate_block(self.world, self.streams, self.where, ctx, b) for b in self.blocks],
                at,
            )
            ready.append(
                Slice(
                    at,
                    at + step,
                    out.rows,
                    out.card,
                    out.key,
                    out.labels,
                    out.label_key,
                    out.new_cards,
                )
            )
            if due(at + step):
                env.schedule(to_us(at + step), on_slice, name="slice")

        if due(self.start):
            env.schedule(to_us(self.start), on_slice, name="slice")
        while env.peek() is not None:
            env.step()
            while ready:
                yield ready.popleft()


@dataclass(frozen=True)
class _Sent:
    """A lane's slice as it crosses to the merging process: its rows as numbers.

    The strings are built once, after the merge, as a single process builds them: a
    lane that sent Arrow tables would build them, pickle them, and the merge would
    copy them again.
    """

    start: dt.datetime
    end: dt.datetime
    numbers: dict[str, np.ndarray]
    key: np.ndarray
    labels: pa.Table
    label_key: np.ndarray
    new_cards: pa.StringArray

    @classmethod
    def of(cls, part: Slice) -> _Sent:
        rows = part.rows
        if not isinstance(rows, SliceRows):
            raise TypeError(f"a lane's slice has numeric rows, not {type(rows).__name__}")
        return cls(
            part.start,
            part.end,
            rows.numbers,
            part.key,
            part.labels,
            part.label_key,
            part.new_cards,
        )


def _lane_main(conn: Connection, make: Callable[[], _Local]) -> None:
    """A lane's process: send each slice, then the card registry's state, or the error."""
    try:
        local = make()
        for part in local:
            conn.send(("slice", _Sent.of(part)))
        conn.send(("cards", local.assembler.cards.state()))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class _Lanes:
    """Lanes, each simulating a sub-shard of the blocks; merged here.

    The first lane runs in this process, the others in worker processes: this process
    would otherwise wait while they simulate, and its own lane's slices need no trip
    through a pipe.
    """

    def __init__(
        self, world: World, lanes: list[Callable[[], _Local]], registry: CardRegistry
    ) -> None:
        self._world = world
        self._lanes = lanes
        self._registry_base = registry
        self._procs: list[BaseProcess] = []
        self._conns: list[Connection] = []
        self._inline: _Local | None = None
        self._inline_slices: Iterator[Slice] = iter(())
        n = len(world.cards)
        #: Per lane, this process's index of each of the lane's replacement cards.
        self._index = [np.zeros(0, dtype=np.int64) for _ in lanes]
        self._issued = n
        #: Ids of the cards as this process numbers them (the world's, then replacements).
        self._card_ids: pa.StringArray = world.cards.ids
        self.cards: CardRegistry | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        for lane in self._lanes[1:]:
            mine, theirs = context.Pipe(duplex=False)
            proc = context.Process(target=_lane_main, args=(theirs, lane), daemon=True)
            proc.start()
            theirs.close()
            self._procs.append(proc)
            self._conns.append(mine)
        # Built after the fork, so the workers do not inherit this lane's state.
        self._inline = self._lanes[0]()
        self._inline_slices = iter(self._inline)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    def _receive(self, k: int) -> tuple[str, Any]:
        if k == 0:  # this process's lane
            part = next(self._inline_slices, None)
            if part is None:
                assert self._inline is not None
                return "cards", self._inline.assembler.cards.state()
            return "slice", _Sent.of(part)
        try:
            kind, value = self._conns[k - 1].recv()
        except EOFError:
            code = self._procs[k - 1].exitcode
            raise RuntimeError(f"worker {k} stopped (exit code {code})") from None
        if kind == "error":
            raise RuntimeError(f"worker {k} failed:\n{value}")
        return kind, value

    def __iter__(self) -> Iterator[Slice]:
        while True:
            got = [self._receive(k) for k in range(len(self._lanes))]
            kinds = {kind for kind, _ in got}
            if kinds == {"cards"}:
                self.cards = self._registry([state for _, state in got])
                return
            if kinds != {"slice"}:
                raise RuntimeError("workers ended their runs at different slices")
            yield self._merge([part for _, part in got])

    def _cards(self, k: int, part: _Sent) -> np.ndarray:
        """Lane ``k``'s card indices as this process numbers them."""
        issued = len(part.new_cards)
        if issued:
            fresh = np.arange(self._issued, self._issued + issued, dtype=np.int64)
            self._index[k] = np.concatenate([self._index[k], fresh])
            self._issued += issued
            self._card_ids = pa.concat_arrays([self._card_ids, part.new_cards])
        n = len(self._world.cards)
        card = part.numbers["card"].astype(np.int64)
        reissued = card >= n
        card[reissued] = self._index[k][card[reissued] - n]
        return card

    def _merge(self, parts: list[_Sent]) -> Slice:
        """The lanes' slices as one, ordered as a single process orders it.

        Merged as numbers; the strings are built from them a file at a time, as in a
        single process.
        """
        assert self._inline is not None
        card = np.concatenate([self._cards(k, p) for k, p in enumerate(parts)])
        key = np.concatenate([p.key for p in parts])
        time = np.concatenate([p.numbers["time_us"] for p in parts])
        order = np.lexsort((key, time))
        numbers = {
            name: np.concatenate([p.numbers[name] for p in parts])[order]
            for name in parts[0].numbers
        }
        numbers["card"] = card = card[order]
        labels = pa.concat_tables([p.labels for p in parts])
        label_key = np.concatenate([p.label_key for p in parts])
        by_label = np.lexsort(
            (
                label_key,
                _micros(labels.column("event_time")),
                _micros(labels.column("label_time")),
            )
        )
        first = parts[0]
        return Slice(
            first.start,
            first.end,
            SliceRows(self._inline.assembler.lookups, self._card_ids, numbers),
            card,
            key[order],
            labels.take(pa.array(by_label)).combine_chunks(),
            label_key[by_label],
            pa.concat_arrays([p.new_cards for p in parts]),
        )

    def _registry(self, states: list[dict[str, np.ndarray]]) -> CardRegistry:
        """The lanes' card registries as one, indexed as the merged slices are."""
        registry = self._registry_base
        for state, index in zip(states, self._index, strict=True):
            registry.absorb(state, index)
        return registry


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy()


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
        start = start.astimezone(dt.UTC)
        end = end.astimezone(dt.UTC) if end is not None else None
        blocks = shard.blocks(world.n_blocks)
        lanes = max(min(workers, len(blocks)), 1)
        self._local: _Local | None = None
        self._lanes: _Lanes | None = None
        if lanes == 1:
            self._local = _Local(world, spec, seed.streams, start, end, blocks)
        else:
            self._lanes = _Lanes(
                world,
                [
                    functools.partial(
                        _Local, world, spec, seed.streams, start, end, blocks[k::lanes]
                    )
                    for k in range(lanes)
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
