"""Create-only object stores for the sink: a local folder or an S3 bucket.

The sink's exactly-once guarantee rests on two operations: ``put_if_absent`` (write an
object only if no object has that key, atomically) and ``head`` (the metadata of an
existing object). On S3 the first is a conditional ``PutObject`` with
``If-None-Match: *``; in a folder it is a hard link of a fully written temporary file,
which fails if the name exists. Nothing is ever overwritten.

Transient failures (5xx, throttling, timeouts, refused connections) are retried by
:class:`Retrying` with capped exponential backoff, for as long as it takes: a sink that
cannot land does not commit, and carries on when the store is back.
"""

from __future__ import annotations

import logging
import os
import random
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from consumers.errors import SinkError, StoreError, StoreUnavailable

__all__ = [
    "PARQUET_METADATA_PREFIX",
    "LocalStore",
    "ObjectStore",
    "Retrying",
    "S3Store",
    "open_store",
]

log = logging.getLogger("txnsim.sink.store")

T = TypeVar("T")


class ObjectStore(Protocol):
    """The two operations the sink needs, under keys relative to the destination."""

    url: str

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str]) -> bool:
        """Write ``data`` at ``key`` unless an object is there; True if this call wrote it."""
        ...

    def head(self, key: str) -> dict[str, str] | None:
        """The metadata of the object at ``key``, or None if there is none."""
        ...


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
        target = self.root / key
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(tmp, target)
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {target}: {exc.strerror or exc}") from exc
        return True

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


class S3Store:
    """An S3 bucket and prefix, through boto3; metadata travels as ``x-amz-meta-*``.

    Args:
        bucket: The bucket name.
        prefix: The key prefix (without a trailing slash), may be empty.
        client: A boto3 S3 client.
    """

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str]) -> bool:
        """A conditional ``PutObject`` (``If-None-Match: *``)."""
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                IfNoneMatch="*",
                Metadata=metadata,
            )
        except Exception as exc:
            code = _error_code(exc)
            if code in ("PreconditionFailed", "412"):
                return False
            raise _translate(exc, f"PUT s3://{self.bucket}/{self._key(key)}") from exc
        return True

    def head(self, key: str) -> dict[str, str] | None:
        """``HeadObject``; None on 404."""
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _translate(exc, f"HEAD s3://{self.bucket}/{self._key(key)}") from exc
        return {str(k): str(v) for k, v in response.get("Metadata", {}).items()}


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code", "")) or None


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


#: Error codes that a retry can fix although the status is below 500.
_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ConditionalRequestConflict",  # 409: a concurrent conditional write is in progress
    "OperationAborted",
    "InternalError",
    "ServiceUnavailable",
}


def _translate(exc: Exception, what: str) -> SinkError:
    """Sort a boto3 failure into transient (retry) or permanent (stop)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status, code = _status(exc), _error_code(exc)
        if (status is not None and status >= 500) or code in _TRANSIENT_CODES:
            return StoreUnavailable(f"{what}: {status} {code}")
        return StoreError(f"{what}: {status} {code}: {exc}")
    if isinstance(exc, BotoCoreError | OSError):  # connection refused/reset, timeouts
        return StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}")
    return StoreError(f"{what}: {type(exc).__name__}: {exc}")


@dataclass
class Retrying:
    """Retries transient failures with capped exponential backoff and jitter.

    Attributes:
        base_s: The first pause.
        cap_s: The longest pause.
        give_up_s: Give up (raise the failure's own type, with the attempts and time
            spent) after this long; None retries until ``should_stop`` says so.
        should_stop: Polled between attempts; True ends the retries (e.g. on SIGTERM).
        on_retry: Called with the failure before each pause (metrics, logs).
        sleep: The pause function (injected in tests).
        monotonic: The clock for ``give_up_s`` (injected in tests).
        jitter: Draws in [0, 1) that scale each pause by 0.5-1.5 (injected in tests).
        transient: The failures that are retried (the destination's by default).
        service: What is retried, for the logs.
    """

    base_s: float = 0.2
    cap_s: float = 10.0
    give_up_s: float | None = None
    should_stop: Callable[[], bool] = lambda: False
    on_retry: Callable[[Exception], None] = lambda exc: None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    #: A draw in [0, 1) that spreads pauses over 0.5-1.5x (clients do not retry in step).
    jitter: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    transient: tuple[type[Exception], ...] = (StoreUnavailable,)
    service: str = "destination"

    def __call__(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation`` until it succeeds, a permanent error, a stop or the deadline."""
        began = self.monotonic()
        pause = self.base_s
        attempt = 1
        while True:
            try:
                return operation()
            except self.transient as exc:
                waited = self.monotonic() - began
                if self.should_stop() or (self.give_up_s is not None and waited > self.give_up_s):
                    raise type(exc)(
                        f"{what}: gave up after {attempt} attempts in {waited:.1f} s: {exc}"
                    ) from exc
                self.on_retry(exc)
                log.warning(
                    f"{self.service} unavailable; retrying",
                    extra={
                        "what": what,
                        "attempt": attempt,
                        "pause_s": round(pause, 2),
                        "error": str(exc),
                    },
                )
                self.sleep(pause * (0.5 + self.jitter()))
                pause = min(self.cap_s, pause * 2)
                attempt += 1


def open_store(url: str, *, endpoint_url: str | None, region: str | None) -> ObjectStore:
    """The store for ``file:///path``, a plain path, or ``s3://bucket/prefix``.

    Raises:
        StoreError: For an unsupported scheme or an S3 URL without a bucket.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme else url)
        return LocalStore(path.expanduser().resolve())
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreError(f"dest {url!r} names no bucket (expected s3://bucket/prefix)")
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            # The sink owns the retry policy (Retrying): one attempt per call here.
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60),
        )
        return S3Store(parsed.netloc, parsed.path, client)
    raise StoreError(f"dest {url!r}: unsupported scheme {parsed.scheme!r} (use file:// or s3://)")
