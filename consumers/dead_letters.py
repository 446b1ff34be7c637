"""Records that do not decode: kept whole under ``<dlq_prefix>/<topic>/partition=NNNNN/``.

A dead letter is one JSON object per record, named by its offset and written create-only
like a file, so a record re-read after a crash finds its letter already there. It holds
the record's key, value and headers (base64), its timestamp and why it did not decode;
its ``"metadata"`` names the topic, partition and offset.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import orjson

from consumers.landing import DeadLetter
from storage.base import ObjectStore
from storage.retry import Retrying

__all__ = ["DeadLetterWriter", "dead_letter_key", "from_message"]

log = logging.getLogger("txnsim.sink")


def from_message(message: Any, reason: str) -> DeadLetter:
    """The dead letter of a librdkafka message that did not decode, and why."""
    _, timestamp = message.timestamp()
    return DeadLetter(
        offset=message.offset(),
        timestamp_ms=timestamp if timestamp and timestamp > 0 else None,
        key=message.key(),
        value=message.value(),
        headers=[(name, value or b"") for name, value in (message.headers() or [])],
        error=reason,
    )


def dead_letter_key(prefix: str, topic: str, partition: int, offset: int) -> str:
    """``<prefix>/<topic>/partition=NNNNN/<offset>.json`` (sortable)."""
    return f"{prefix}/{topic}/partition={partition:05d}/{offset:020d}.json"


class DeadLetterWriter:
    """Lands the dead letters of one topic, create-only, retrying an unavailable store.

    Args:
        store: Where they land.
        retry: The retry policy for transient store failures.
        topic: The topic they were read from.
        prefix: The key prefix of dead letters (``dlq_prefix``).
    """

    def __init__(self, store: ObjectStore, retry: Retrying, topic: str, prefix: str) -> None:
        self._store = store
        self._retry = retry
        self._topic = topic
        self._prefix = prefix

    def land(self, partition: int, letter: DeadLetter) -> bool:
        """Write ``letter``; True if this call wrote it (False: it had landed already).

        Raises:
            StoreError: On a permanent destination error.
            StoreUnavailable: If the destination stays down past the retry policy.
        """
        key = dead_letter_key(self._prefix, self._topic, partition, letter.offset)
        metadata = {
            "topic": self._topic,
            "partition": str(partition),
            "offset": str(letter.offset),
        }
        body = orjson.dumps(
            {
                "metadata": metadata,
                "error": letter.error,
                "timestamp_ms": letter.timestamp_ms,
                "key_base64": _b64(letter.key),
                "value_base64": _b64(letter.value),
                "headers": [[name, _b64(value)] for name, value in letter.headers],
            },
            option=orjson.OPT_SORT_KEYS,
        )
        created = self._retry(lambda: self._store.put_if_absent(key, body, metadata), f"put {key}")
        if created:
            log.warning(
                "record dead-lettered",
                extra={"partition": partition, "offset": letter.offset, "error": letter.error},
            )
        return created


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None
