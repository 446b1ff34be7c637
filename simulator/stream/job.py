"""The ``txnsim stream`` job: world, publisher, clock and signals around a :class:`Streamer`."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time
from dataclasses import dataclass

from runtime.units import to_us
from schemas.framing import ConfluentWireFormat, Framing, record_headers
from simulator.errors import ConfigError
from simulator.model.engine import SliceSource
from simulator.settings.models import Settings
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.stream.chunks import label_schema, writer_schema
from simulator.stream.clock import MonotonicWall, SimClock, WallSource
from simulator.stream.progress import Progress, RunIdentity, read_progress, settings_differences
from simulator.stream.publishers import KafkaPublisher, Publisher
from simulator.stream.streamer import Checkpoints, Streamer, StreamStats
from simulator.stream.transactional import FaultHook, TransactionalSession
from simulator.world.build import build_world

__all__ = ["StreamPlan", "plan_stream", "run_identity", "run_stream"]

log = logging.getLogger("txnsim.stream")


#: This process's lane's share of the blocks against a worker lane's (the batch job's is
#: :data:`simulator.model.lanes.INLINE_WEIGHT`, 0.9): the stream's own process also
#: encodes the Avro and builds and compresses the Kafka batches. 7 days x 100k
#: cardholders, 2 workers (2 of 7 blocks here against 3), `bench/stream.py` interleaved
#: twice (2026-12-07): in-memory 314-351k events/s against 269-300k, exactly once
#: 317-334k against 272-283k.
_INLINE_WEIGHT = 0.5


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


def run_identity(settings: Settings, plan: StreamPlan, shard: str = "0/1") -> RunIdentity:
    """What a resumed stream must share with the one it continues."""
    deciding = {
        **settings.simulation_dict(),
        "stream": {
            "labels": settings.stream.labels,
            "slice_start": plan.slice_start.isoformat(),
            "release_from": plan.release_from.isoformat(),
            "end": plan.end.isoformat(),
        },
        "topics": {"transactions": settings.kafka.topic, "labels": settings.kafka.labels_topic},
    }
    return RunIdentity(settings.kafka.topic, shard, deciding)


async def _resume_point(settings: Settings, identity: RunIdentity) -> Progress | None:
    """The committed progress to continue from, checked against these settings.

    Raises:
        ConfigError: If the committed stream was made with other settings (naming them).
    """
    progress = await read_progress(settings.kafka, identity.key)
    if progress is None:
        log.info("nothing committed yet; streaming from the start", extra={"key": identity.key})
        return None
    if progress.settings_hash != identity.settings_hash:
        differ = settings_differences(progress.settings, identity.settings)
        raise ConfigError(
            f"--resume: {settings.kafka.topic!r} was streamed with other settings; "
            f"they differ in: {', '.join(differ) or '(unknown)'}"
        )
    log.info(
        "resuming",
        extra={
            "transactions_committed": progress.seq,
            "records": progress.records,
            "labels": progress.labels,
            "finished": progress.finished,
        },
    )
    return progress


def _registered_framings(settings: Settings) -> tuple[Framing | None, Framing | None]:
    """Register the writer schemas (if a registry is configured); the framings to use.

    Raises:
        RegistryError: If the registry is unreachable or refuses a schema.
    """
    config = settings.kafka.schema_registry
    if config is None:
        return None, None
    from schemas.registry import SchemaRegistry

    with SchemaRegistry.from_settings(config) as registry:
        tx_id = registry.register(settings.kafka.topic, writer_schema(settings.stream.labels))
        label_id = registry.register(settings.kafka.labels_topic, label_schema())
    log.info(
        "schemas registered",
        extra={"registry": config.url, "transactions_id": tx_id, "labels_id": label_id},
    )
    return ConfluentWireFormat(tx_id), ConfluentWireFormat(label_id)


async def _stream(
    settings: Settings,
    plan: StreamPlan,
    publisher: Publisher,
    labels_publisher: Publisher | None,
    wall: WallSource,
    source: SliceSource,
    checkpoints: Checkpoints | None = None,
    resume: Progress | None = None,
    framings: tuple[Framing | None, Framing | None] = (None, None),
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
        resumed_at = None if resume is None else resume.simulated_until_us
        clock = SimClock(
            max(to_us(plan.release_from), resumed_at or 0),
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
            checkpoints=checkpoints,
            resume=resume,
            framing=framings[0],
            label_framing=framings[1],
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
    seed: RunSeed,
    *,
    live_from: dt.datetime | None = None,
    publisher: Publisher | None = None,
    labels_publisher: Publisher | None = None,
    wall: WallSource | None = None,
    resume: bool = False,
    faults: FaultHook | None = None,
    shard: Shard = WHOLE,
) -> StreamStats:
    """Build the world and stream it; SIGINT/SIGTERM stop releasing, commit and return.

    Transactions go to ``publisher`` (by default ``kafka.topic``), in the schema
    ``stream.labels`` chooses; fraud labels to ``labels_publisher`` at their label time,
    up to the stream's end. Without ``publisher``, labels default to ``kafka.labels_topic``;
    with an injected ``publisher`` and no ``labels_publisher``, no labels are released.

    With ``kafka.delivery: exactly_once`` (the default) both topics are written in Kafka
    transactions, each ending with a progress record; ``resume`` continues a stream of
    the same settings from its last committed transaction.

    With ``shard`` (``--shard K/N``) the process streams shard K's cardholder blocks and
    their fraud: N processes stream one run onto one topic. Each shard has its own
    transactional id and progress key, so shards never fence each other and each
    resumes on its own; a card lives in one shard, so its records keep their order.

    Raises:
        ConfigError: If ``resume`` is asked without exactly-once delivery, the committed
            stream had other settings, or a shard of a run without a configured seed.
        KafkaUnavailable: If the cluster cannot be reached in time.
        PublishError: If delivery fails after the client's retries.
        LagExceeded: If ``stream.max_lag_s`` is passed.
    """
    if not shard.whole and seed.source != "configured":
        raise ConfigError(
            f"seed: --shard {shard} needs a configured seed (--seed), so that every shard "
            "draws from the same one"
        )
    settings = seed.pin(settings)
    plan = plan_stream(settings, live_from)
    began = time.monotonic()
    exactly_once = publisher is None and settings.kafka.delivery == "exactly_once"
    if resume and not exactly_once:
        raise ConfigError("--resume needs kafka.delivery: exactly_once and the Kafka publisher")
    identity = run_identity(settings, plan, str(shard))
    framings = _registered_framings(settings)  # before anything is sent
    resumed = asyncio.run(_resume_point(settings, identity)) if resume else None
    if resumed is not None and resumed.finished:
        log.info("the stream was already complete; nothing to send")
        done = StreamStats(released=resumed.records, labels_released=resumed.labels)
        done.simulated_until_us = resumed.simulated_until_us
        return done
    world = build_world(settings, seed)
    session: TransactionalSession | None = None
    tx_headers = record_headers(writer_schema(settings.stream.labels))
    label_headers = record_headers(label_schema())
    if exactly_once:
        kafka = settings.kafka
        session = TransactionalSession(
            kafka, identity, [kafka.topic, kafka.labels_topic], resumed=resumed, faults=faults
        )
        target: Publisher = session.view(kafka.topic, tx_headers)
        labels_target: Publisher | None = session.view(kafka.labels_topic, label_headers)
    else:
        target = publisher or KafkaPublisher(settings.kafka, tx_headers)
        labels_target = labels_publisher
        if labels_target is None and publisher is None:
            labels_target = KafkaPublisher(
                settings.kafka, label_headers, topic=settings.kafka.labels_topic
            )
    # The source forks its workers before the event loop or any thread starts.
    spec = RunSpec.from_settings(settings)
    with SliceSource(
        world,
        spec,
        seed,
        plan.slice_start,
        plan.end,
        settings.workers,
        shard,
        inline=_INLINE_WEIGHT,
    ) as source:
        stats = asyncio.run(
            _stream(
                settings,
                plan,
                target,
                labels_target,
                wall or MonotonicWall(),
                source,
                checkpoints=session,
                resume=resumed,
                framings=framings,
            )
        )
    log.info(
        "stream finished",
        extra={
            "released": stats.released,
            "labels_released": stats.labels_released,
            "skipped": stats.skipped,
            "transactions": None if session is None else session.transactions,
            "resends": None if session is None else session.resends,
            "stopped_early": stats.stopped_early,
            "max_lag_s": round(stats.max_lag_s, 3),
            "seconds": round(time.monotonic() - began, 2),
        },
    )
    return stats
