"""The batch job: simulate a span of days and land it as Parquet in a folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import schemas.parquet
from runtime.units import to_us
from schemas.event import transaction_schema
from simulator.batch.catalog_tables import catalog_builders
from simulator.batch.files import Encoded, FileRecord
from simulator.batch.labels import FraudTally, LabelFiles
from simulator.batch.lander import Lander, Meter
from simulator.batch.output import Destination, FolderDestination, Naming
from simulator.errors import ConfigError
from simulator.model.engine import SliceSource
from simulator.settings.models import Settings
from simulator.settings.run import WHOLE, RunSeed, RunSpec, Shard
from simulator.world.build import World, build_world
from simulator.world.cache import cached

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


def generate(
    settings: Settings,
    seed: RunSeed,
    *,
    wall: WallClock = time.monotonic,
    shard: Shard = WHOLE,
    meter: Meter | None = None,
) -> RunSummary:
    """Simulate ``settings.days`` days from ``settings.start_date`` into ``settings.out``.

    Args:
        settings: Effective settings.
        seed: The run's seed (:meth:`RunSeed.from_settings`); the manifest records it and
            where it came from.
        wall: Monotonic wall clock for progress and rates (injected for tests).
        shard: The shard of the run to land (its blocks' rows, files named by the shard
            and its manifest under ``manifests/``); by default the whole run.
        meter: Where the run's progress goes as metrics; none by default (the metrics
            are only worth counting where they are served).

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
        with Lander(destination, settings.writer.rows_per_file, fraud, labels, meter) as lander:
            for part in source:
                lander.land(part)
                total += part.rows.num_rows
                if meter is not None:
                    meter.simulated_until(part.end)
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
            # They depend on the settings alone: encoded once, then kept in the cache.
            key = _world_catalogs_key(settings, shard, metadata)
            of_world = lander.after_slices(
                partial(_land_catalogs, destination, shard, builders, settings.cache_dir, key)
            )
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
    destination: Destination,
    shard: Shard,
    builders: dict[str, Callable[[], pa.Table]],
    cache_dir: Path | None = None,
    key: str = "",
) -> tuple[list[FileRecord], dict[str, int]]:
    """Land catalogs (:func:`catalog_builders`), one at a time (a large world's take gigabytes).

    Given a ``key`` of what they depend on (:func:`_world_catalogs_key`), each file is
    encoded once and kept in ``cache_dir``.

    Returns their files and row counts.
    """
    files: list[FileRecord] = []
    rows: dict[str, int] = {}
    for name, build in builders.items():
        if name == "merchants" and shard.index > 0:
            continue  # every shard's world has the same merchants: shard 0 lands them

        def encode(build: Callable[[], pa.Table] = build) -> Encoded:
            return destination.encode(build())

        encoded = cached(cache_dir, f"{key}\0{name}" if key else "", encode, "catalog")
        rows[name] = encoded.rows
        files.append(destination.write_file(destination.naming.catalog(name), encoded))
        del encoded
    return files, rows


def _world_catalogs_key(settings: Settings, shard: Shard, metadata: dict[bytes, bytes]) -> str:
    """What the cardholders' and merchants' files depend on, besides the package's code.

    The world (the configuration hash), the shard, the writer's settings and the files'
    metadata, the Parquet library and the encoder's own source (:func:`cached` adds the
    package's version and code).
    """
    encoder = hashlib.sha256(Path(schemas.parquet.__file__).read_bytes()).hexdigest()
    return "\0".join(
        [
            settings.config_hash(),
            str(shard),
            settings.writer.model_dump_json(),
            repr(sorted(metadata.items())),
            f"pyarrow {pa.__version__}",
            encoder,
        ]
    )


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
