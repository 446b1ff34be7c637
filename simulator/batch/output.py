"""Landing a run: date partitions, catalogs and a manifest, in a folder or an object store.

Where a run lands is a :class:`Destination`: :class:`FolderDestination` here, or
:class:`simulator.batch.objects.StoreDestination` (S3 and S3-compatible stores). In a
folder:

* ``transactions/dt=YYYY-MM-DD/part-NNNNN.parquet``: ``dt`` is the UTC date of the
  simulated event time. A partition is written to a hidden temporary folder and
  swapped in whole, so re-running a command replaces its files instead of adding
  to them, and a reader never sees half a day.
* ``labels/dt=YYYY-MM-DD/part-NNNNN.parquet``: fraud labels of the run's transactions,
  by the UTC date the label becomes available (which may be after the run's last day).
* ``catalog/{cardholders,cards,merchants}.parquet``, written after the run, so the
  cards include the replacements issued for blocked cards.
* ``manifest.json``: written last, so its presence means the run completed.

Files are written to memory first and hashed as they are written to disk; the
manifest records each file's SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa

from schemas.parquet import parquet_bytes
from simulator.errors import OutputError
from simulator.settings.models import WriterConfig

__all__ = [
    "Destination",
    "FileRecord",
    "FolderDestination",
    "Partition",
    "PartitionWriter",
    "cuts",
    "write_json_atomic",
    "write_parquet_file",
]


@dataclass(frozen=True)
class FileRecord:
    """A file the run wrote, relative to the output root."""

    path: str
    rows: int
    bytes: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        """The manifest entry of the file."""
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256}


def write_parquet_file(
    root: Path,
    relative: str,
    table: pa.Table,
    writer: WriterConfig,
    metadata: dict[bytes, bytes] | None = None,
) -> FileRecord:
    """Write ``table`` to ``root/relative`` atomically and return its record."""
    data = parquet_bytes(table, writer, metadata)
    target = root / relative
    _atomic_write(target, memoryview(data))
    return FileRecord(
        relative, table.num_rows, data.size, hashlib.sha256(memoryview(data)).hexdigest()
    )


def write_json_atomic(path: Path, payload: Any) -> bytes:
    """Write ``payload`` as sorted, indented JSON atomically; returns the bytes."""
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    _atomic_write(path, memoryview(data))
    return data


def _atomic_write(path: Path, data: memoryview) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def cuts(
    table: pa.Table, per_file: int, counts: dict[str, int], stem: str
) -> Iterator[tuple[int, pa.Table]]:
    """``table`` in files of at most ``per_file`` rows, numbered on from ``counts[stem]``."""
    for offset in range(0, table.num_rows, per_file):
        number = counts.get(stem, 0)
        counts[stem] = number + 1
        yield number, table.slice(offset, per_file)


class PartitionWriter:
    """Writes one ``dt=`` partition's files into a staging folder, then swaps it in.

    Args:
        root: Output root.
        day: The partition's date.
        writer: File cutting and compression settings.
        metadata: Key-value metadata added to every file's schema.
        dataset: Folder of the dataset under the root (``transactions``, ``labels``).
        keep: Files of the partition already in place that stay in it (hard-linked into
            the staging folder); by default none: the partition is replaced whole.
    """

    def __init__(
        self,
        root: Path,
        day: dt.date,
        writer: WriterConfig,
        metadata: dict[bytes, bytes],
        dataset: str = "transactions",
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        self._root = root
        self._relative = f"{dataset}/dt={day.isoformat()}"
        self._final = root / self._relative
        self._staging = root / dataset / f".dt={day.isoformat()}.{uuid.uuid4().hex}.staging"
        self._writer = writer
        self._metadata = metadata
        self._files: list[FileRecord] = []
        self._counts: dict[str, int] = {}
        try:
            self._staging.mkdir(parents=True)
            if keep is not None and self._final.is_dir():
                for kept in sorted(self._final.iterdir()):
                    if kept.is_file() and keep(kept.name):
                        os.link(kept, self._staging / kept.name)
        except OSError as exc:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise OutputError(f"cannot stage {self._final}: {exc.strerror or exc}") from exc

    def write(self, table: pa.Table, stem: str = "") -> None:
        """Append rows (already sorted by time), cutting files at ``rows_per_file``.

        Files are named ``<stem>part-NNNNN.parquet``, numbered per stem.
        """
        for number, rows in cuts(table, self._writer.rows_per_file, self._counts, stem):
            name = f"{stem}part-{number:05d}.parquet"
            record = write_parquet_file(self._staging, name, rows, self._writer, self._metadata)
            self._files.append(
                FileRecord(f"{self._relative}/{name}", record.rows, record.bytes, record.sha256)
            )

    def commit(self) -> list[FileRecord]:
        """Replace the partition with the staged files; returns their records."""
        old = self._final.with_name(f".{self._final.name}.{uuid.uuid4().hex}.old")
        try:
            if self._final.exists():
                os.replace(self._final, old)
            os.replace(self._staging, self._final)
        except OSError as exc:
            raise OutputError(f"cannot replace {self._final}: {exc.strerror or exc}") from exc
        shutil.rmtree(old, ignore_errors=True)
        return list(self._files)

    def abort(self) -> None:
        """Drop the staged files, leaving any earlier partition in place."""
        shutil.rmtree(self._staging, ignore_errors=True)


class Partition(Protocol):
    """One ``dt=`` partition of one dataset being written."""

    def write(self, table: pa.Table, stem: str = "") -> None:
        """Append rows (already sorted), cutting files at ``rows_per_file``.

        ``stem`` starts the files' names (``<stem>part-NNNNN``), numbered per stem.
        """
        ...

    def commit(self) -> list[FileRecord]:
        """Make the partition's files the partition's content; their records."""
        ...

    def abort(self) -> None:
        """Drop what was written, leaving an earlier run's partition in place."""
        ...


