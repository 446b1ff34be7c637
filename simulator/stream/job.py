"""The ``txnsim stream`` job: world, publisher, clock and signals around a :class:`Streamer`."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time
from dataclasses import dataclass

from runtime.units import to_us
from schemas.framing import record_headers
from simulator.core.seeding import Streams
from simulator.model.engine import SliceSource
from simulator.settings.models import Settings
from simulator.stream.clock import MonotonicWall, SimClock, WallSource
from simulator.stream.publishers import KafkaPublisher, Publisher
from simulator.stream.streamer import Streamer, StreamStats, label_schema, writer_schema
from simulator.world.build import build_world

__all__ = ["StreamPlan", "plan_stream", "run_stream"]

log = logging.getLogger("txnsim.stream")


@dataclass(frozen=True)
class StreamPlan:
    """What a stream covers in simulated time.

    Attributes:
        slice_start: First slice simulated (a slice boundary).
        release_from: First simulated instant released (events before it are skipped).
        end: Simulated instant where the stream ends.
    """

    slice_start: dt.datetime
    release_from: dt.datetime
    end: dt.datetime


def plan_stream(settings: Settings, live_from: dt.datetime | None) -> StreamPlan:
    """Plan a replay of ``start_date`` (``live_from`` None) or a live run from ``live_from``.

    A live run starts simulating at the slice containing ``live_from`` and releases only
    what happens from then on, for ``days`` days.
    """
    if live_from is None:
        start = dt.datetime.combine(settings.start_date, dt.time(), tzinfo=dt.UTC)
        return StreamPlan(start, start, start + dt.timedelta(days=settings.days))
    if live_from.tzinfo is None:
        raise ValueError("live_from must be timezone-aware")
    now = live_from.astimezone(dt.UTC)
    day = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    slice_start = day + dt.timedelta(
        hours=(now.hour // settings.slice_hours) * settings.slice_hours
    )
    return StreamPlan(slice_start, now, now + dt.timedelta(days=settings.days))


async def _stream(
    settings: Settings,
    streams: Streams,
    plan: StreamPlan,
    publisher: Publisher,
    labels_publisher: Publisher | None,
    wall: WallSource,
    source: SliceSource,
) -> StreamStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await publisher.start()
        if labels_publisher is not None:
            await labels_publisher.start()
        speed = settings.stream.speed
        clock = SimClock(
            to_us(plan.release_from),
            None if speed == "max" else float(speed),
            wall,
            settings.stream.max_lag_s,
        )
        streamer = Streamer(
            source.world,
            source,
            publisher,
            clock,
            wall,
            labels_publisher=labels_publisher,
            labels=settings.stream.labels,
            end_us=to_us(plan.end),
            chunk_rows=settings.stream.chunk_rows,
            queue_chunks=settings.stream.queue_chunks,
            skip_before_us=to_us(plan.release_from),
            progress_every_s=settings.stream.progress_every_s,
        )
        return await streamer.run(stop)
    finally:
        await publisher.stop()
        if labels_publisher is not None:
            await labels_publisher.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_stream(
    settings: Settings,
    streams: Streams,
    *,
    live_from: dt.datetime | None = None,
    publisher: Publisher | None = None,
    labels_publisher: Publisher | None = None,
    wall: WallSource | None = None,
) -> StreamStats:
    """Build the world and stream it; SIGINT/SIGTERM stop releasing, flush and return.

    Transactions go to ``publisher`` (by default ``kafka.topic``), in the schema
    ``stream.labels`` chooses; fraud labels to ``labels_publisher`` at their label time,
    up to the stream's end. Without ``publisher``, labels default to ``kafka.labels_topic``;
    with an injected ``publisher`` and no ``labels_publisher``, no labels are released.

    Raises:
        KafkaUnavailable: If the cluster cannot be reached in time.
        PublishError: If delivery fails after the client's retries.
        LagExceeded: If ``stream.max_lag_s`` is passed.
    """
    plan = plan_stream(settings, live_from)
    began = time.monotonic()
    world = build_world(settings, streams)
    target = publisher or KafkaPublisher(
        settings.kafka, record_headers(writer_schema(settings.stream.labels))
    )
    labels_target = labels_publisher
    if labels_target is None and publisher is None:
        labels_target = KafkaPublisher(
            settings.kafka, record_headers(label_schema()), topic=settings.kafka.labels_topic
        )
    # The source forks its workers before the event loop or any thread starts.
    with SliceSource(world, plan.slice_start, plan.end, settings.workers) as source:
        stats = asyncio.run(
            _stream(settings, streams, plan, target, labels_target, wall or MonotonicWall(), source)
        )
    log.info(
        "stream finished",
        extra={
            "released": stats.released,
            "labels_released": stats.labels_released,
            "stopped_early": stats.stopped_early,
            "max_lag_s": round(stats.max_lag_s, 3),
            "seconds": round(time.monotonic() - began, 2),
        },
    )
    return stats
