"""Transaction ids: unique by construction, random-looking, stable for a seed.

A transaction's position (days since 1970, slice of the day, cardholder block,
index in the block's output) packs into 64 bits; a keyed bijective mixer (the
SplitMix64 finaliser) turns that into an id. Distinct positions give distinct ids,
for any number of days and workers, with no coordination.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

__all__ = [
    "FIRST_DAY",
    "FRAUD_BLOCK",
    "LAST_DAY",
    "MAX_BLOCKS",
    "MAX_ROWS_PER_BLOCK_SLICE",
    "hex_ids",
    "mix64",
    "pack_keys",
]

_DAY_BITS, _SLICE_BITS, _BLOCK_BITS, _INDEX_BITS = 17, 5, 16, 26
_EPOCH = dt.date(1970, 1, 1).toordinal()
MAX_BLOCKS = 1 << _BLOCK_BITS
#: The block number reserved for fraud campaigns' transactions (populations use the others).
FRAUD_BLOCK = MAX_BLOCKS - 1
#: First and last simulated dates the id layout can hold.
FIRST_DAY = dt.date(1970, 1, 1)
LAST_DAY = FIRST_DAY + dt.timedelta(days=(1 << _DAY_BITS) - 1)
MAX_ROWS_PER_BLOCK_SLICE = 1 << _INDEX_BITS
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def pack_keys(day: dt.date, slice_index: int, block: int, count: int) -> np.ndarray:
    """Positions ``0..count-1`` of a block slice packed into unmixed 64-bit keys."""
    days = day.toordinal() - _EPOCH
    if not 0 <= days < (1 << _DAY_BITS):
        raise ValueError(f"date {day} is outside 1970..2328")
    if not 0 <= block < MAX_BLOCKS:
        raise ValueError(f"block {block} exceeds {MAX_BLOCKS - 1}")
    if count > MAX_ROWS_PER_BLOCK_SLICE:
        raise ValueError(f"{count} rows exceed {MAX_ROWS_PER_BLOCK_SLICE} per block and slice")
    head = (((days << _SLICE_BITS) | slice_index) << _BLOCK_BITS | block) << _INDEX_BITS
    return np.uint64(head) + np.arange(count, dtype=np.uint64)


def mix64(keys: np.ndarray, secret: int) -> np.ndarray:
    """Keyed bijection of 64-bit integers (XOR with a secret, then SplitMix64's finaliser)."""
    z = keys ^ np.uint64(secret)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hex_ids(values: np.ndarray, mask: np.ndarray | None = None) -> pa.StringArray:
    """16-character lowercase hex strings of 64-bit values, with optional nulls (mask true)."""
    raw = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    chars = np.empty((len(values), 16), dtype=np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    n = len(values)
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int32)
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little").tobytes())
        null_count = int(mask.sum())
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()), validity, null_count
    )
