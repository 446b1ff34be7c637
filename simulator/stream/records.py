"""Encoded records on their way to a publisher, in release order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = ["OutRecords"]

_BINARY = pa.binary()


@dataclass(frozen=True)
class OutRecords:
    """Encoded records in release order (all arrays are row-aligned).

    Keys and values stay Arrow binary arrays from the encoder to the Kafka batches, so
    no Python object is made per record on the way.
    """

    keys: pa.Array
    values: pa.Array
    timestamps_ms: np.ndarray
    partitions: np.ndarray

    @classmethod
    def of(
        cls,
        keys: Sequence[bytes | None],
        values: Sequence[bytes],
        timestamps_ms: np.ndarray,
        partitions: np.ndarray,
    ) -> OutRecords:
        """Records from Python bytes."""
        return cls(
            pa.array(keys, _BINARY),
            pa.array(values, _BINARY),
            np.asarray(timestamps_ms, np.int64),
            np.asarray(partitions, np.int32),
        )

    def __len__(self) -> int:
        return len(self.values)

    def take(self, lo: int, hi: int) -> OutRecords:
        """Rows ``lo:hi``."""
        return OutRecords(
            self.keys[lo:hi], self.values[lo:hi], self.timestamps_ms[lo:hi], self.partitions[lo:hi]
        )

    def rows(self) -> list[tuple[bytes | None, bytes, int, int]]:
        """Key, value, timestamp (ms) and partition of each record, as Python objects."""
        return list(
            zip(
                self.keys.to_pylist(),
                self.values.to_pylist(),
                self.timestamps_ms.tolist(),
                self.partitions.tolist(),
                strict=True,
            )
        )
