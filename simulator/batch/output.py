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

Shard K of N of a run (``--shard K/N``) writes into the same layout beside the other
shards, with names that cannot collide: ``shard-KKKKK-of-NNNNN-part-NNNNN.parquet`` in
each partition, ``txn-<date>-shard-...`` label files, ``catalog/<name>/shard-....parquet``
(its blocks' cardholders and cards; merchants from shard 0) and its manifest at
``manifests/shard-KKKKK-of-NNNNN.json``. Shards may run at the same time into one
folder, so a shard never swaps a partition: its files are staged, renamed in one by
one, and only its own earlier files (and files of no shard of N, an unsharded run's)
are removed. ``txnsim manifest merge`` checks the shards' manifests and writes the
run's ``manifest.json`` (:mod:`simulator.batch.merge`).

Files are written to memory first and hashed as they are written to disk; the
manifest records each file's SHA-256 (:mod:`simulator.batch.files`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from simulator.batch.files import (
    Encoded,
    FileRecord,
    flush_files,
    write_encoded_file,
    write_json_atomic,
    write_staged,
)
from simulator.errors import OutputError
from simulator.settings.models import WriterConfig
from simulator.settings.run import WHOLE, Shard

__all__ = [
    "Destination",
    "FolderDestination",
    "Naming",
    "Partition",
    "PartitionWriter",
    "SharedPartition",
    "cuts",
    "flush_together",
]


@dataclass(frozen=True)
class Naming:
    """How a run, or one shard of it, names what it lands."""

    shard: Shard = WHOLE

    @property
    def stem(self) -> str:
        """What starts this shard's data files' names (empty for a whole run)."""
        return "" if self.shard.whole else f"{self.shard.name}-"

    def catalog(self, name: str) -> str:
        """Where a catalog lands: ``catalog/<name>.parquet``, a shard's in a folder."""
        if self.shard.whole:
            return f"catalog/{name}.parquet"
        return f"catalog/{name}/{self.shard.name}.parquet"

    @property
    def manifest(self) -> str:
        """``manifest.json``; a shard's ``manifests/shard-KKKKK-of-NNNNN.json``."""
        return "manifest.json" if self.shard.whole else f"manifests/{self.shard.name}.json"

    def sibling(self, name: str) -> bool:
        """Whether ``name`` is a file of another shard of the same run (same N)."""
        if self.shard.whole:
            return False
        tag = f"-of-{self.shard.count:05d}-"
        return "shard-" in name and tag in name and self.stem not in name


def cuts(
    table: pa.Table, per_file: int, counts: dict[str, int], stem: str
) -> Iterator[tuple[int, pa.Table]]:
    """``table`` in files of at most ``per_file`` rows, numbered on from ``counts[stem]``."""
    for offset in range(0, table.num_rows, per_file):
        number = counts.get(stem, 0)
        counts[stem] = number + 1
        yield number, table.slice(offset, per_file)


class _Staged:
    """The files of one ``dt=`` partition, written into a hidden staging folder first."""

    def __init__(
        self,
        root: Path,
        day: dt.date,
        writer: WriterConfig,
        metadata: dict[bytes, bytes],
        dataset: str,
    ) -> None:
        self._relative = f"{dataset}/dt={day.isoformat()}"
        self._final = root / self._relative
        self._staging = root / dataset / f".dt={day.isoformat()}.{uuid.uuid4().hex}.staging"
        self._writer = writer
        self._metadata = metadata
        self._files: list[FileRecord] = []
        self._unflushed: list[Path] = []
        self._counts: dict[str, int] = {}

    def write(self, table: pa.Table, stem: str = "") -> None:
        """Append rows (already sorted by time), cutting files at ``rows_per_file``.

        Files are named ``<stem>part-NNNNN.parquet``, numbered per stem.
        """
        for number, rows in cuts(table, self._writer.rows_per_file, self._counts, stem):
            if not self._files:
                self._stage()
            name = f"{stem}part-{number:05d}.parquet"
            relative = f"{self._relative}/{name}"
            record = write_staged(self._staging, name, rows, self._writer, self._metadata, relative)
            self._files.append(record)
            self._unflushed.append(self._staging / name)

    def _unflushed_files(self) -> list[Path]:
        """The files written since the last flush, handed over to be flushed."""
        files, self._unflushed = self._unflushed, []
        return files

    def _flush(self) -> None:
        """Put the staged files on disk (before they are swapped or renamed in)."""
        flush_files(self._unflushed_files())

    def _stage(self) -> None:
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot stage {self._final}: {exc.strerror or exc}") from exc

    def abort(self) -> None:
        """Drop the staged files, leaving any earlier partition in place."""
        shutil.rmtree(self._staging, ignore_errors=True)


class PartitionWriter(_Staged):
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
        super().__init__(root, day, writer, metadata, dataset)
        try:
            self._staging.mkdir(parents=True)
            if keep is not None and self._final.is_dir():
                for kept in sorted(self._final.iterdir()):
                    if kept.is_file() and keep(kept.name):
                        os.link(kept, self._staging / kept.name)
        except OSError as exc:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise OutputError(f"cannot stage {self._final}: {exc.strerror or exc}") from exc

    def commit(self) -> list[FileRecord]:
        """Replace the partition with the staged files; returns their records."""
        self._flush()
        old = self._final.with_name(f".{self._final.name}.{uuid.uuid4().hex}.old")
        try:
            if self._final.exists():
                os.replace(self._final, old)
            os.replace(self._staging, self._final)
        except OSError as exc:
            raise OutputError(f"cannot replace {self._final}: {exc.strerror or exc}") from exc
        shutil.rmtree(old, ignore_errors=True)
        return list(self._files)


class SharedPartition(_Staged):
    """One shard's files of a ``dt=`` partition that other shards write into too.

    Files are staged in a hidden folder and renamed into the partition one by one at
    :meth:`commit`, which then removes the partition's files that ``keep`` does not name
    and this shard did not just write: its own earlier files, and files of no shard of
    the run. Another shard's files are never touched, so shards may commit at once.

    Args:
        root: Output root.
        day: The partition's date.
        writer: File cutting and compression settings.
        metadata: Key-value metadata added to every file's schema.
        dataset: Folder of the dataset under the root.
        keep: Files already in the partition that stay (another shard's, another day's).
    """

    def __init__(
        self,
        root: Path,
        day: dt.date,
        writer: WriterConfig,
        metadata: dict[bytes, bytes],
        dataset: str,
        keep: Callable[[str], bool],
    ) -> None:
        super().__init__(root, day, writer, metadata, dataset)
        self._keep = keep

    def commit(self) -> list[FileRecord]:
        """Rename the staged files in, then drop the stale ones; returns the new records."""
        mine = {record.path.rpartition("/")[2] for record in self._files}
        self._flush()
        try:
            self._final.mkdir(parents=True, exist_ok=True)
            for name in sorted(mine):
                os.replace(self._staging / name, self._final / name)
            for path in self._final.iterdir():
                if path.is_file() and path.name not in mine and not self._keep(path.name):
                    path.unlink(missing_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot commit {self._final}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
        return list(self._files)


def flush_together(partitions: Sequence[Partition]) -> None:
    """Put the files written so far in many partitions on disk at once.

    Their :meth:`Partition.commit` then has nothing left to flush. Partitions in an
    object store have nothing to flush: an object is durable once put.
    """
    flush_files(
        [path for p in partitions if isinstance(p, _Staged) for path in p._unflushed_files()]
    )


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
    naming: Naming

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

    def encode(self, table: pa.Table) -> Encoded:
        """``table`` as this run's files are encoded (codec, metadata)."""
        ...

    def write_file(self, relative: str, encoded: Encoded) -> FileRecord:
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
        naming: The run's or shard's names (by default a whole run's).
    """

    def __init__(
        self,
        root: Path,
        writer: WriterConfig,
        metadata: dict[bytes, bytes],
        naming: Naming = Naming(),
    ) -> None:
        self.root = root
        self.url = str(root)
        self.naming = naming
        self._writer = writer
        self._metadata = metadata

    def partition(
        self, dataset: str, day: dt.date, keep: Callable[[str], bool] | None = None
    ) -> Partition:
        """A partition staged in a hidden folder and swapped in at commit.

        A shard's partition is shared with the other shards: its files are renamed in
        one by one (:class:`SharedPartition`), keeping the other shards' files.
        """
        if not self.naming.shard.whole:
            return SharedPartition(
                self.root,
                day,
                self._writer,
                self._metadata,
                dataset,
                keep if keep is not None else self.naming.sibling,
            )
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

    def encode(self, table: pa.Table) -> Encoded:
        """``table`` encoded with the run's writer settings and metadata."""
        return Encoded.of(table, self._writer, self._metadata)

    def write_file(self, relative: str, encoded: Encoded) -> FileRecord:
        """Write ``root/relative`` atomically."""
        return write_encoded_file(self.root, relative, encoded)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write ``root/manifest.json`` (a shard's under ``manifests/``) atomically."""
        write_json_atomic(self.root / self.naming.manifest, manifest)
