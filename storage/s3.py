"""An S3 bucket (or any S3-compatible store) as an object store, through boto3.

The sink's create-only write is a conditional ``PutObject`` with ``If-None-Match: *``.
Transient failures (5xx, throttling, timeouts, refused connections) are raised as
:class:`storage.errors.StoreUnavailable` for :class:`storage.retry.Retrying`: boto3 makes
one attempt per call, so the retry policy is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storage.errors import StoreError, StoreUnavailable

__all__ = ["S3Store"]


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

    @classmethod
    def connect(
        cls, bucket: str, prefix: str, endpoint_url: str | None, region: str | None
    ) -> S3Store:
        """A store on a new boto3 client (credentials from the standard AWS sources)."""
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            # The caller owns the retry policy (storage.retry.Retrying): one attempt a call.
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60),
        )
        return cls(bucket, prefix, client)

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

    def get(self, key: str) -> bytes | None:
        """``GetObject``, the whole body; None on 404."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(response["Body"].read())
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _translate(exc, f"GET s3://{self.bucket}/{self._key(key)}") from exc

    def put(self, key: str, data: bytes, metadata: dict[str, str]) -> None:
        """``PutObject``: S3 makes the new object visible whole, or not at all."""
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, Metadata=metadata
            )
        except Exception as exc:
            raise _translate(exc, f"PUT s3://{self.bucket}/{self._key(key)}") from exc

    def list(self, prefix: str) -> list[str]:
        """``ListObjectsV2``, every page; keys relative to the store's prefix."""
        keys: list[str] = []
        strip = len(self._key(""))
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                keys.extend(item["Key"][strip:] for item in page.get("Contents", ()))
        except Exception as exc:
            raise _translate(exc, f"LIST s3://{self.bucket}/{self._key(prefix)}") from exc
        return sorted(keys)

    def delete(self, keys: Iterable[str]) -> None:
        """``DeleteObjects``, 1,000 keys a request (the API's limit)."""
        pending = sorted(keys)
        for start in range(0, len(pending), 1000):
            batch = [{"Key": self._key(key)} for key in pending[start : start + 1000]]
            try:
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except Exception as exc:
                raise _translate(exc, f"DELETE {len(batch)} objects in s3://{self.bucket}") from exc
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StoreUnavailable(
                    f"DELETE s3://{self.bucket}/{first.get('Key')}: {first.get('Code')} "
                    f"({len(errors)} of {len(batch)} failed)"
                )


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


def _translate(exc: Exception, what: str) -> StoreError | StoreUnavailable:
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
