"""The batch job on Apache Spark: the shards of a run as Spark tasks, the lake by Spark.

``pip install txnsim[spark]``. Each task runs one shard of the run (``Shard(k, n)``:
the same shard function as ``txnsim generate --shard``, no second copy of the model)
and hands its slices to Spark as Arrow record batches (``mapInArrow``); Spark writes
the date-partitioned lake:

* ``transactions/dt=YYYY-MM-DD/``: the transaction schema's columns;
* ``labels/dt=<label date>/txn_dt=<transaction date>/``: the fraud labels, one folder
  per transaction date inside each label date, so that a day's run replaces its own
  labels and keeps the other days' (``partitionOverwriteMode=dynamic``).

The rows are the single process's (tested in local mode). What Spark changes: every
column is nullable in Spark's schema; timestamps are written as Parquet
``TIMESTAMP(MICROS, UTC)``; files are named by Spark (``part-NNNNN-<uuid>.c000``),
compressed with snappy, and ordered by task, not by event time. There is no manifest
and no catalogs: the Spark lake is committed by Spark's own ``_SUCCESS`` (for the
catalogs, land one shard of the run with ``txnsim generate``).

This module imports pyspark only when called; nothing else in the package needs it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from runtime.units import US_PER_DAY
from schemas.event import transaction_schema
from simulator.errors import ConfigError
from simulator.settings.models import Settings
from simulator.settings.run import RunSeed, RunSpec, Shard

__all__ = ["SparkSummary", "generate", "session"]

log = logging.getLogger("txnsim.spark")

_KIND = "_txnsim_kind"


@dataclass(frozen=True)
class SparkSummary:
    """What a Spark run wrote."""

    out: str
    shards: int
    transactions: int
    labels: int


def generate(
    spark: Any, settings: Settings, out: str | None = None, shards: int | None = None
) -> SparkSummary:
    """Simulate ``settings`` on Spark and write the lake under ``out``.

    Args:
        spark: A ``pyspark.sql.SparkSession``.
        settings: The run's settings; the seed must be configured (every task draws
            from it).
        out: Where the lake goes (a folder, ``s3a://bucket/prefix``, ``dbfs:/...``);
            by default ``settings.out``.
        shards: Spark tasks, one shard each; by default Spark's default parallelism,
            at most one per cardholder block.

    Raises:
        ConfigError: For settings without a configured seed.
    """
    if settings.seed is None:
        raise ConfigError(
            "seed: the Spark engine needs a configured seed (--seed): every task draws from it"
        )
    blocks = -(-settings.population.cardholders // settings.population.block_size)
    n = shards or min(int(spark.sparkContext.defaultParallelism), blocks)
    n = max(1, n)
    out = _url(settings) if out is None else out
    payload = settings.model_dump_json()
    tx = transaction_schema().arrow
    lb = transaction_schema("fraud_label").arrow
    combined = _combined_schema(tx, lb)

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for k in batch.column(0).to_pylist():
                yield from _shard_batches(payload, int(k), n, combined)

    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    rows = (
        spark.range(n, numPartitions=n)
        .mapInArrow(task, from_arrow_schema(combined))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        transactions = rows.filter(F.col(_KIND) == "transaction").select(
            *[f.name for f in tx], "dt"
        )
        labels = rows.filter(F.col(_KIND) == "label").select(*[f.name for f in lb], "dt", "txn_dt")
        writer = {"partitionOverwriteMode": "dynamic"}
        transactions.write.options(**writer).mode("overwrite").partitionBy("dt").parquet(
            f"{out}/transactions"
        )
        labels.write.options(**writer).mode("overwrite").partitionBy("dt", "txn_dt").parquet(
            f"{out}/labels"
        )
        counts = {r[_KIND]: r["count"] for r in rows.groupBy(_KIND).count().collect()}
    finally:
        rows.unpersist()
    summary = SparkSummary(out, n, int(counts.get("transaction", 0)), int(counts.get("label", 0)))
    log.info(
        "spark run complete",
        extra={"out": out, "shards": n, "rows": summary.transactions, "labels": summary.labels},
    )
    return summary


def session(master: str, app: str = "txnsim", driver_memory: str = "4g") -> Any:
    """A SparkSession for the command line: ``master`` (``local[2]``, ``spark://...``).

    The Spark UI is off, the driver binds to loopback in local mode, and timestamps are
    written as Parquet microseconds in UTC. In local mode the tasks run in the driver's
    JVM, so ``driver_memory`` is theirs too (Spark's 1 GB default runs out sorting a
    few million rows into their partitions).

    Raises:
        ConfigError: If pyspark is not installed.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("--engine spark needs pyspark: pip install 'txnsim[spark]'") from None
    builder = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", driver_memory)
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    return builder.getOrCreate()


def _url(settings: Settings) -> str:
    """``settings.out`` as Spark names it: ``file:///abs/path``, or ``s3a://`` for S3."""
    if isinstance(settings.out, Path):
        return settings.out.expanduser().resolve().as_uri()
    return "s3a://" + str(settings.out).removeprefix("s3://")


def _combined_schema(tx: pa.Schema, lb: pa.Schema) -> pa.Schema:
    """Transactions and labels in one schema (shared names have the same types).

    Every field is nullable: a transaction row has no label time, a label row no amount.
    """
    fields = {f.name: f.with_nullable(True) for f in tx}
    for f in lb:
        fields.setdefault(f.name, f.with_nullable(True))
    extra = [
        pa.field(_KIND, pa.string()),
        pa.field("dt", pa.string()),
        pa.field("txn_dt", pa.string()),
    ]
    return pa.schema([*fields.values(), *extra])


def _shard_batches(payload: str, k: int, n: int, combined: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Shard ``k`` of ``n`` of the run: its transactions and labels as combined batches."""
    from simulator.model.engine import SliceSource
    from simulator.world.build import build_world

    settings = Settings.model_validate_json(payload)
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    start = dt.datetime.combine(settings.start_date, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=settings.days)
    spec = RunSpec.from_settings(settings)
    with SliceSource(world, spec, seed, start, end, 1, Shard(k, n)) as source:
        for part in source:
            day = part.start.date().isoformat()
            yield from _batches(
                part.table, "transaction", np.full(part.table.num_rows, day), None, combined
            )
            labels = part.labels
            if labels.num_rows:
                yield from _batches(
                    labels,
                    "label",
                    _dates(labels.column("label_time")),
                    _dates(labels.column("event_time")),
                    combined,
                )


def _dates(column: pa.ChunkedArray) -> np.ndarray:
    days = column.cast(pa.int64()).to_numpy() // US_PER_DAY
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")


def _batches(
    table: pa.Table, kind: str, day: np.ndarray, txn_day: np.ndarray | None, combined: pa.Schema
) -> Iterator[pa.RecordBatch]:
    n = table.num_rows
    columns = []
    for field in combined:
        if field.name == _KIND:
            columns.append(pa.array([kind] * n, pa.string()))
        elif field.name == "dt":
            columns.append(pa.array(day, pa.string()))
        elif field.name == "txn_dt":
            columns.append(
                pa.nulls(n, pa.string()) if txn_day is None else pa.array(txn_day, pa.string())
            )
        elif field.name in table.column_names:
            columns.append(table.column(field.name).combine_chunks().cast(field.type))
        else:
            columns.append(pa.nulls(n, field.type))
    yield from pa.Table.from_arrays(columns, schema=combined).to_batches(max_chunksize=65_536)
