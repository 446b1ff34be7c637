"""Simulated time against wall time: the pacing layer's clock.

The simulation core never reads a clock; only the replay layer does, through a
:class:`WallSource` that tests replace. :class:`SimClock` maps simulated instants to
wall instants at a speed factor (simulated seconds per wall second; ``None`` means
as fast as possible) and reports how far behind schedule the releases are. Modelled
on SimPy's real-time environment (``factor``, ``strict``) and trio's ``MockClock``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from simulator.errors import LagExceeded

__all__ = ["FakeWall", "MonotonicWall", "SimClock", "WallSource"]


class WallSource(Protocol):
    """Where wall time comes from."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of wall time."""
        ...


class MonotonicWall:
    """The real wall: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop."""
        await asyncio.sleep(seconds)


class FakeWall:
    """A wall clock for tests: sleeping advances it instantly; it never goes back.

    Args:
        start: Initial reading.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.slept = 0.0

    def now(self) -> float:
        """The current fake reading."""
        return self._now

    def jump(self, seconds: float) -> None:
        """Advance the clock (e.g. to simulate slow work).

        Raises:
            ValueError: For a negative jump.
        """
        if seconds < 0:
            raise ValueError(f"time cannot go backwards (jump of {seconds} s)")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` and yield to the event loop once."""
        if seconds > 0:
            self._now += seconds
            self.slept += seconds
        await asyncio.sleep(0)


class SimClock:
    """Maps simulated microseconds to wall seconds at a fixed speed.

    Args:
        sim_start_us: Simulated instant that corresponds to the wall reading at creation.
        speed: Simulated seconds per wall second (1 = live, 60, 3600); None: no pacing.
        wall: Wall time source.
        max_lag_s: Fail (:class:`LagExceeded`) when more than this many simulated seconds
            behind schedule; None only reports the lag.
    """

    def __init__(
        self,
        sim_start_us: int,
        speed: float | None,
        wall: WallSource,
        max_lag_s: float | None = None,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._sim_start_us = sim_start_us
        self._speed = speed
        self._wall = wall
        self._wall_start = wall.now()
        self._max_lag_s = max_lag_s
        self.max_lag_seen_s = 0.0

    @property
    def speed(self) -> float | None:
        """Simulated seconds per wall second, or None for as fast as possible."""
        return self._speed

    def due(self, sim_us: int) -> float:
        """Wall reading at which the simulated instant ``sim_us`` is due."""
        if self._speed is None:
            return self._wall_start
        return self._wall_start + (sim_us - self._sim_start_us) / 1e6 / self._speed

    def lag_s(self, sim_us: int) -> float:
        """Simulated seconds by which releasing ``sim_us`` now is late (0 when early)."""
        if self._speed is None:
            return 0.0
        return max(0.0, (self._wall.now() - self.due(sim_us)) * self._speed)

    def simulated_now_us(self) -> int:
        """The simulated instant the wall clock has reached."""
        if self._speed is None:
            raise ValueError("an unpaced clock has no simulated 'now'")
        return self._sim_start_us + round((self._wall.now() - self._wall_start) * self._speed * 1e6)

    async def wait_until(self, sim_us: int) -> float:
        """Sleep until ``sim_us`` is due; return the lag (simulated s) when it was reached.

        Raises:
            LagExceeded: If the lag passes ``max_lag_s``.
        """
        if self._speed is None:
            return 0.0
        delay = self.due(sim_us) - self._wall.now()
        if delay > 0:
            await self._wall.sleep(delay)
            return 0.0
        lag = -delay * self._speed
        self.max_lag_seen_s = max(self.max_lag_seen_s, lag)
        if self._max_lag_s is not None and lag > self._max_lag_s:
            raise LagExceeded(
                f"{lag:.1f} simulated seconds behind schedule (limit --max-lag {self._max_lag_s:g})"
            )
        return lag
