"""Where a dataset to validate is and how its files are read.

A target is a folder or an ``s3://bucket/prefix`` (:func:`open_target`), holding
``transactions/`` or being that folder itself (:func:`locate`). This module reads the
Parquet footers for the ``schema`` check (:func:`check_schemas`), the catalogs as sorted
64-bit id hashes (:func:`load_catalogs`) and, at the end, the transaction ids at the few
row positions a report shows (:func:`resolve_ids`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.event import EventSchema, known_transaction_schemas, transaction_schema
from simulator.errors import ConfigError
from simulator.validate.id_spill import EXAMPLES, hash_strings, member
from simulator.validate.report import Check

__all__ = [
    "Catalogs",
    "DataFile",
    "Dataset",
    "check_schemas",
    "load_catalogs",
    "locate",
    "open_target",
    "partition_day",
    "resolve_ids",
]


def open_target(target: str, environ: Mapping[str, str]) -> tuple[pafs.FileSystem, str]:
    """A filesystem and root path for a folder or an ``s3://bucket/prefix``.

    For S3 the endpoint comes from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` and the
    region from ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` in ``environ``; credentials are
    left to the AWS SDK's own chain.
    """
    if not target.startswith("s3://"):
        return pafs.LocalFileSystem(), str(Path(target).resolve())
    options: dict[str, str] = {}
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme:
            options["scheme"], options["endpoint_override"] = parts.scheme, parts.netloc
        else:
            options["endpoint_override"] = endpoint
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options), target.removeprefix("s3://").rstrip("/")


@dataclass(frozen=True)
class DataFile:
    """A scanned Parquet file: its path, partition day, first row position, row groups."""

    path: str
    day: dt.date | None  # None: outside a valid dt= partition
    start: int
    group_rows: tuple[int, ...]


def _normalised(typ: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_large_string(typ):
        return pa.string()
    if pa.types.is_timestamp(typ) and typ.tz in ("UTC", "+00:00", "Z", "Etc/UTC"):
        return pa.timestamp(typ.unit, tz="UTC")
    return typ


def _schema_problems(
    actual: pa.Schema, expected: pa.Schema, fingerprint: str
) -> tuple[list[str], bool]:
    """What differs from the schema, and whether the rows can still be scanned."""
    problems = []
    names = [n for n in actual.names if n != "dt"]
    missing = [n for n in expected.names if n not in names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    extra = [n for n in names if n not in expected.names]
    if extra:
        problems.append(f"unknown column(s) {', '.join(extra)}")
    mistyped = False
    for want in expected:
        if want.name not in names:
            continue
        got = actual.field(want.name)
        if _normalised(got.type) != want.type:
            problems.append(f"{want.name} is {got.type}, the schema says {want.type}")
            mistyped = True
        if want.nullable and not got.nullable:
            problems.append(f"{want.name} is declared required; the schema allows null")
    if not missing and not extra and names != expected.names:
        problems.append("columns are not in the schema's order")
    stored = (actual.metadata or {}).get(b"avro.schema.fingerprint")
    if stored is not None and stored.decode() != fingerprint:
        problems.append(f"schema fingerprint {stored.decode()}, expected {fingerprint}")
    return problems, not missing and not mistyped


def partition_day(fragment: Any) -> dt.date | None:
    """The fragment's ``dt=`` partition date; None when absent or not a date."""
    value = ds.get_partition_keys(fragment.partition_expression).get("dt")
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass
class Catalogs:
    """The catalogs' ids as 64-bit hashes, for membership tests by binary search."""

    cards: np.ndarray  # sorted card id hashes
    owners: np.ndarray  # cardholder id hash of each card, aligned with ``cards``
    holders: np.ndarray
    merchants: np.ndarray
    orphan_owners: int


def _sorted_hashes(table: pa.Table, column: str) -> np.ndarray:
    return np.sort(hash_strings(table[column]))


def load_catalogs(fs: pafs.FileSystem, root: str) -> Catalogs | str:
    """The catalogs as hashes, or why they cannot be used."""
    paths = {}
    for name in ("cards", "cardholders", "merchants"):
        # One file, or a sharded run's folder of one file per shard.
        single = f"{root}/catalog/{name}.parquet"
        folder = f"{root}/catalog/{name}"
        found = fs.get_file_info(single).type == pafs.FileType.File
        if not found and fs.get_file_info(folder).type == pafs.FileType.Directory:
            single = folder
        paths[name] = single
    absent = [p for p in paths.values() if fs.get_file_info(p).type == pafs.FileType.NotFound]
    if absent:
        return f"catalog not found: {', '.join(absent)}"
    try:
        cards = pq.read_table(paths["cards"], columns=["card_id", "cardholder_id"], filesystem=fs)
        holders_table = pq.read_table(
            paths["cardholders"], columns=["cardholder_id"], filesystem=fs
        )
        merchants = pq.read_table(paths["merchants"], columns=["merchant_id"], filesystem=fs)
    except (OSError, pa.ArrowException) as exc:
        return f"catalog not readable: {exc}"
    card_keys = hash_strings(cards["card_id"])
    order = np.argsort(card_keys)
    holders = _sorted_hashes(holders_table, "cardholder_id")
    owners = hash_strings(cards["cardholder_id"])[order]
    return Catalogs(
        cards=card_keys[order],
        owners=owners,
        holders=holders,
        merchants=_sorted_hashes(merchants, "merchant_id"),
        orphan_owners=int(np.count_nonzero(~member(holders, owners)[0])),
    )


