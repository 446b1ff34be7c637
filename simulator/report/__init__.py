"""``txnsim report``: a self-contained HTML profile of a landed folder."""

from __future__ import annotations

__all__: list[str] = []
