"""``txnsim validate``: check a landed dataset in memory that does not grow with its size."""

from __future__ import annotations

__all__: list[str] = []
