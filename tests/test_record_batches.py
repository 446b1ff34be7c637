"""Kafka record batches built from arrays are the batches aiokafka's own builder writes.

The stream hands aiokafka's producer batches it built whole
(:mod:`simulator.stream.record_batches`). These tests hold them to aiokafka's
``DefaultRecordBatchBuilder``, byte for byte, and read them back with aiokafka's reader;
the broker's acceptance of them is tested end to end by ``test_stream_kafka`` and
``test_exactly_once``.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.stream.record_batches import (
    ZSTD_LEVEL,
    PrebuiltBatch,
    encode_headers,
    partition_batches,
)
from simulator.stream.records import OutRecords

_keys = st.one_of(st.none(), st.binary(max_size=40))
_records = st.lists(
    st.tuples(_keys, st.binary(max_size=600), st.integers(0, 2**41)), min_size=1, max_size=60
)
_headers = st.lists(st.tuples(st.text(min_size=1, max_size=12), st.binary(max_size=30)), max_size=3)


def _batches(
    records: list[tuple[bytes | None, bytes, int]],
    headers: list[tuple[str, bytes]],
    batch_bytes: int,
    *,
    transactional: bool,
    compression: str = "none",
    level: int | None = None,
) -> list[PrebuiltBatch]:
    """The batches of ``records``, all of one partition."""
    keys, values, stamps = zip(*records, strict=True)
    out = OutRecords.of(keys, values, np.array(stamps), np.zeros(len(records)))
    ((partition, batches),) = partition_batches(
        out,
        encode_headers(headers),
        batch_bytes,
        transactional=transactional,
        compression=compression,
        compression_level=level,
    )
    assert partition == 0
    return batches


def _aiokafka(
    records: list[tuple[bytes | None, bytes, int]],
    headers: list[tuple[str, bytes]],
    *,
    transactional: bool,
    state: tuple[int, int, int],
) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=int(transactional),
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=2**31 - 1,
    )
    for offset, (key, value, stamp) in enumerate(records):
        assert builder.append(offset, stamp, key, value, headers) is not None
    builder.set_producer_state(*state)
    return builder.build()


def _read(buffer: bytes | bytearray) -> tuple[DefaultRecordBatch, list[tuple]]:
    batch = DefaultRecordBatch(bytes(buffer))
    assert batch.validate_crc()
    return batch, [(r.key, r.value, r.timestamp, r.headers) for r in batch]


@settings(max_examples=150, deadline=None)
@given(_records, _headers, st.booleans(), st.tuples(st.integers(0, 2**40), st.integers(0, 99)))
def test_one_batch_is_aiokafkas_batch_byte_for_byte(
    records: list[tuple[bytes | None, bytes, int]],
    headers: list[tuple[str, bytes]],
    transactional: bool,
    producer: tuple[int, int],
) -> None:
    (batch,) = _batches(records, headers, 2**30, transactional=transactional)
    state = (*producer, 17)
    batch._set_producer_state(*state)
    assert batch.record_count() == len(records)
    built = batch._build()
    assert built == _aiokafka(records, headers, transactional=transactional, state=state)
    assert batch._build() is built  # a retried batch is sent as it was
    assert batch.size() == len(built)


@settings(max_examples=100, deadline=None)
@given(_records, _headers, st.integers(120, 3000))
def test_records_are_cut_in_order_into_bounded_batches(
    records: list[tuple[bytes | None, bytes, int]],
    headers: list[tuple[str, bytes]],
    batch_bytes: int,
) -> None:
    batches = _batches(records, headers, batch_bytes, transactional=True)
    read: list[tuple] = []
    for batch in batches:
        batch._set_producer_state(7, 0, len(read))
        got, rows = _read(batch._build())
        assert got.is_transactional
        assert got.base_sequence == len(read)
        assert got.last_offset_delta == len(rows) - 1
        assert got.max_timestamp == max(stamp for _, _, stamp, _ in rows)
        # Within the bound, unless a single record is larger than it.
        assert batch.size() <= batch_bytes or len(rows) == 1
        read += rows
    assert read == [(key, value, stamp, headers) for key, value, stamp in records]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(_keys, st.binary(max_size=300), st.integers(0, 2**41), st.integers(0, 4))),
    _headers,
    st.integers(120, 2000),
    st.booleans(),
)
def test_a_calls_partitions_are_each_partitions_own_batches(
    records: list[tuple[bytes | None, bytes, int, int]],
    headers: list[tuple[str, bytes]],
    batch_bytes: int,
    transactional: bool,
) -> None:
    """All partitions framed in one pass give each partition's batches, byte for byte."""
    out = OutRecords.of(
        [r[0] for r in records],
        [r[1] for r in records],
        np.array([r[2] for r in records], np.int64),
        np.array([r[3] for r in records], np.int32),
    )
    encoded = encode_headers(headers)
    got = partition_batches(out, encoded, batch_bytes, transactional=transactional)
    assert [partition for partition, _ in got] == sorted({r[3] for r in records})
    for partition, batches in got:
        own = [r[:3] for r in records if r[3] == partition]
        alone = _batches(own, headers, batch_bytes, transactional=transactional)
        assert [b.record_count() for b in batches] == [b.record_count() for b in alone]
        for ours, theirs in zip(batches, alone, strict=True):
            ours._set_producer_state(3, 1, 0)
            theirs._set_producer_state(3, 1, 0)
            assert ours._build() == theirs._build()


