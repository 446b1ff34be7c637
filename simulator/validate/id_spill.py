"""64-bit id hashes, their on-disk bucket spill and the checks run one bucket at a time.

``txnsim validate`` must find duplicate transaction ids and broken previous-id chains in
memory that does not grow with the row count. Each row's transaction id, previous id,
card and time are hashed to 64 bits (:func:`hash_strings`) and appended as records
(:data:`RECORD`) to bucket files on disk by hash prefix (:class:`Spill`); every record
of one key lands in the same bucket, so each bucket is checked alone with numpy sorts
(:func:`check_bucket`) and peak memory is one bucket. A duplicate found by hash is only a
candidate: :func:`confirm_duplicates` re-checks it against the real strings, so a hash
collision is not reported. Findings are counted in a :class:`Tally`.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from simulator.core.ids import mix64

__all__ = [
    "BUCKET_RECORDS",
    "EXAMPLES",
    "FIRST",
    "FLUSH_RECORDS",
    "MAX_BUCKET_BITS",
    "PREV",
    "RECORD",
    "TX",
    "Spill",
    "Tally",
    "check_bucket",
    "confirm_duplicates",
    "hash_strings",
    "member",
]

_SECRET = 0x7A5C_0DE5_1DEA_5EED
#: Record kinds: a transaction's id, its previous id, or (no previous id) its card.
TX, PREV, FIRST = 0, 1, 2
RECORD = np.dtype(
    [("key", "<u8"), ("card", "<u8"), ("time", "<i8"), ("pos", "<u8"), ("kind", "u1")]
)
#: Example positions kept per kind of finding.
EXAMPLES = 5
_CONFIRM = 100
#: Records (33 bytes) per spilled bucket and per flush: they bound the spill's memory.
#: Past 1024 buckets (about 67 million rows) buckets grow instead of multiplying.
BUCKET_RECORDS = 1 << 17
FLUSH_RECORDS = 1 << 16
MAX_BUCKET_BITS = 10


def hash_strings(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hashes of a string array's values (a null hashes as the empty string)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    n = len(array)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], np.int32)[array.offset : array.offset + n + 1]
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if n and lengths.min() == lengths.max():  # the usual case: fixed-width hex ids
        width, start = int(lengths[0]), int(offsets[0])
        return _hash_fixed(data[start : start + n * width].reshape(n, width))
    out = np.empty(n, np.uint64)
    for width in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == width)
        out[rows] = _hash_fixed(data[offsets[rows, None] + np.arange(width)])
    return out


def _hash_fixed(chars: np.ndarray) -> np.ndarray:
    """Hashes of the rows of an (n, width) byte matrix."""
    n, width = chars.shape
    padded = np.zeros((n, -(-width // 8) * 8), np.uint8)
    padded[:, :width] = chars
    # The length seeds the hash, so "" and "\0" differ.
    h = np.full(n, width, np.uint64)
    for word in padded.view("<u8").T:
        h = mix64(h ^ word, _SECRET)
    return h


class Tally:
    """Counts and a few example positions per kind of finding."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[int]] = {}

    def flag(self, name: str, mask: np.ndarray, pos: np.ndarray) -> None:
        """Count the rows where ``mask`` holds; keep the first few of their positions."""
        hits = int(np.count_nonzero(mask))
        if not hits:
            return
        self.counts[name] += hits
        kept = self.examples.setdefault(name, [])
        if len(kept) < EXAMPLES:
            kept.extend(pos[mask][: EXAMPLES - len(kept)].tolist())


