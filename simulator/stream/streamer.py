"""``txnsim stream``: release the simulation's events onto a publisher in simulated time.

Three stages, bounded end to end:

1. the simulation (a :class:`~simulator.model.engine.SliceSource`) runs in a thread and its
   slices are encoded to Avro in chunks;
2. chunks wait in a bounded queue, so the simulation can run ahead of the release
   schedule by at most ``stream.queue_chunks`` chunks (and stalls when the broker does);
3. the releaser waits on a :class:`~simulator.stream.clock.SimClock` until each event is due,
   then hands every due record to the publisher, reporting how far behind schedule it is.

The records and their order are those of ``txnsim generate`` for the same seed and
settings, whatever the speed: pacing only decides *when* they are handed over.

Fraud labels go to a second publisher (the labels topic), each at its ``label_time`` by
the same clock, interleaved with the transactions. A slice's labels are decided with the
slice and are always later than the transactions they label, so they wait in a buffer
sorted by label time (stable: ties keep the order they were decided in) until a chunk
reaches their time. When both are due at once, the transactions are handed over first,
so a label never precedes its transaction. Labels due at or after the stream's end are
never released (the issuer learns them after the run); in a live run, labels of
transactions before the release start are not released either, as those transactions
were not. With ``labels="separate"`` (the default) the transactions are written with
:func:`~schemas.event.public_transaction_schema`, without the label fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.units import from_us, to_us
from schemas.framing import Framing
from schemas.partitioner import partitions_for
from simulator import metrics
from simulator.model.engine import SliceSource
from simulator.model.slices import Slice
from simulator.stream.chunks import (
    Chunk,
    ChunkEncoder,
    LabelsMode,
    PendingLabels,
    count_labels,
    count_released,
    label_schema,
)
from simulator.stream.clock import SimClock, WallSource
from simulator.stream.progress import Progress
from simulator.stream.publishers import Publisher
from simulator.world.build import World

__all__ = ["Checkpoints", "StreamStats", "Streamer"]

log = logging.getLogger("txnsim.stream")

T = TypeVar("T")


class Checkpoints(Protocol):
    """Where the stream commits what it handed over (a transactional session)."""

    def due(self, simulated_us: int | None) -> bool:
        """Whether the open transaction should be committed now."""
        ...

    def mark(self, simulated_us: int | None) -> None:
        """Note the simulated time of the first record of the open transaction."""
        ...

    async def commit(self, progress: Progress) -> None:
        """Commit everything handed over so far, with ``progress``."""
        ...


@dataclass
class StreamStats:
    """Live figures of a stream (read by progress logs and metrics)."""

    released: int = 0
    labels_released: int = 0
    simulated_until_us: int | None = None
    lag_s: float = 0.0
    max_lag_s: float = 0.0
    stopped_early: bool = False
    seconds: float = 0.0
    #: Records and labels regenerated but not sent, because a resumed run had them.
    skipped: int = 0
    labels_skipped: int = 0

    def progress(self, *, finished: bool = False) -> Progress:
        """The cumulative figures as a progress record."""
        return Progress(
            records=self.released,
            labels=self.labels_released,
            simulated_until_us=self.simulated_until_us,
            finished=finished,
        )


class Streamer:
    """Streams the slices of an entered :class:`SliceSource` to a started publisher.

    Args:
        world: The built world (for card ids and partitions).
        source: The slice source, already entered.
        publisher: The destination of the transactions, already started.
        clock: Pacing clock.
        wall: Wall source, for progress intervals.
        labels_publisher: The destination of the fraud labels, already started; None
            releases no labels.
        labels: ``separate``: transactions without the label fields (the public schema);
            ``inline``: with them (the full schema).
        end_us: Simulated instant where the stream ends: labels due then or later are not
            released. None: the end of the last slice.
        chunk_rows: Rows encoded together.
        queue_chunks: Encoded chunks allowed to wait.
        skip_before_us: Events before this simulated instant are not released (live start).
        progress_every_s: Wall seconds between progress lines.
        checkpoints: Where to commit what was handed over (exactly-once delivery), at
            the bounds it sets and at the end; None: the publishers' flush is the end.
        resume: Committed progress of an earlier run of this stream: its transactions
            and labels are regenerated but not sent, and the figures continue from it.
        framing: How transaction values are framed (raw Avro by default, or the
            Confluent wire format with a registered schema id); ``label_framing`` for labels.
    """

    def __init__(
        self,
        world: World,
        source: SliceSource,
        publisher: Publisher,
        clock: SimClock,
        wall: WallSource,
        *,
        labels_publisher: Publisher | None = None,
        labels: LabelsMode = "separate",
        end_us: int | None = None,
        chunk_rows: int = 4096,
        queue_chunks: int = 8,
        skip_before_us: int | None = None,
        progress_every_s: float = 5.0,
        checkpoints: Checkpoints | None = None,
        resume: Progress | None = None,
        framing: Framing | None = None,
        label_framing: Framing | None = None,
    ) -> None:
        self._world = world
        self._source = source
        self._publisher = publisher
        self._labels_publisher = labels_publisher
        self._clock = clock
        self._wall = wall
        self._end_us = end_us
        self._chunk_rows = chunk_rows
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=queue_chunks)
        self._skip_before_us = skip_before_us
        self._progress_every_s = progress_every_s
        self._encoder = ChunkEncoder(
            labels,
            None if labels_publisher is None else labels_publisher.partitions,
            framing,
            label_framing,
        )
        self._checkpoints = checkpoints
        self.stats = StreamStats()
        self._skip_records = self._skip_labels = 0
        if resume is not None:
            self._skip_records, self._skip_labels = resume.records, resume.labels
            self.stats.released, self.stats.labels_released = resume.records, resume.labels
            self.stats.simulated_until_us = resume.simulated_until_us

    async def run(self, stop: asyncio.Event) -> StreamStats:
        """Release every event (or until ``stop`` is set), flush, and return the figures."""
        began = self._wall.now()
        producer = asyncio.create_task(self._produce(), name="txnsim-simulate")
        try:
            await self._release(stop, producer)
            await self._publisher.flush()
            if self._labels_publisher is not None:
                await self._labels_publisher.flush()
            if self._checkpoints is not None:
                finished = not self.stats.stopped_early
                await self._checkpoints.commit(self.stats.progress(finished=finished))
            self.stats.seconds = self._wall.now() - began
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        return self.stats

    async def _produce(self) -> None:
        partitions = self._publisher.partitions
        card_partition = partitions_for(self._world.cards.ids, partitions)
        pending = PendingLabels(label_schema().arrow)
        skip = self._skip_before_us
        slices = iter(self._source)
        while True:
            part = await asyncio.to_thread(_next_built, slices)
            if part is None:
                break
            if len(part.new_cards):
                # Replacement cards are appended after the ones known so far.
                extra = partitions_for(part.new_cards, partitions)
                card_partition = np.concatenate([card_partition, extra])
            table, card = part.table, part.card
            if len(card) and int(card.max()) >= len(card_partition):
                raise RuntimeError(
                    f"slice at {part.start.isoformat()} uses card index {int(card.max())}, "
                    f"but only {len(card_partition)} cards were announced"
                )
            if self._labels_publisher is not None:
                labels = part.labels
                if skip is not None and labels.num_rows:
                    seen = pc.greater_equal(labels.column("event_time").cast(pa.int64()), skip)
                    labels = labels.filter(seen)
                pending.add(labels)
            event_us = table.column("event_time").cast(pa.int64()).to_numpy()
            if skip is not None:
                first = int(np.searchsorted(event_us, skip, side="left"))
                table, card, event_us = table.slice(first), card[first:], event_us[first:]
            slice_end = to_us(part.end)
            horizon = slice_end if self._end_us is None else min(slice_end, self._end_us)
            count = table.num_rows
            for lo in range(0, max(count, 1), self._chunk_rows):
                hi = min(lo + self._chunk_rows, count)
                # Labels before the next chunk's first transaction are released with this one.
                until = min(int(event_us[hi]), horizon) if hi < count else horizon
                due, label_us = pending.pop_before(until)
                if hi == lo and not len(label_us):
                    continue
                chunk = await asyncio.to_thread(
                    self._encoder.encode,
                    table.slice(lo, hi - lo),
                    event_us[lo:hi],
                    card_partition[card[lo:hi]],
                    due,
                    label_us,
                )
                await self._queue.put(chunk)
        await self._queue.put(None)

    async def _release(self, stop: asyncio.Event, producer: asyncio.Task[None]) -> None:
        clock, stats = self._clock, self.stats
        next_progress = self._wall.now() + self._progress_every_s
        began, first_us = self._wall.now(), None
        while True:
            chunk = await self._until_stopped(self._queue.get(), stop, producer)
            if chunk is None:
                if stop.is_set():
                    stats.stopped_early = True
                return
            event_us, label_us = chunk.event_us, chunk.label_us
            i, n = 0, len(event_us)
            a, m = 0, len(label_us)
            if self._skip_records or self._skip_labels:
                i, a = self._skip(n, m)
            while i < n or a < m:
                next_tx = int(event_us[i]) if i < n else None
                next_label = int(label_us[a]) if a < m else None
                due_us = min(t for t in (next_tx, next_label) if t is not None)
                lag = await self._until_stopped(clock.wait_until(due_us), stop, producer)
                if lag is None:
                    stats.stopped_early = True
                    return
                if clock.speed is None:
                    j, b = n, m
                else:
                    now = clock.simulated_now_us()
                    j = max(i, int(np.searchsorted(event_us, now, side="right")))
                    b = max(a, int(np.searchsorted(label_us, now, side="right")))
                    # The instant waited for is due, whatever the wall clock's rounding.
                    if next_tx == due_us:
                        j = max(j, i + 1)
                    if next_label == due_us:
                        b = max(b, a + 1)
                until_us = due_us
                if self._checkpoints is not None:
                    self._checkpoints.mark(due_us)
                if j > i:
                    # Transactions first: a label is never handed over before its transaction.
                    handed = self._wall.now()
                    await self._publisher.publish(chunk.records.take(i, j))
                    metrics.PRODUCE_LATENCY.observe(self._wall.now() - handed)
                    count_released(chunk, i, j)
                    stats.released += j - i
                    until_us = int(event_us[j - 1])
                if b > a and self._labels_publisher is not None:
                    handed = self._wall.now()
                    await self._labels_publisher.publish(chunk.labels.take(a, b))
                    metrics.PRODUCE_LATENCY.observe(self._wall.now() - handed)
                    count_labels(chunk.label_sources[a:b])
                    stats.labels_released += b - a
                    until_us = max(until_us, int(label_us[b - 1]))
                if stats.simulated_until_us is None or until_us > stats.simulated_until_us:
                    stats.simulated_until_us = until_us
                stats.lag_s = clock.lag_s(stats.simulated_until_us)
                metrics.STREAM_LAG.set(stats.lag_s)
                metrics.SIMULATED_TIME.set(stats.simulated_until_us / 1e6)
                if first_us is None:
                    first_us = due_us
                wall_s = self._wall.now() - began
                if wall_s > 0:
                    metrics.STREAM_SPEED.set((stats.simulated_until_us - first_us) / 1e6 / wall_s)
                stats.max_lag_s = max(stats.max_lag_s, lag, stats.lag_s)
                i, a = j, b
                checkpoints = self._checkpoints
                if checkpoints is not None and checkpoints.due(stats.simulated_until_us):
                    await checkpoints.commit(stats.progress())
                if self._wall.now() >= next_progress:
                    next_progress = self._wall.now() + self._progress_every_s
                    self._log_progress()

    def _skip(self, n: int, m: int) -> tuple[int, int]:
        """Skip what a resumed run already committed: the first rows of this chunk."""
        i, a = min(self._skip_records, n), min(self._skip_labels, m)
        self._skip_records -= i
        self._skip_labels -= a
        self.stats.skipped += i
        self.stats.labels_skipped += a
        return i, a

    async def _until_stopped(
        self, awaitable: Awaitable[T], stop: asyncio.Event, producer: asyncio.Task[None]
    ) -> T | None:
        """Await ``awaitable`` unless ``stop`` is set first (then None); surface producer errors."""
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(stop.wait())
        waiting = {task, stopper}
        if not producer.done():
            waiting.add(producer)
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        failure = producer.exception() if producer in done else None
        if failure is not None:
            task.cancel()
            stopper.cancel()
            raise failure
        if task in done:
            stopper.cancel()
            return task.result()
        if stopper in done and task not in done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return None
        # The producer finished normally first: keep waiting for the awaited thing.
        stopper.cancel()
        return await self._until_stopped(task, stop, producer)

    def _log_progress(self) -> None:
        until = self.stats.simulated_until_us
        log.info(
            "streaming",
            extra={
                "released": self.stats.released,
                "labels_released": self.stats.labels_released,
                "simulated_until": None if until is None else from_us(until).isoformat(),
                "lag_s": round(self.stats.lag_s, 3),
                "max_lag_s": round(self.stats.max_lag_s, 3),
            },
        )


def _next_built(slices: Iterator[Slice]) -> Slice | None:
    """The next slice with its table built (in a worker thread, off the event loop)."""
    part = next(slices, None)
    if part is not None:
        _ = part.table
    return part
