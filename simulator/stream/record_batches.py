"""Kafka record batches (format v2) built from arrays, many records per Arrow call.

aiokafka's ``BatchBuilder.append`` encodes one record per Python call: 0.74 us a record,
the event loop's largest cost at ``--speed max`` (py-spy, 7 days x 100k cardholders).
Here a call's records are sorted by partition, cut into batches of at most
``batch_bytes``, and every record is encoded at once with Arrow's
``binary_join_element_wise``, as the Avro values are (:mod:`schemas.avro_encode`). A
batch's records are then one slice of one buffer.

:class:`PrebuiltBatch` stands in for the ``BatchBuilder`` that aiokafka's producer
submits (``send_batch``) and drains: it takes the producer id, epoch and base sequence
when it is drained, and its CRC is computed then, as aiokafka's own builder does. The
layout is the Kafka protocol's (``RecordBatch`` v2, KIP-98):
https://kafka.apache.org/documentation/#recordbatch
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.avro_encode import value_offsets, varints
from simulator.core.order import stable_order
from simulator.stream.records import OutRecords

__all__ = ["ZSTD_LEVEL", "PrebuiltBatch", "encode_headers", "partition_batches"]

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta,
# baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, records count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC_AT = struct.calcsize(">qiib")
_ATTRIBUTES_AT = _CRC_AT + 4
_PRODUCER_AT = struct.calcsize(">qiibIhiqq")
_PRODUCER = struct.Struct(">qhi")
_AFTER_LENGTH = struct.calcsize(">qi")
_NO_LEADER_EPOCH = -1
_TRANSACTIONAL = 0x10
#: Compression codec ids of the attributes' low bits.
_CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
#: A record's bytes beyond its key, value and headers, at most: the length (5), the
#: attributes (1), the timestamp delta (10), the offset delta (5), two lengths (5 + 5).
_MAX_OVERHEAD = 31
_BINARY = pa.binary()
_NOTHING = pa.scalar(b"", _BINARY)
_ZERO = pa.scalar(b"\x00", _BINARY)


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes:
    """A record's headers: their count, then each key and value with its length."""
    out = bytearray(_varint(len(headers)))
    for key, value in headers:
        name = key.encode()
        out += _varint(len(name)) + name + _varint(len(value)) + value
    return bytes(out)


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


class PrebuiltBatch:
    """One partition's record batch, encoded; the producer state is set when drained.

    Args:
        records: The encoded records, back to back.
        count: How many.
        first_ms, max_ms: The first record's timestamp (the deltas' base) and the largest.
        attributes: Codec and transactional bits.
    """

    def __init__(
        self, records: memoryview, count: int, first_ms: int, max_ms: int, attributes: int
    ) -> None:
        self._buffer = bytearray(_HEADER.size + len(records))
        self._buffer[_HEADER.size :] = records
        _HEADER.pack_into(
            self._buffer,
            0,
            0,  # the broker assigns offsets
            len(self._buffer) - _AFTER_LENGTH,
            _NO_LEADER_EPOCH,
            2,  # magic
            0,  # the CRC, once the producer state is in
            attributes,
            count - 1,
            first_ms,
            max_ms,
            -1,  # no producer id yet
            -1,
            -1,
            count,
        )
        self._count = count
        self._built = False

    # The methods aiokafka's accumulator and sender call on a BatchBuilder.
    def close(self) -> None:
        """Already closed: nothing can be appended."""

    def closed(self) -> bool:
        """Always: the batch is whole when made."""
        return True

    def record_count(self) -> int:
        """Records in the batch."""
        return self._count

    def size(self) -> int:
        """Bytes of the batch, header included."""
        return len(self._buffer)

    def _set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int
    ) -> None:
        if self._built:
            raise RuntimeError("a batch's producer state is set before it is built")
        _PRODUCER.pack_into(self._buffer, _PRODUCER_AT, producer_id, producer_epoch, base_sequence)

    def _build(self) -> bytearray:
        if not self._built:
            crc = _crc32c(memoryview(self._buffer)[_ATTRIBUTES_AT:])
            struct.pack_into(">I", self._buffer, _CRC_AT, crc)
            self._built = True
        return self._buffer


#: zstd's level unless the settings give one: 1, as for the lake's files. A Kafka
#: producer's default is 3 (KIP-390); on the stream's own batches (a day of 100k
#: cardholders, 32.7 MB of Avro) level 1 took 56 ms against 77 ms for 0.275 of the bytes
#: against 0.252, and the producer alone ran 716-733k events/s against 537-583k
#: (2026-12-07).
ZSTD_LEVEL = 1