class Spill:
    """Records appended to bucket files by the top bits of their key."""

    def __init__(self, folder: Path, bits: int, flush_records: int) -> None:
        self._folder, self._bits, self._flush_records = folder, bits, flush_records
        self._pending: list[np.ndarray] = []
        self._count = 0

    def add(self, records: np.ndarray) -> None:
        """Queue records; write them to their buckets once enough are queued."""
        self._pending.append(records)
        self._count += len(records)
        if self._count >= self._flush_records:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        records = np.concatenate(self._pending)
        self._pending, self._count = [], 0
        bucket = records["key"] >> np.uint64(64 - self._bits) if self._bits else None
        if bucket is None:
            bounds = [0, len(records)]
        else:
            order = np.argsort(bucket, kind="stable")
            records, bucket = records[order], bucket[order]
            bounds = np.searchsorted(bucket, np.arange((1 << self._bits) + 1)).tolist()
        for b, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            if hi > lo:
                with open(self._folder / f"{b:05d}.bin", "ab") as handle:
                    records[lo:hi].tofile(handle)

    def buckets(self) -> Iterator[np.ndarray]:
        """Flush, then every non-empty bucket's records, in bucket order."""
        self._flush()
        for b in range(1 << self._bits):
            path = self._folder / f"{b:05d}.bin"
            if path.exists():
                yield np.fromfile(path, RECORD)


def member(sorted_keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which values are in ``sorted_keys``, and where (clipped to a valid index)."""
    idx = np.minimum(np.searchsorted(sorted_keys, values), max(len(sorted_keys) - 1, 0))
    if not len(sorted_keys):
        return np.zeros(len(values), bool), idx
    return sorted_keys[idx] == values, idx


def check_bucket(records: np.ndarray, tally: Tally, pairs: list[tuple[int, int]]) -> None:
    """Uniqueness and chain findings of one bucket (all records of a key share a bucket)."""
    kind = records["kind"]
    tx = records[kind == TX]
    tx = tx[np.argsort(tx["key"], kind="stable")]
    keys = tx["key"]
    same = keys[1:] == keys[:-1]
    if same.any():
        tally.counts["duplicate_transaction_id"] += int(same.sum())
        room = _CONFIRM - len(pairs)
        pairs.extend(
            zip(
                tx["pos"][:-1][same][:room].tolist(),
                tx["pos"][1:][same][:room].tolist(),
                strict=True,
            )
        )
    duplicated = np.unique(keys[1:][same])

    prev = records[kind == PREV]
    prev = prev[np.argsort(prev["key"], kind="stable")]
    pos = prev["pos"]
    tally.flag("forked", np.r_[False, prev["key"][1:] == prev["key"][:-1]], pos)
    found, idx = member(keys, prev["key"])
    tally.flag("missing_predecessor", ~found, pos)
    if not len(tx):
        return _check_firsts(records[kind == FIRST], tally)
    # A predecessor id that is itself duplicated is ambiguous: reported as a duplicate only.
    found &= ~np.isin(prev["key"], duplicated)
    target = tx[idx]
    other = found & (target["card"] != prev["card"])
    tally.flag("predecessor_other_card", other, pos)
    tally.flag("predecessor_later", found & ~other & (target["time"] > prev["time"]), pos)
    tally.flag("self_reference", found & (target["pos"] == pos), pos)
    _check_firsts(records[kind == FIRST], tally)


def _check_firsts(first: np.ndarray, tally: Tally) -> None:
    """A card's first transactions (null previous id); their key is the card's hash."""
    first = first[np.argsort(first["key"], kind="stable")]
    tally.counts["first_transactions"] += len(first)
    tally.flag("repeated_first", np.r_[False, first["key"][1:] == first["key"][:-1]], first["pos"])


def confirm_duplicates(
    tally: Tally, pairs: list[tuple[int, int]], ids: dict[int, str | None]
) -> None:
    """Keep only the duplicate pairs whose real ids (read back by position) are equal."""
    confirmed = [a for a, b in pairs if ids.get(a) == ids.get(b)]
    tally.counts["duplicate_transaction_id"] -= len(pairs) - len(confirmed)  # hash collisions
    tally.examples["duplicate_transaction_id"] = confirmed[:EXAMPLES]
