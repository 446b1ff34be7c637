"""The batch job: simulate a span of days and land it as Parquet in a folder."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from runtime.units import to_us
from schemas.event import transaction_schema
from simulator import metrics
from simulator.batch.catalog_tables import catalog_builders
from simulator.batch.files import FileRecord
from simulator.batch.labels import FraudTally, LabelFiles
from simulator.batch.output import Destination, FolderDestination, Naming, Partition
from simulator.errors import ConfigError
from simulator.model.engine import SliceSource
from simulator.model.slices import Slice
from simulator.settings.models import Settings
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.world.build import World, build_world

__all__ = ["RunSummary", "generate", "package_version"]

log = logging.getLogger("txnsim.generate")

#: Monotonic clock used only to report progress (never by the simulation).
WallClock = Callable[[], float]


@dataclass(frozen=True)
class RunSummary:
    """What a generate run produced."""

    out: Path | str
    rows: int
    files: list[FileRecord]
    manifest: dict[str, Any]
    seconds: float


def package_version() -> str:
    """Installed version of the ``txnsim`` distribution (``0+unknown`` from a bare checkout)."""
    try:
        return importlib.metadata.version("txnsim")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


#: The largest slice whose strings the writer thread builds (else the simulating thread
#: does). The writer holds the slice's numbers (about 100 bytes a row) while the next
#: slice is simulated: for 7 days x 1M cardholders (1.2-1.7M rows a slice) that was
#: 1.45 GB of peak RSS against 1.32 GB (2026-12-07), past 1.1x of a day's run.
_WRITER_BUILDS_UP_TO = 400_000


class _Lander:
    """Lands slices into their date partitions on a background thread.

    Parquet encoding and most of the string building release the GIL, so while one
    slice is landed the next one is simulated. A slice's tables (its id and lookup
    strings) are built by whichever thread has room: by the writer when it is idle as
    the slice comes (one process simulating every block keeps the other thread busier)
    and the slice is at most :data:`_WRITER_BUILDS_UP_TO` rows, else here while the
    writer finishes the slice before (lanes share the simulation, and the writer
    becomes the slower side). Either way they are built a file at a time and the bytes
    are the same. At most one slice waits for the writer, which bounds memory. The
    writer commits each partition after its last file, in order, so this thread never
    waits for a day to be flushed; on error every partition not committed is dropped.

    A date's label files are written by the same thread once the date's last slice is
    landed (a label is decided in its transaction's slice), while the next date is
    simulated; the last date's are written here at :meth:`finish_labels`, which commits
    them all. Written after the run, their 310 small files (7 days x 100k cardholders)
    were its last 0.15-0.3 s; on a thread of their own they held the simulating thread
    back more than that (interleaved runs, 2026-12-07).

    Args:
        destination: Where the partitions go.
        rows_per_file: Rows per table handed to the partition (its files' size).
        tally: Counts every landed table's rows, fraud and value (on the writer thread).
        labels: Where the run's label files go.
    """

    def __init__(
        self, destination: Destination, rows_per_file: int, tally: FraudTally, labels: LabelFiles
    ) -> None:
        self._destination = destination
        self._stem = destination.naming.stem
        self._rows_per_file = rows_per_file
        self._tally = tally
        self._labels = labels
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txnsim-writer")
        #: Slices queued for the writer: at most one waits behind the one it writes.
        self._slices: deque[Future[None]] = deque()
        #: Partition commits and label files, queued behind the slices before them.
        self._after: deque[Future[None]] = deque()
        self._last: Future[Any] | None = None
        self._current: Partition | None = None
        #: Partitions written to and not committed yet: dropped on error.
        self._open: list[Partition] = []
        self._day: dt.date | None = None
        self._of_day: list[pa.Table] = []
        self.files: list[FileRecord] = []
        self.partitions: dict[str, int] = {}
        #: Every slice's labels, for the manifest's figures.
        self.label_tables: list[pa.Table] = []

    def __enter__(self) -> _Lander:
        return self

    def land(self, part: Slice) -> None:
        """Queue the slice ``part`` (time-sorted rows) for the partition of its day."""
        day = part.start.date()
        if day != self._day:
            self._land_labels()
        self._of_day.append(part.labels)
        self.label_tables.append(part.labels)
        if part.rows.num_rows <= _WRITER_BUILDS_UP_TO and self._writer_idle():
            self._hand_over(day, part.rows.num_rows, partial(self._write_tables, part))
            return
        for table in part.tables(self._rows_per_file):
            self._hand_over(day, table.num_rows, partial(self._write, table))
            del table

    def _submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        self._last = self._pool.submit(job, *args)
        return self._last

    def _writer_idle(self) -> bool:
        # One thread runs the jobs in order: the last one done, all are.
        return self._last is None or self._last.done()

    def _hand_over(self, day: dt.date, rows: int, job: Callable[[Partition], None]) -> None:
        current = self._current
        if current is None or day != self._day:
            # Committed by the writer after the day's last file: this thread goes on.
            if current is not None:
                self._after.append(self._submit(self._commit, current))
            current = self._current = self._destination.partition("transactions", day)
            self._open.append(current)
            self._day = day
            self.partitions[day.isoformat()] = 0
        self.partitions[day.isoformat()] += rows
        self._slices.append(self._submit(job, current))
        while len(self._slices) > 1:
            self._slices.popleft().result()
        while self._after and self._after[0].done():
            self._after.popleft().result()  # a failed commit or label file stops the run

    def _commit(self, partition: Partition) -> None:
        self.files.extend(partition.commit())
        self._open.remove(partition)

    def _write_tables(self, part: Slice, partition: Partition) -> None:
        # A file's worth at a time: a slice's strings are built as they are landed.
        for table in part.tables(self._rows_per_file):
            self._write(table, partition)
            del table

    def _write(self, table: pa.Table, partition: Partition) -> None:
        partition.write(table, self._stem)
        self._tally.add(table)
        metrics.count_events(table)

    def after_slices(self, job: Callable[[], Any]) -> Future[Any]:
        """Run ``job`` on the writer once the slices queued so far are landed.

        For work of the run's end that needs no slice and nothing of this thread's:
        :meth:`finish_labels` does not wait for it.
        """
        return self._submit(job)

    def _land_labels(self) -> None:
        """Queue the label files of the date landed last, after its transactions."""
        if self._of_day:
            self._after.append(self._submit(self._labels.add, pa.concat_tables(self._of_day)))
            self._of_day = []

    def finish_labels(self) -> list[FileRecord]:
        """Land the last date's label files here, then commit every label partition.

        Called after the last slice: the writer's label jobs were all queued before that
        slice, so once they are done the label files are this thread's, and it writes
        the last date's while the writer encodes the last slice.
        """
        while self._after:
            self._after.popleft().result()
        if self._of_day:
            self._labels.add(pa.concat_tables(self._of_day))
            self._of_day = []
        return self._labels.commit()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                if self._current is not None:
                    self._after.append(self._submit(self._commit, self._current))
                for queued in (self._slices, self._after):
                    while queued:
                        queued.popleft().result()
        finally:
            for pending in (*self._slices, *self._after):
                pending.cancel()
            self._pool.shutdown(wait=True)
            for partition in self._open:
                partition.abort()
            if exc_type is not None:
                self._labels.abort()


def generate(
    settings: Settings,
    seed: RunSeed,
    *,
    wall: WallClock = time.monotonic,
    shard: Shard = WHOLE,
) -> RunSummary:
    """Simulate ``settings.days`` days from ``settings.start_date`` into ``settings.out``.

    Args:
        settings: Effective settings.
        seed: The run's seed (:meth:`RunSeed.from_settings`); the manifest records it and
            where it came from.
        wall: Monotonic wall clock for progress and rates (injected for tests).
        shard: The shard of the run to land (its blocks' rows, files named by the shard
            and its manifest under ``manifests/``); by default the whole run.

    Raises:
        ValueError: If ``seed`` was not built from these settings.
        ConfigError: For a shard of a run whose seed is not configured (every shard
            must draw from the same root seed).
    """
    began = wall()
    if not shard.whole and seed.source != "configured":
        raise ConfigError(
            f"seed: --shard {shard} needs a configured seed (--seed), so that every shard "
            "draws from the same one"
        )
    settings = seed.pin(settings)
    schema = transaction_schema()
    world = build_world(settings, seed)
    log.info(
        "world built",
        extra={
            "cardholders": len(world.holders),
            "cards": len(world.cards),
            "merchants": len(world.merchants),
            "seconds": round(wall() - began, 2),
        },
    )
    start = dt.datetime.combine(settings.start_date, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=settings.days)
    metadata = {
        b"txnsim.config_hash": settings.config_hash().encode(),
        b"txnsim.seed": str(seed.entropy).encode(),
    }
    naming = Naming(shard)
    destination = _destination(settings, metadata, naming)

    files: list[FileRecord] = []
    total = 0
    fraud = FraudTally(world)
    run_days = [settings.start_date + dt.timedelta(days=n) for n in range(settings.days)]
    # Workers fork when the source is entered: before any writer thread exists.
    spec = RunSpec.from_settings(settings)
    labels = LabelFiles(destination, run_days)
    with SliceSource(world, spec, seed, start, end, settings.workers, shard) as source:
        sim_began = wall()
        with _Lander(destination, settings.writer.rows_per_file, fraud, labels) as lander:
            for part in source:
                lander.land(part)
                total += part.rows.num_rows
                metrics.SIMULATED_TIME.set(part.end.timestamp())
                elapsed = max(wall() - sim_began, 1e-9)
                done = (part.end - start) / (end - start)
                log.info(
                    "simulated slice",
                    extra={
                        "simulated_until": part.end.isoformat(),
                        "rows": total,
                        "rows_per_s": round(total / elapsed),
                        "progress": round(done, 4),
                        "eta_s": round(elapsed / done * (1 - done), 1),
                    },
                )
                # Simulating the next slice with this one still bound here would hold
                # two slices' rows at the peak.
                del part
            # The writer still encodes the last slice: the cards, which the run's blocks
            # and reissues decide, and the last date's labels are landed here meanwhile
            # (the slices are freed: their memory goes back first). The catalogs of the
            # world alone are the writer's next job, queued once the cards' are dropped:
            # a 10-million-cardholder world's take a gigabyte or more each.
            pa.default_memory_pool().release_unused()
            cards = source.cards
            builders = dict(catalog_builders(world, cards, to_us(end), _holders(world, shard)))
            landed, catalog_rows = _land_catalogs(
                destination, shard, {"cards": builders.pop("cards")}
            )
            of_world = lander.after_slices(partial(_land_catalogs, destination, shard, builders))
            landed.extend(lander.finish_labels())
            more, more_rows = of_world.result()
            landed.extend(more)
            catalog_rows.update(more_rows)
            tables = lander.label_tables
            label_table = pa.concat_tables(tables) if tables else None
    files.extend(lander.files)
    files.extend(landed)
    partitions = lander.partitions

    manifest = {
        "format_version": 1,
        "package": {"name": "txnsim", "version": package_version()},
        "seed": seed.entropy,
        "seed_source": seed.source,
        "config": settings.simulation_dict(),
        "config_hash": settings.config_hash(),
        "schema": {"name": "transaction", "fingerprint": schema.fingerprint},
        "simulated_start": start.isoformat(),
        "simulated_end": end.isoformat(),
        "row_counts": {
            "transactions": total,
            "cardholders": catalog_rows["cardholders"],
            "cards": catalog_rows["cards"],
            "merchants": len(world.merchants),
        },
        "partitions": partitions,
        "fraud": fraud.summary(settings.fraud.target_rate, cards, to_us(end), label_table),
        "files": [f.as_json() for f in sorted(files, key=lambda f: f.path)],
    }
    if not shard.whole:
        manifest["shard"] = {
            "index": shard.index,
            "count": shard.count,
            "blocks": list(shard.blocks(world.n_blocks)),
        }
    destination.write_manifest(manifest)
    seconds = wall() - began
    log.info(
        "run complete",
        extra={"rows": total, "seconds": round(seconds, 2), "out": str(settings.out)},
    )
    return RunSummary(out=settings.out, rows=total, files=files, manifest=manifest, seconds=seconds)


def _land_catalogs(
    destination: Destination, shard: Shard, builders: dict[str, Callable[[], pa.Table]]
) -> tuple[list[FileRecord], dict[str, int]]:
    """Land catalogs (:func:`catalog_builders`), one at a time (a large world's take gigabytes).

    Returns their files and row counts.
    """
    files: list[FileRecord] = []
    rows: dict[str, int] = {}
    for name, build in builders.items():
        if name == "merchants" and shard.index > 0:
            continue  # every shard's world has the same merchants: shard 0 lands them
        table = build()
        rows[name] = table.num_rows
        files.append(destination.write_file(destination.naming.catalog(name), table))
        del table
    return files, rows


def _holders(world: World, shard: Shard) -> np.ndarray | None:
    """Which cardholders the shard simulates (None: all of them)."""
    if shard.whole:
        return None
    mine = np.zeros(len(world.holders), dtype=bool)
    for block in shard.blocks(world.n_blocks):
        lo, hi = world.block_range(block)
        mine[lo:hi] = True
    return mine


def _destination(settings: Settings, metadata: dict[bytes, bytes], naming: Naming) -> Destination:
    """A folder for a path, an object store for an ``s3://`` URL."""
    if isinstance(settings.out, Path):
        return FolderDestination(settings.out, settings.writer, metadata, naming)
    from simulator.batch.objects import StoreDestination
    from storage.base import open_store
    from storage.retry import Retrying

    store = open_store(settings.out, s3=settings.s3, name="out")
    retry = Retrying(give_up_s=settings.retry_give_up_s, service="destination")
    return StoreDestination(
        store, retry, settings.writer, metadata, settings.config_hash()[:16], naming
    )
