"""The pure core: the event heap, seeded streams, sampling, geometry and ids.

Standard library and numpy only; nothing here reads a clock, a file or the settings.
"""

from __future__ import annotations

__all__: list[str] = []