@pytest.mark.parametrize("compression", ["gzip", "lz4", "zstd", "snappy"])
def test_a_compressed_batch_reads_back_and_an_incompressible_one_is_sent_plain(
    compression: str,
) -> None:
    repetitive = [
        (b"card-%d" % (i % 7), b"amount=12.50;" * 20, 1_700_000_000_000 + i) for i in range(300)
    ]
    (batch,) = _batches(
        repetitive, [("h", b"v")], 2**30, transactional=False, compression=compression
    )
    got, rows = _read(batch._build())
    assert got.compression_type != 0
    assert batch.size() < sum(len(v) for _, v, _ in repetitive)
    assert rows == [(k, v, t, [("h", b"v")]) for k, v, t in repetitive]

    noise = np.random.default_rng(3).bytes(4000)
    (plain,) = _batches([(None, noise, 5)], [], 2**30, transactional=False, compression=compression)
    got, rows = _read(plain._build())
    assert got.compression_type == 0
    assert rows == [(None, noise, 5, [])]


@pytest.mark.parametrize(
    ("compression", "low", "high"), [("zstd", 1, 19), ("gzip", 1, 9), ("lz4", 1, 12)]
)
def test_the_configured_level_is_the_codecs_and_reads_back_the_same(
    compression: str, low: int, high: int
) -> None:
    rng = np.random.default_rng(11)
    # Avro-like values: a few fields from small vocabularies, so levels differ in size.
    records = [
        (
            b"card-%d" % rng.integers(500),
            rng.choice([b"ecom", b"chip", b"tap"]) * 9
            + rng.integers(0, 10**9).tobytes()
            + b"USD;5411;" * 3,
            1_700_000_000_000 + i,
        )
        for i in range(2000)
    ]
    sizes = {}
    for level in (low, high):
        (batch,) = _batches(
            records, [], 2**30, transactional=False, compression=compression, level=level
        )
        got, rows = _read(batch._build())
        assert got.compression_type != 0
        assert rows == [(k, v, t, []) for k, v, t in records]
        sizes[level] = batch.size()
    assert sizes[high] < sizes[low]  # the level reaches the codec
    if compression == "zstd":  # unset, zstd runs at the stream's own level
        (batch,) = _batches(records, [], 2**30, transactional=False, compression=compression)
        assert batch.size() == sizes[ZSTD_LEVEL]


def test_the_producer_state_cannot_change_once_built() -> None:
    (batch,) = _batches([(b"k", b"v", 1)], [], 2**20, transactional=False)
    batch._build()
    with pytest.raises(RuntimeError, match="before it is built"):
        batch._set_producer_state(1, 0, 0)
