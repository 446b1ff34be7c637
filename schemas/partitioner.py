"""Kafka's default partitioner (murmur2, as the Java client), vectorised over keys.

``partition = (murmur2(key) & 0x7fffffff) % partitions``, exactly as
``org.apache.kafka.clients.producer.internals.BuiltInPartitioner`` does for keyed
records, so Java, librdkafka (``murmur2_random``) and Python consumers agree on
where a card's transactions live.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from schemas.avro_encode import value_offsets

__all__ = ["murmur2", "partitions_for"]

_M = np.uint32(0x5BD1E995)
_SEED = 0x9747B28C


def murmur2(keys: np.ndarray) -> np.ndarray:
    """Murmur2 (Kafka's variant) of equal-length keys given as an (n, length) uint8 array."""
    if keys.ndim != 2 or keys.dtype != np.uint8:
        raise ValueError("keys must be an (n, length) uint8 array")
    n, length = keys.shape
    with np.errstate(over="ignore"):
        h = np.full(n, (_SEED ^ length) & 0xFFFFFFFF, dtype=np.uint32)
        whole = length // 4 * 4
        words = keys[:, :whole].copy().view("<u4") if whole else np.zeros((n, 0), np.uint32)
        for i in range(words.shape[1]):
            k = words[:, i] * _M
            k ^= k >> np.uint32(24)
            k *= _M
            h *= _M
            h ^= k
        tail = length - whole
        if tail >= 3:
            h ^= keys[:, whole + 2].astype(np.uint32) << np.uint32(16)
        if tail >= 2:
            h ^= keys[:, whole + 1].astype(np.uint32) << np.uint32(8)
        if tail >= 1:
            h ^= keys[:, whole].astype(np.uint32)
            h *= _M
        h ^= h >> np.uint32(13)
        h *= _M
        h ^= h >> np.uint32(15)
    return h


def partitions_for(keys: pa.StringArray, partitions: int) -> np.ndarray:
    """Partition of each UTF-8 key, grouping keys by length so each group is one array op.

    The keys' bytes are read from the Arrow buffers in place: no key becomes a Python
    object (a stream announces its 150,000 cards at once).
    """
    if partitions < 1:
        raise ValueError(f"partitions must be positive, got {partitions}")
    if keys.null_count:
        raise ValueError("a partition key is null")
    n = len(keys)
    out = np.empty(n, dtype=np.int32)
    if n == 0:
        return out
    offsets = value_offsets(keys).astype(np.int64)
    data = np.frombuffer(keys.buffers()[2], np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    for length in np.unique(lengths).tolist():
        idx = np.flatnonzero(lengths == length)
        raw = data[starts[idx, None] + np.arange(length)]
        out[idx] = (murmur2(raw) & np.uint32(0x7FFFFFFF)) % np.uint32(partitions)
    return out
