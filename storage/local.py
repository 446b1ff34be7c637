"""A folder as an object store: files that carry their own metadata."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from storage.errors import StoreError, StoreUnavailable

__all__ = ["PARQUET_METADATA_PREFIX", "LocalStore"]


class LocalStore:
    """A folder: objects are files that carry their own metadata.

    A Parquet object keeps it in its footer's key-value metadata (``txnsim.sink.*``), a
    JSON object under its ``"metadata"`` key, so an object and its metadata appear
    together or not at all (a separate metadata file could be raced by a second writer).

    Args:
        root: The destination folder (created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str]) -> bool:
        """Write a temporary file, fsync it, and hard-link it to its name (fails if taken)."""
        try:
            self._write(key, data, os.link)
        except FileExistsError:
            return False
        return True

    def put(self, key: str, data: bytes, metadata: dict[str, str]) -> None:
        """Write a temporary file, fsync it, and rename it over ``key`` (atomic).

        The metadata is not kept: a folder's objects carry theirs inside (see above).
        """
        del metadata
        self._write(key, data, os.replace)

    def _write(self, key: str, data: bytes, place: Callable[[Path, Path], None]) -> None:
        """Write ``data`` to a fsynced temporary file, then ``place`` it at ``key``.

        Raises:
            FileExistsError: If ``place`` refuses a taken name (``os.link``).
            StoreUnavailable: On any other OS error.
        """
        target = self.root / key
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                place(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(target.parent)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {target}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> list[str]:
        """Every file under ``prefix``, hidden temporary files left out."""
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def delete(self, keys: Iterable[str]) -> None:
        """Unlink each file."""
        for key in keys:
            try:
                (self.root / key).unlink(missing_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"cannot delete {self.root / key}: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None if there is no file."""
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {self.root / key}: {exc}") from exc

    def head(self, key: str) -> dict[str, str] | None:
        """The metadata the object carries, or None if there is no object."""
        import orjson
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = self.root / key
        if not target.exists():
            return None
        try:
            if target.suffix == ".parquet":
                footer = pq.read_metadata(target).metadata or {}
                return {
                    k.decode()[len(PARQUET_METADATA_PREFIX) :]: v.decode()
                    for k, v in footer.items()
                    if k.decode().startswith(PARQUET_METADATA_PREFIX)
                }
            loaded = orjson.loads(target.read_bytes())["metadata"]
            return {str(k): str(v) for k, v in loaded.items()}
        except (OSError, pa.ArrowException, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise StoreError(f"{target} exists but its metadata is unreadable: {exc}") from exc


#: Prefix of the sink's keys in a Parquet footer's key-value metadata.
PARQUET_METADATA_PREFIX = "txnsim.sink."


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
