"""A run's slices of simulated time, computed in this process.

The discrete-event :class:`~simulator.core.environment.Environment` schedules one event per
time slice; handling it computes every block of cardholders for that slice, plans each
block's fraud and assembles the slice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa

from runtime.units import from_us, to_us
from simulator.core.environment import Environment
from simulator.core.seeding import Streams
from simulator.model.assemble import Assembled, Assembler
from simulator.model.behaviour import SliceContext, simulate_block
from simulator.model.rows import TableRows
from simulator.model.travel import Whereabouts
from simulator.settings.run import RunSpec
from simulator.world.build import World

__all__ = ["LocalSlices", "Slice"]


@dataclass(frozen=True)
class Slice(Assembled):
    """One slice of simulated time and its transactions, sorted by event time.

    An :class:`~simulator.model.assemble.Assembled` slice with the span it covers.

    The rows' Arrow table is built when first asked for (:attr:`table`, then kept), or a
    file's worth at a time (:meth:`tables`, nothing kept), which is how the batch job
    lands a large slice without holding all its strings at once.
    """

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, out: Assembled, start: dt.datetime, end: dt.datetime) -> Slice:
        """``out`` as the slice from ``start`` to ``end``."""
        return cls(
            **{f.name: getattr(out, f.name) for f in dataclasses.fields(out)}, start=start, end=end
        )

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


class LocalSlices:
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
            ready.append(Slice.of(out, at, at + step))
            if due(at + step):
                env.schedule(to_us(at + step), on_slice, name="slice")

        if due(self.start):
            env.schedule(to_us(self.start), on_slice, name="slice")
        while env.peek() is not None:
            env.step()
            while ready:
                yield ready.popleft()
