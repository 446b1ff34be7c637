"""What a destination must do, and which store a URL names.

Two kinds of writer use a store. The sink writes create-only (``put_if_absent``) and
reads back what it finds (``head``): nothing is ever overwritten, which its exactly-once
guarantee rests on. The batch job replaces a run's objects (``put``), lists what a
prefix holds and deletes what its new manifest no longer lists (``list``, ``delete``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from storage.errors import StoreError

__all__ = ["ObjectStore", "S3Settings", "open_store"]


class S3Settings(BaseModel):
    """The ``s3`` section: where the S3 API is (credentials come from the AWS sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint override (MinIO, test servers)."
    )
    region: str | None = None


class ObjectStore(Protocol):
    """Objects under keys relative to the destination (``/``-separated)."""

    url: str

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str]) -> bool:
        """Write ``data`` at ``key`` unless an object is there; True if this call wrote it."""
        ...

    def head(self, key: str) -> dict[str, str] | None:
        """The metadata of the object at ``key``, or None if there is none."""
        ...

    def get(self, key: str) -> bytes | None:
        """The bytes of the object at ``key``, or None if there is none."""
        ...

    def put(self, key: str, data: bytes, metadata: dict[str, str]) -> None:
        """Write ``data`` at ``key`` whole, replacing any object there."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` (a folder-like prefix ending in ``/``), sorted."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the objects at ``keys`` (a missing one is not an error)."""
        ...


def open_store(url: str, *, s3: S3Settings | None = None, name: str = "dest") -> ObjectStore:
    """The store for ``file:///path``, a plain path, or ``s3://bucket/prefix``.

    ``name`` is the setting that gave the URL, for the errors (``dest``, ``out``).

    Raises:
        StoreError: For an unsupported scheme or an S3 URL without a bucket.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        from storage.local import LocalStore

        path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme else url)
        return LocalStore(path.expanduser().resolve())
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreError(f"{name} {url!r} names no bucket (expected s3://bucket/prefix)")
        from storage.s3 import S3Store

        s3 = s3 or S3Settings()
        return S3Store.connect(parsed.netloc, parsed.path, s3.endpoint_url, s3.region)
    raise StoreError(f"{name} {url!r}: unsupported scheme {parsed.scheme!r} (use file:// or s3://)")