def partition_batches(
    records: OutRecords,
    headers: bytes,
    batch_bytes: int,
    *,
    transactional: bool,
    compression: str = "none",
    compression_level: int | None = None,
) -> list[tuple[int, list[PrebuiltBatch]]]:
    """Each partition's batches of ``records``, in record order within a partition.

    A partition's records are cut into batches of at most ``batch_bytes``; a record
    larger than that goes alone in its batch (the broker decides whether it is too
    large, as for aiokafka's own batches). The records of every partition are encoded
    together, in one pass over the call's arrays: a chunk of 32,768 records over 12
    partitions costs a dozen Arrow and numpy calls, not a dozen per partition (those
    small calls held the interpreter lock).
    """
    n = len(records)
    if n == 0:
        return []
    order = stable_order(records.partitions)
    parts = records.partitions[order]
    take = pa.array(order)
    keys, values = records.keys.take(take), records.values.take(take)
    stamps = np.asarray(records.timestamps_ms, dtype=np.int64)[order]
    key_length, value_length = _lengths(keys), _lengths(values)
    # Each record's encoded size at most (its varints at their widest), summed on.
    ends = np.cumsum(np.maximum(key_length, 0) + value_length + (len(headers) + _MAX_OVERHEAD))
    edges = [0, *(np.flatnonzero(np.diff(parts)) + 1).tolist(), n]
    limit = batch_bytes - _HEADER.size
    starts = np.concatenate(
        [lo + _cuts(ends[lo:hi] - (ends[lo - 1] if lo else 0), limit) for lo, hi in pairwise(edges)]
    )
    framed = _framed(keys, values, key_length, value_length, stamps, starts, headers)
    offsets = value_offsets(framed)
    data = memoryview(framed.buffers()[2])
    plain = _TRANSACTIONAL if transactional else 0
    compress = _compressor(compression, compression_level)
    latest = np.maximum.reduceat(stamps, starts).tolist()
    by_partition: list[tuple[int, list[PrebuiltBatch]]] = []
    for lo, hi, max_ms in zip(starts.tolist(), [*starts[1:].tolist(), n], latest, strict=True):
        payload, attributes = data[offsets[lo] : offsets[hi]], plain
        if compress is not None:
            packed = compress(payload)
            if len(packed) < len(payload):  # as aiokafka: sent plain unless it is smaller
                payload, attributes = memoryview(packed), plain | _CODECS[compression]
        batch = PrebuiltBatch(payload, hi - lo, int(stamps[lo]), max_ms, attributes)
        partition = int(parts[lo])
        if not by_partition or by_partition[-1][0] != partition:
            by_partition.append((partition, []))
        by_partition[-1][1].append(batch)
    return by_partition


def _framed(
    keys: pa.Array,
    values: pa.Array,
    key_length: np.ndarray,
    value_length: np.ndarray,
    stamps: np.ndarray,
    starts: np.ndarray,
    headers: bytes,
) -> pa.Array:
    """Every record as its batch holds it: deltas from the first record of its batch.

    The batches begin at rows ``starts``.
    """
    n = len(values)
    first = np.repeat(starts, np.diff(np.append(starts, n)))
    deltas = [
        varints(stamps - stamps[first], None),
        varints(np.arange(n, dtype=np.int64) - first, None),
    ]
    key_size, value_size = varints(key_length, None), varints(value_length, None)
    # The record's length is known from its pieces, so one join writes each record once.
    body = np.maximum(key_length, 0) + value_length + (1 + len(headers))
    for varint in (*deltas, key_size, value_size):
        body += _lengths(varint)
    return pc.binary_join_element_wise(
        varints(body, None),
        _ZERO,  # the record's attributes
        *deltas,
        key_size,
        keys.fill_null(b"") if keys.null_count else keys,
        value_size,
        values,
        pa.scalar(headers, _BINARY),
        _NOTHING,
    )


def _lengths(array: pa.Array) -> np.ndarray:
    """Byte lengths of a binary array's values, from its offsets; -1 for a null (a null key)."""
    lengths = np.diff(value_offsets(array)).astype(np.int64)
    if array.null_count:
        lengths[~array.is_valid().to_numpy(zero_copy_only=False)] = -1
    return lengths


def _cuts(ends: np.ndarray, limit: int) -> np.ndarray:
    """Greedy batch starts: each batch's bound stays within ``limit`` (one record at least)."""
    starts = [0]
    base = 0
    n = len(ends)
    while True:
        lo = starts[-1]
        hi = max(int(np.searchsorted(ends, base + limit, side="right")), lo + 1)
        if hi >= n:
            return np.asarray(starts, dtype=np.int64)
        starts.append(hi)
        base = int(ends[hi - 1])


def _compressor(compression: str, level: int | None) -> Callable[[memoryview], bytes] | None:
    """The codec of aiokafka's own builder for ``compression`` at ``level``; None for ``none``.

    A level of None is :data:`ZSTD_LEVEL` for zstd and aiokafka's own default for gzip
    and lz4 (a Kafka producer's, KIP-390).
    """
    if compression == "none":
        return None
    from aiokafka import codec

    if compression == "snappy":
        return codec.snappy_encode
    if compression == "gzip":
        return functools.partial(codec.gzip_encode, compresslevel=level)
    if compression == "zstd":
        return functools.partial(codec.zstd_encode, level=ZSTD_LEVEL if level is None else level)
    given = {} if level is None else {"level": level}
    return lambda data: codec.lz4_encode(bytes(data), **given)  # its compressor takes bytes


def _crc32c(data: memoryview) -> int:
    from aiokafka.record.util import calc_crc32c

    return calc_crc32c(data)
