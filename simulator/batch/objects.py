"""Landing a run in an object store (S3 or S3-compatible): the manifest is the commit point.

An object store has no rename, so a partition cannot be swapped in whole as in a folder.
Instead:

* Every object of a run has the run's token in its name (``part-00000-<token>.parquet``,
  ``catalog/cards-<token>.parquet``). The token is the configuration hash, which covers
  the seed: a run with other settings never overwrites another run's objects, and the
  same settings write the same bytes under the same names.
* ``manifest.json`` is written last, whole (a ``PutObject`` is atomic). A reader that
  trusts the manifest reads exactly the files it lists: the old run's until the new
  manifest lands, then the new run's, never a mix.
* After the manifest, every object it does not list under the run's ``transactions/dt=``
  prefixes and ``catalog/``, or among the label objects of the run's transaction dates
  (``labels/dt=*/txn-<date>-*``), is deleted (a replaced run's, or a crashed attempt's).
  Other dates, and other days' labels in shared label-date partitions, are left as they
  are, as in a folder.
* A shard (``--shard K/N``) names its objects as in a folder (``shard-...-part-...``,
  ``catalog/<name>/shard-...``, ``manifests/shard-....json``) and sweeps only its own
  objects, never another shard's; ``txnsim manifest merge`` writes the run's
  ``manifest.json`` and then sweeps what no shard lists.
* Transient failures (an outage, throttling, timeouts) are retried with backoff for
  ``retry_give_up_s``; past it the run fails with the store's error and no new manifest,
  so the old run stays the committed one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pyarrow as pa

from simulator.batch.files import Encoded, FileRecord
from simulator.batch.output import Naming, cuts
from simulator.settings.models import WriterConfig
from storage.base import ObjectStore
from storage.retry import Retrying

__all__ = ["StoreDestination"]

log = logging.getLogger("txnsim.generate")


class StoreDestination:
    """A bucket and prefix: token-named objects, the manifest last, then a sweep.

    Args:
        store: The object store.
        retry: The retry policy for transient failures.
        writer: File cutting and compression settings.
        metadata: Key-value metadata added to every file's schema.
        token: Names this run's objects (the configuration hash, shortened).
        naming: The run's or shard's names (by default a whole run's).
    """

    def __init__(
        self,
        store: ObjectStore,
        retry: Retrying,
        writer: WriterConfig,
        metadata: dict[bytes, bytes],
        token: str,
        naming: Naming = Naming(),  # noqa: B008 - a frozen value
    ) -> None:
        self.url = store.url
        self.naming = naming
        self._store = store
        self._retry = retry
        self._writer = writer
        self._metadata = metadata
        self._token = token
        self._object_metadata = {
            k.decode().replace(".", "-"): v.decode() for k, v in metadata.items()
        }
        #: Prefixes this run wrote into: swept of objects the manifest does not list.
        self._prefixes: set[str] = set()
        #: Datasets whose objects of these name stems are this run's: swept likewise.
        self._stems: list[tuple[str, tuple[str, ...]]] = []

    def partition(
        self, dataset: str, day: dt.date, keep: Callable[[str], bool] | None = None
    ) -> _StorePartition:
        """A partition uploaded file by file; it counts only once the manifest lists it.

        With ``keep`` (labels: other days' runs share the partition), nothing of the
        partition is swept but this run's own stems (see :meth:`replace_stems`).
        """
        prefix = f"{dataset}/dt={day.isoformat()}/"
        if keep is None:
            self._prefixes.add(prefix)
        return _StorePartition(self, prefix)

    def replace_stems(self, dataset: str, stems: Sequence[str]) -> list[dt.date]:
        """This run replaces ``dataset``'s objects named ``<stem>...``: none to rewrite.

        Objects are independent of each other; the sweep after the manifest deletes the
        unlisted ones of ``stems`` (a replaced run's).
        """
        self._stems.append((f"{dataset}/", tuple(stems)))
        return []

    def encode(self, table: pa.Table) -> Encoded:
        """``table`` encoded with the run's writer settings and metadata."""
        return Encoded.of(table, self._writer, self._metadata)

    def write_file(self, relative: str, encoded: Encoded) -> FileRecord:
        """Upload ``relative`` with the token before its suffix (``catalog/cards-<t>.parquet``)."""
        folder, _, name = relative.rpartition("/")
        if not folder:
            raise ValueError(f"{relative!r}: a run's files live in a folder (catalog/...)")
        stem, dot, suffix = name.rpartition(".")
        self._prefixes.add(f"{folder}/")
        return self._put_encoded(f"{folder}/{stem}-{self._token}{dot}{suffix}", encoded)

    def put_table(self, key: str, table: pa.Table) -> FileRecord:
        """Encode ``table`` as Parquet and upload it at ``key``; its record."""
        return self._put_encoded(key, self.encode(table))

    def _put_encoded(self, key: str, encoded: Encoded) -> FileRecord:
        self._put(key, encoded.data)
        digest = hashlib.sha256(encoded.data).hexdigest()
        return FileRecord(key, encoded.rows, len(encoded.data), digest)

    @property
    def rows_per_file(self) -> int:
        """Rows at most in one file."""
        return self._writer.rows_per_file

    def name(self, prefix: str, stem: str, number: int) -> str:
        """The key of part ``number`` of ``stem`` under ``prefix``."""
        return f"{prefix}{stem}part-{number:05d}-{self._token}.parquet"

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Upload the manifest (the commit point), then sweep what it does not list.

        Swept: the objects under the prefixes this run wrote, and those of the name stems
        it replaces (its transaction dates' labels), that the manifest does not list: a
        replaced run's or a crashed attempt's.
        """
        body = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        self._put(self.naming.manifest, body)
        listed = {entry["path"] for entry in manifest["files"]}
        stale = {key for prefix in sorted(self._prefixes) for key in self._list(prefix)}
        for dataset, stems in self._stems:
            stale |= {
                key for key in self._list(dataset) if key.rpartition("/")[2].startswith(stems)
            }
        stale -= listed
        if not self.naming.shard.whole:
            # Only this shard's own objects: the others' belong to shards still running.
            stale = {key for key in stale if self.naming.shard.name in key.rpartition("/")[2]}
        if stale:
            keys = sorted(stale)
            self._retry(lambda: self._store.delete(keys), f"delete {len(keys)} stale objects")
            log.info("stale objects deleted", extra={"objects": len(keys), "dest": self.url})

    def discard(self, keys: list[str]) -> None:
        """Delete ``keys`` once, best effort: an aborted run's uploads.

        The next run's sweep removes whatever this misses.
        """
        try:
            self._store.delete(keys)
        except Exception as exc:
            log.warning("could not delete an aborted run's objects", extra={"error": str(exc)})

    def _list(self, prefix: str) -> list[str]:
        return self._retry(lambda: self._store.list(prefix), f"list {prefix}")

    def _put(self, key: str, body: bytes) -> None:
        self._retry(lambda: self._store.put(key, body, self._object_metadata), f"put {key}")


class _StorePartition:
    """The files of one partition, uploaded as they are cut."""

    def __init__(self, destination: StoreDestination, prefix: str) -> None:
        self._destination = destination
        self._prefix = prefix
        self._files: list[FileRecord] = []
        self._counts: dict[str, int] = {}

    def write(self, table: pa.Table, stem: str = "") -> None:
        """Append rows (already sorted by time), cutting files at ``rows_per_file``."""
        for number, rows in cuts(table, self._destination.rows_per_file, self._counts, stem):
            key = self._destination.name(self._prefix, stem, number)
            self._files.append(self._destination.put_table(key, rows))

    def commit(self) -> list[FileRecord]:
        """The uploaded files (they replace the old run's when the manifest lands)."""
        return list(self._files)

    def abort(self) -> None:
        """Delete what was uploaded (best effort)."""
        self._destination.discard([record.path for record in self._files])
