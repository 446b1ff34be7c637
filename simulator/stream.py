"""``txnsim stream``: release the simulation's events onto a publisher in simulated time.

Three stages, bounded end to end:

1. the simulation (a :class:`~simulator.engine.SliceSource`) runs in a thread and its
   slices are encoded to Avro in chunks;
2. chunks wait in a bounded queue, so the simulation can run ahead of the release
   schedule by at most ``stream.queue_chunks`` chunks (and stalls when the broker does);
3. the releaser waits on a :class:`~simulator.clock.SimClock` until each event is due,
   then hands every due record to the publisher, reporting how far behind schedule it is.

The records and their order are those of ``txnsim generate`` for the same seed and
settings, whatever the speed: pacing only decides *when* they are handed over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator import metrics
from simulator.avro_codec import RawAvro, TableEncoder
from simulator.clock import SimClock, WallSource
from simulator.engine import SliceSource
from simulator.environment import from_us
from simulator.partitioner import partitions_for
from simulator.publishers import OutRecords, Publisher
from simulator.schema import transaction_schema
from simulator.world import World

__all__ = ["StreamStats", "Streamer", "record_headers"]

log = logging.getLogger("txnsim.stream")

T = TypeVar("T")


def record_headers() -> list[tuple[str, bytes]]:
    """Headers on every record: the schema's full name and its CRC-64-AVRO fingerprint."""
    schema = transaction_schema()
    return [
        ("txnsim.schema", b"io.txnsim.Transaction"),
        ("txnsim.schema.fingerprint", schema.fingerprint.encode()),
        ("content-type", b"application/vnd.apache.avro"),
    ]


@dataclass
class StreamStats:
    """Live figures of a stream (read by progress logs and metrics)."""

    released: int = 0
    simulated_until_us: int | None = None
    lag_s: float = 0.0
    max_lag_s: float = 0.0
    stopped_early: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class _Chunk:
    event_us: np.ndarray
    records: OutRecords
    #: Per row, an index into ``scenarios`` (for the events metric).
    scenario: np.ndarray
    scenarios: list[str]


class Streamer:
    """Streams the slices of an entered :class:`SliceSource` to a started publisher.

    Args:
        world: The built world (for card ids and partitions).
        source: The slice source, already entered.
        publisher: The destination, already started.
        clock: Pacing clock.
        wall: Wall source, for progress intervals.
        chunk_rows: Rows encoded together.
        queue_chunks: Encoded chunks allowed to wait.
        skip_before_us: Events before this simulated instant are not released (live start).
        progress_every_s: Wall seconds between progress lines.
    """

    def __init__(
        self,
        world: World,
        source: SliceSource,
        publisher: Publisher,
        clock: SimClock,
        wall: WallSource,
        *,
        chunk_rows: int = 4096,
        queue_chunks: int = 8,
        skip_before_us: int | None = None,
        progress_every_s: float = 5.0,
    ) -> None:
        self._world = world
        self._source = source
        self._publisher = publisher
        self._clock = clock
        self._wall = wall
        self._chunk_rows = chunk_rows
        self._queue: asyncio.Queue[_Chunk | None] = asyncio.Queue(maxsize=queue_chunks)
        self._skip_before_us = skip_before_us
        self._progress_every_s = progress_every_s
        self._encoder = TableEncoder(transaction_schema(), RawAvro())
        self.stats = StreamStats()

    async def run(self, stop: asyncio.Event) -> StreamStats:
        """Release every event (or until ``stop`` is set), flush, and return the figures."""
        card_partition = partitions_for(self._world.cards.ids, self._publisher.partitions)
        began = self._wall.now()
        producer = asyncio.create_task(self._produce(card_partition), name="txnsim-simulate")
        try:
            await self._release(stop, producer)
            await self._publisher.flush()
            self.stats.seconds = self._wall.now() - began
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        return self.stats

    async def _produce(self, card_partition: np.ndarray) -> None:
        slices = iter(self._source)
        while True:
            part = await asyncio.to_thread(next, slices, None)
            if part is None:
                break
            table, card = part.table, part.card
            event_us = table.column("event_time").cast(pa.int64()).to_numpy()
            if self._skip_before_us is not None:
                first = int(np.searchsorted(event_us, self._skip_before_us, side="left"))
                table, card, event_us = table.slice(first), card[first:], event_us[first:]
            for lo in range(0, table.num_rows, self._chunk_rows):
                hi = min(lo + self._chunk_rows, table.num_rows)
                sub = table.slice(lo, hi - lo)
                values = await asyncio.to_thread(self._encoder.encode, sub)
                keys = [k.encode() for k in sub.column("card_id").to_pylist()]
                records = OutRecords(
                    keys, values, event_us[lo:hi] // 1000, card_partition[card[lo:hi]]
                )
                codes = pc.dictionary_encode(sub.column("fraud_scenario").fill_null("none"))
                codes = codes.combine_chunks()
                await self._queue.put(
                    _Chunk(
                        event_us[lo:hi],
                        records,
                        codes.indices.to_numpy(zero_copy_only=False),
                        codes.dictionary.to_pylist(),
                    )
                )
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
            i, n = 0, len(chunk.event_us)
            while i < n:
                lag = await self._until_stopped(
                    clock.wait_until(int(chunk.event_us[i])), stop, producer
                )
                if lag is None:
                    stats.stopped_early = True
                    return
                if clock.speed is None:
                    j = n
                else:
                    j = max(
                        i + 1,
                        int(
                            np.searchsorted(chunk.event_us, clock.simulated_now_us(), side="right")
                        ),
                    )
                handed = self._wall.now()
                await self._publisher.publish(chunk.records.take(i, j))
                metrics.PRODUCE_LATENCY.observe(self._wall.now() - handed)
                _count_released(chunk, i, j)
                stats.released += j - i
                stats.simulated_until_us = int(chunk.event_us[j - 1])
                stats.lag_s = clock.lag_s(stats.simulated_until_us)
                metrics.STREAM_LAG.set(stats.lag_s)
                metrics.SIMULATED_TIME.set(stats.simulated_until_us / 1e6)
                if first_us is None:
                    first_us = int(chunk.event_us[i])
                wall_s = self._wall.now() - began
                if wall_s > 0:
                    metrics.STREAM_SPEED.set((stats.simulated_until_us - first_us) / 1e6 / wall_s)
                stats.max_lag_s = max(stats.max_lag_s, lag, stats.lag_s)
                i = j
                if self._wall.now() >= next_progress:
                    next_progress = self._wall.now() + self._progress_every_s
                    self._log_progress()

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
                "simulated_until": None if until is None else from_us(until).isoformat(),
                "lag_s": round(self.stats.lag_s, 3),
                "max_lag_s": round(self.stats.max_lag_s, 3),
            },
        )


def _count_released(chunk: _Chunk, lo: int, hi: int) -> None:
    counts = np.bincount(chunk.scenario[lo:hi], minlength=len(chunk.scenarios))
    for name, count in zip(chunk.scenarios, counts.tolist(), strict=True):
        if count:
            metrics.EVENTS.labels(type="transaction", scenario=name).inc(count)
            if name != "none":
                metrics.FRAUD_INJECTED.labels(scenario=name).inc(count)
