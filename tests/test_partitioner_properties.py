"""The partitioner is Kafka's: murmur2 as ``Utils.murmur2``, partitions as the Java producer's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.partitioner import murmur2, partitions_for

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995


def _java_murmur2(data: bytes) -> int:
    """A line-by-line transcription of Kafka's ``Utils.murmur2``, returning a Java ``int``.

    Java ints wrap at 32 bits (``& _MASK`` after each multiply) and ``>>>`` is a logical
    shift (the value is kept unsigned until the end); the switch falls through.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail, base = length % 4, length & ~3
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def _to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``: MIN_VALUE maps to 0)."""
    return number & 0x7FFFFFFF


def _java_partition(key: str, partitions: int) -> int:
    return _to_positive(_java_murmur2(key.encode("utf-8"))) % partitions


def _hash(key: bytes) -> int:
    """The project's murmur2 of one key, as a Java int."""
    raw = np.frombuffer(key, dtype=np.uint8).reshape(1, len(key))
    return int(murmur2(raw).view(np.int32)[0])


# Kafka's clients/src/test/.../utils/UtilsTest.java (testMurmur2) and librdkafka's
# src/rdmurmur2.c unit test (java_murmur2_results, which includes the empty key).
KNOWN_HASHES = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
    b"kafka": -798503068,  # 0xd067cf64
    b"giberish123456789": -1890243828,  # 0x8f552b0c
    b"1234": -1614185708,
    b"234": -406844982,
    b"34": -2026295078,
    b"4": 1514888353,
    b"PreAmbleWillBeRemoved,ThePrePartThatIs": 2017611548,
    b"reAmbleWillBeRemoved,ThePrePartThatIs": 1247982455,
    b"eAmbleWillBeRemoved,ThePrePartThatIs": -521871202,
    b"AmbleWillBeRemoved,ThePrePartThatIs": 1656271935,
    b"": 275646681,  # 0x106e08d9: seed 0x9747b28c, length 0, only the final mix
}

# (key, partitions, partition). The first three have negative hashes where abs() would
# pick another partition (2, 2 and 7), so they pin toPositive.
KNOWN_PARTITIONS = [
    ("21", 3, 0),
    ("foobar", 12, 6),
    ("key", 12, 1),
    ("kafka", 6, 4),
    ("abc", 6, 3),
    ("", 12, 9),
]

_keys = st.text(max_size=40)


@pytest.mark.parametrize("key", list(KNOWN_HASHES), ids=lambda k: k.decode() or "empty")
def test_murmur2_matches_kafka_on_known_vectors(key: bytes) -> None:
    assert _java_murmur2(key) == KNOWN_HASHES[key]  # the oracle itself is right
    assert _hash(key) == KNOWN_HASHES[key]


@pytest.mark.parametrize(("key", "partitions", "partition"), KNOWN_PARTITIONS)
def test_known_keys_land_on_the_java_producers_partition(
    key: str, partitions: int, partition: int
) -> None:
    assert _java_partition(key, partitions) == partition
    assert partitions_for(pa.array([key]), partitions).tolist() == [partition]


@given(st.binary(max_size=64))
def test_murmur2_matches_the_java_transcription(key: bytes) -> None:
    assert _hash(key) == _java_murmur2(key)


@given(st.integers(0, 40), st.integers(0, 30), st.data())
def test_vectorised_murmur2_equals_one_key_at_a_time(
    length: int, count: int, data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.binary(min_size=length, max_size=length), max_size=count))
    block = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    hashes = murmur2(block)
    assert hashes.dtype == np.uint32
    assert hashes.view(np.int32).tolist() == [_hash(key) for key in keys]
    # A non-contiguous view (every other byte column) hashes like its copy.
    if length:
        wide = np.repeat(block, 2, axis=1)
        assert murmur2(wide[:, ::2]).tolist() == hashes.tolist()


@given(st.lists(_keys, max_size=60), st.integers(1, 1000))
def test_partitions_are_the_java_producers_for_any_keys(keys: list[str], partitions: int) -> None:
    """Keys of mixed lengths (grouped internally by length) keep their order and partition."""
    got = partitions_for(pa.array(keys, pa.string()), partitions)
    assert got.dtype == np.int32
    assert got.tolist() == [_java_partition(key, partitions) for key in keys]
    assert all(0 <= p < partitions for p in got.tolist())
    one_by_one = [int(partitions_for(pa.array([key]), partitions)[0]) for key in keys]
    assert got.tolist() == one_by_one
    # The keys are read from the Arrow buffers: a slice starts at its own offset.
    sliced = pa.array(["before", *keys, "after"], pa.string()).slice(1, len(keys))
    assert partitions_for(sliced, partitions).tolist() == got.tolist()


def test_the_oracles_to_positive_is_not_abs() -> None:
    """What the negative-hash vectors above rely on."""
    assert _to_positive(-(2**31)) == 0  # abs(Integer.MIN_VALUE) stays negative in Java
    assert _to_positive(-1) == 2**31 - 1
    assert _to_positive(-973932308) == 2**31 - 973932308


@given(st.integers(max_value=0))
def test_no_partitions_is_refused(partitions: int) -> None:
    with pytest.raises(ValueError, match="partitions must be positive"):
        partitions_for(pa.array(["a"]), partitions)


@pytest.mark.parametrize(
    "keys",
    [np.zeros(4, np.uint8), np.zeros((2, 4), np.int8), np.zeros((1, 2, 2), np.uint8)],
    ids=["1d", "int8", "3d"],
)
def test_murmur2_refuses_anything_but_a_uint8_matrix(keys: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        murmur2(keys)


def test_no_keys_no_partitions() -> None:
    assert partitions_for(pa.array([], pa.string()), 3).tolist() == []
    assert murmur2(np.zeros((0, 7), np.uint8)).tolist() == []
