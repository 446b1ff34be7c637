"""Files landed whole: each file's record, and writes that a crash cannot leave half done.

A file of a run is encoded in memory, written and flushed to disk, and hashed; the
manifest records each file's SHA-256 (:class:`FileRecord`). A file in place of another
is written under a temporary name and renamed over it (:func:`write_parquet_file`,
:func:`write_json_atomic`); a file in a staging folder that is swapped in whole once
all its files are on disk is written in place (:func:`write_staged`) and flushed with
the others before the swap (:func:`flush_files`).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from schemas.parquet import parquet_bytes
from simulator.errors import OutputError
from simulator.settings.models import WriterConfig

__all__ = [
    "Encoded",
    "FileRecord",
    "flush_files",
    "write_encoded_file",
    "write_json_atomic",
    "write_parquet_file",
    "write_staged",
]

#: Files flushed at once at most.
_FLUSHERS = 16


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


@dataclass(frozen=True)
class Encoded:
    """A table encoded as a Parquet file in memory: what a destination writes, or a cache keeps."""

    data: bytes
    rows: int

    @classmethod
    def of(
        cls, table: pa.Table, writer: WriterConfig, metadata: dict[bytes, bytes] | None
    ) -> Encoded:
        """``table`` as :func:`~schemas.parquet.parquet_bytes` encodes it."""
        return cls(parquet_bytes(table, writer, metadata).to_pybytes(), table.num_rows)


def write_parquet_file(
    root: Path,
    relative: str,
    table: pa.Table,
    writer: WriterConfig,
    metadata: dict[bytes, bytes] | None = None,
) -> FileRecord:
    """Write ``table`` to ``root/relative`` atomically and return its record."""
    return write_encoded_file(root, relative, Encoded.of(table, writer, metadata))


def write_encoded_file(root: Path, relative: str, encoded: Encoded) -> FileRecord:
    """Write an encoded file to ``root/relative`` atomically and return its record."""
    _atomic_write(root / relative, memoryview(encoded.data))
    digest = hashlib.sha256(encoded.data).hexdigest()
    return FileRecord(relative, encoded.rows, len(encoded.data), digest)


def write_json_atomic(path: Path, payload: Any) -> bytes:
    """Write ``payload`` as sorted, indented JSON atomically; returns the bytes."""
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    _atomic_write(path, memoryview(data))
    return data


def _atomic_write(path: Path, data: memoryview) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _durable_write(tmp, data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def flush_files(paths: Sequence[Path]) -> None:
    """Flush every file of ``paths`` to disk, many at once.

    A flush waits on the disk, not the interpreter: flushed side by side, the file
    system commits them together (320 small label files: 0.32 s one after another).

    Raises:
        OutputError: Naming a file that could not be flushed.
    """
    if len(paths) <= 1:
        for path in paths:
            _flush(path)
        return
    with ThreadPoolExecutor(min(len(paths), _FLUSHERS), thread_name_prefix="txnsim-flush") as pool:
        for _ in pool.map(_flush, paths):
            pass


def _flush(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot flush {path}: {exc.strerror or exc}") from exc


def _durable_write(path: Path, data: memoryview) -> None:
    """Write ``path`` and flush it to disk (raises OSError)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_staged(
    folder: Path,
    name: str,
    table: pa.Table,
    writer: WriterConfig,
    metadata: dict[bytes, bytes] | None,
    relative: str,
) -> FileRecord:
    """Write ``table`` to ``folder/name`` in place, not yet flushed; its record as ``relative``.

    For a staging folder that is this writer's own and is swapped or renamed in only
    after :func:`flush_files` has put every file on disk: no temporary name (creating
    a file is most of a small file's cost on some file systems). The folder must exist.
    """
    data = parquet_bytes(table, writer, metadata)
    path = folder / name
    try:
        with open(path, "wb") as handle:
            handle.write(memoryview(data))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(memoryview(data)).hexdigest()
    return FileRecord(relative, table.num_rows, data.size, digest)