class Destination(Protocol):
    """Where a run lands: partitions, catalog files, and the manifest last."""

    url: str

    def partition(
        self, dataset: str, day: dt.date, keep: Callable[[str], bool] | None = None
    ) -> Partition:
        """A writer for ``<dataset>/dt=<day>/``.

        ``keep`` names the files already there that stay; by default the partition is
        replaced whole.
        """
        ...

    def replace_stems(self, dataset: str, stems: Sequence[str]) -> list[dt.date]:
        """This run replaces ``dataset``'s files named ``<stem>...`` wherever they are.

        Returns the partitions that hold such files, which the run must rewrite (without
        them) even where it has nothing new to put.
        """
        ...

    def write_file(self, relative: str, table: pa.Table) -> FileRecord:
        """Write one file (a catalog) at about ``relative``; its record names where."""
        ...

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write ``manifest.json``: the run's commit point. Called last, once."""
        ...


class FolderDestination:
    """A local (or mounted) folder: partitions are swapped in whole, files renamed in.

    Args:
        root: The output folder.
        writer: File cutting and compression settings.
        metadata: Key-value metadata added to every file's schema.
    """

    def __init__(self, root: Path, writer: WriterConfig, metadata: dict[bytes, bytes]) -> None:
        self.root = root
        self.url = str(root)
        self._writer = writer
        self._metadata = metadata

    def partition(
        self, dataset: str, day: dt.date, keep: Callable[[str], bool] | None = None
    ) -> PartitionWriter:
        """A partition staged in a hidden folder and swapped in at commit."""
        return PartitionWriter(
            self.root, day, self._writer, self._metadata, dataset=dataset, keep=keep
        )

    def replace_stems(self, dataset: str, stems: Sequence[str]) -> list[dt.date]:
        """The partitions of ``dataset`` in the folder holding files of ``stems``."""
        found = set()
        for stem in stems:
            for path in (self.root / dataset).glob(f"dt=*/{stem}*"):
                found.add(dt.date.fromisoformat(path.parent.name.removeprefix("dt=")))
        return sorted(found)

    def write_file(self, relative: str, table: pa.Table) -> FileRecord:
        """Write ``root/relative`` atomically."""
        return write_parquet_file(self.root, relative, table, self._writer, self._metadata)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write ``root/manifest.json`` atomically."""
        write_json_atomic(self.root / "manifest.json", manifest)