def resolve_ids(
    fs: pafs.FileSystem, files: list[DataFile], positions: set[int]
) -> dict[int, str | None]:
    """Transaction ids at global row positions, reading only the row groups that hold them."""
    starts = np.array([f.start for f in files], np.int64)
    wanted: dict[int, list[int]] = {}
    for p in sorted(positions):
        wanted.setdefault(int(np.searchsorted(starts, p, side="right")) - 1, []).append(p)
    out: dict[int, str | None] = {}
    for i, rows in wanted.items():
        f = files[i]
        bounds = np.cumsum((f.start, *f.group_rows))
        with fs.open_input_file(f.path) as handle:
            parquet = pq.ParquetFile(handle)
            for g in sorted({int(np.searchsorted(bounds, p, side="right")) - 1 for p in rows}):
                values = parquet.read_row_group(g, columns=["transaction_id"])["transaction_id"]
                for p in rows:
                    if bounds[g] <= p < bounds[g + 1]:
                        out[p] = values[p - int(bounds[g])].as_py()
    return out


@dataclass(frozen=True)
class Dataset:
    """A located dataset: its filesystem, root, transaction files and manifest."""

    fs: pafs.FileSystem
    root: str
    fragments: list[Any]  # pyarrow.dataset fragments, by path
    manifest: dict[str, Any] | None  # present: a complete batch run
    #: The full transaction schema, or the public one (no label fields) that a stream in
    #: ``stream.labels=separate`` mode writes and the sink lands; the first file decides.
    schema: EventSchema


def locate(target: str, environ: Mapping[str, str]) -> Dataset:
    """The dataset's files and manifest; :class:`ConfigError` when it is not one."""
    fs, root = open_target(target, environ)
    try:
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            raise ConfigError(f"{target}: no such folder or prefix")
        tx_root = f"{root}/transactions"
        if fs.get_file_info(tx_root).type != pafs.FileType.Directory:
            listing = fs.get_file_info(pafs.FileSelector(root))
            if not any(i.base_name.startswith("dt=") for i in listing):
                raise ConfigError(f"{target}: not a dataset (no transactions/, no dt= folders)")
            tx_root, root = root, root.rsplit("/", 1)[0]
        partitioning = ds.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
        # An explicit schema: discovery opens no file (a corrupt one is the schema check's).
        dataset = ds.dataset(
            tx_root,
            schema=transaction_schema().arrow,
            format="parquet",
            filesystem=fs,
            partitioning=partitioning,
        )
        fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
        schema = _written_with(fs, fragments)
        manifest_path = f"{root}/manifest.json"
        manifest = None
        if fs.get_file_info(manifest_path).type == pafs.FileType.File:
            with fs.open_input_stream(manifest_path) as handle:
                manifest = orjson.loads(handle.read())
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigError(f"{target}: cannot be read: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{target}: manifest.json is not valid JSON ({exc})") from exc
    if not fragments:
        raise ConfigError(f"{target}: not a dataset (no Parquet files under {tx_root})")
    return Dataset(fs, root, fragments, manifest, schema)


def _written_with(fs: pafs.FileSystem, fragments: list[Any]) -> EventSchema:
    """The known schema the first readable file names in its footer, else the full one."""
    for fragment in fragments[:1]:
        try:
            with fs.open_input_file(fragment.path) as handle:
                stored = pq.ParquetFile(handle).schema_arrow.metadata or {}
        except (pa.ArrowInvalid, OSError):
            break
        known = known_transaction_schemas()
        fingerprint = stored.get(b"avro.schema.fingerprint", b"").decode()
        return known.get(fingerprint, transaction_schema())
    return transaction_schema()


def check_schemas(data: Dataset) -> tuple[Check, list[Any], int]:
    """Footers only: the schema check, the files that can be scanned and their rows."""
    schema = data.schema
    found: dict[str, list[str]] = {}
    scannable, rows = [], 0
    for fragment in data.fragments:
        with data.fs.open_input_file(fragment.path) as handle:
            try:
                parquet = pq.ParquetFile(handle)
            except (pa.ArrowInvalid, OSError) as exc:
                found[fragment.path] = [f"not readable Parquet ({exc})"]
                continue
            problems, ok = _schema_problems(parquet.schema_arrow, schema.arrow, schema.fingerprint)
            if problems:
                found[fragment.path] = problems
            if ok:
                scannable.append(fragment)
                rows += parquet.metadata.num_rows
    full = transaction_schema()
    recorded = (data.manifest or {}).get("schema", {}).get("fingerprint", full.fingerprint)
    if recorded != full.fingerprint:
        found["manifest.json"] = [f"fingerprint {recorded}, expected {full.fingerprint}"]
    details = {
        "files": len(data.fragments),
        "files_with_problems": len(found),
        "files_not_scanned": len(data.fragments) - len(scannable),
    }
    examples = dict(itertools.islice(found.items(), 2 * EXAMPLES))
    return Check("schema", "violation" if found else "ok", details, examples), scannable, rows
