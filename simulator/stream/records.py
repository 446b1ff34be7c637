"""Encoded records on their way to a publisher, in release order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OutRecords"]


@dataclass(frozen=True)
class OutRecords:
    """Encoded records in release order (all lists and arrays are row-aligned)."""

    keys: list[bytes]
    values: list[bytes]
    timestamps_ms: np.ndarray
    partitions: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def take(self, lo: int, hi: int) -> OutRecords:
        """Rows ``lo:hi``."""
        return OutRecords(
            self.keys[lo:hi], self.values[lo:hi], self.timestamps_ms[lo:hi], self.partitions[lo:hi]
        )
