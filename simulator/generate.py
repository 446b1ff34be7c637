"""The batch job: simulate a span of days and land it as Parquet in a folder."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.catalog_tables import catalog_tables
from simulator.config import Settings
from simulator.engine import SliceSource
from simulator.output import FileRecord, PartitionWriter, write_json_atomic, write_parquet_file
from simulator.schema import transaction_schema
from simulator.seeding import Streams
from simulator.world import build_world

__all__ = ["RunSummary", "generate"]

log = logging.getLogger("txnsim.generate")

#: Monotonic clock used only to report progress (never by the simulation).
WallClock = Callable[[], float]


@dataclass(frozen=True)
class RunSummary:
    """What a generate run produced."""

    out: Path
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


def generate(
    settings: Settings, streams: Streams, *, seed_source: str, wall: WallClock = time.monotonic
) -> RunSummary:
    """Simulate ``settings.days`` days from ``settings.start_date`` into ``settings.out``.

    Args:
        settings: Effective settings.
        streams: Random streams of the run's root seed.
        seed_source: ``"configured"`` or ``"os-entropy"``, recorded in the manifest.
        wall: Monotonic wall clock for progress and rates (injected for tests).
    """
    began = wall()
    out = settings.out
    schema = transaction_schema()
    world = build_world(settings, streams)
    log.info("world built", extra={"cardholders": len(world.holders), "cards": len(world.cards),
                                   "merchants": len(world.merchants), "seconds": round(wall() - began, 2)})
    start = dt.datetime.combine(settings.start_date, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=settings.days)
    metadata = {b"txnsim.config_hash": settings.config_hash().encode(), b"txnsim.seed": str(streams.entropy).encode()}

    files: list[FileRecord] = []
    partitions: dict[str, int] = {}
    for name, table in catalog_tables(world).items():
        files.append(write_parquet_file(out, f"catalog/{name}.parquet", table, settings.writer, metadata))

    total = 0
    current: PartitionWriter | None = None
    current_day: dt.date | None = None
    sim_began = wall()
    try:
        for part in SliceSource(world, start, end, settings.workers):
            day = part.start.date()
            if day != current_day:
                if current is not None and current_day is not None:
                    files.extend(current.commit())
                current, current_day = PartitionWriter(out, day, settings.writer, metadata), day
                partitions[day.isoformat()] = 0
            assert current is not None  # noqa: S101 - set just above
            current.write(part.table)
            rows = part.table.num_rows
            total += rows
            partitions[day.isoformat()] += rows
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
        if current is not None:
            files.extend(current.commit())
            current = None
    finally:
        if current is not None:
            current.abort()

    manifest = {
        "format_version": 1,
        "package": {"name": "txnsim", "version": package_version()},
        "seed": streams.entropy,
        "seed_source": seed_source,
        "config": settings.simulation_dict(),
        "config_hash": settings.config_hash(),
        "schema": {"name": "transaction", "fingerprint": schema.fingerprint},
        "simulated_start": start.isoformat(),
        "simulated_end": end.isoformat(),
        "row_counts": {
            "transactions": total,
            "cardholders": len(world.holders),
            "cards": len(world.cards),
            "merchants": len(world.merchants),
        },
        "partitions": partitions,
        "files": [f.as_json() for f in sorted(files, key=lambda f: f.path)],
    }
    write_json_atomic(out / "manifest.json", manifest)
    seconds = wall() - began
    log.info("run complete", extra={"rows": total, "seconds": round(seconds, 2), "out": str(out)})
    return RunSummary(out=out, rows=total, files=files, manifest=manifest, seconds=seconds)
