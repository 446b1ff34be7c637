"""The world a run simulates: reference data, calendar, catalogs, places, prices, :class:`World`.

Builders take the settings sections they read and the run's random streams; the world
they build is fixed for the whole run.
"""

from __future__ import annotations

__all__: list[str] = []
