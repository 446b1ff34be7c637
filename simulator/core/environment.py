"""A minimal discrete-event core: a heap of coarse events in simulated time.

Modelled on SimPy's environment: events are ordered by (time, priority, sequence), so
ties break the same way on every run. Events here are coarse (a time slice starts, a
scenario triggers); the transactions inside a slice are computed as arrays. The core
never reads a wall clock: time is whatever the last event said.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Environment", "ScheduledEvent"]


@dataclass(order=True, frozen=True)
class ScheduledEvent:
    """An entry of the heap; comparisons use (time, priority, sequence) only."""

    time_us: int
    priority: int
    sequence: int
    callback: Callable[[Environment], None] = field(compare=False)
    name: str = field(compare=False, default="")


class Environment:
    """Runs callbacks in simulated-time order.

    Args:
        start_us: Initial simulated time, microseconds since the Unix epoch (UTC).
    """

    def __init__(self, start_us: int) -> None:
        self._now = start_us
        self._heap: list[ScheduledEvent] = []
        self._sequence = 0

    @property
    def now_us(self) -> int:
        """Current simulated time."""
        return self._now

    def schedule(
        self,
        time_us: int,
        callback: Callable[[Environment], None],
        priority: int = 0,
        name: str = "",
    ) -> ScheduledEvent:
        """Schedule ``callback(env)`` at ``time_us``; the past is refused.

        Raises:
            ValueError: If ``time_us`` is before the current time.
        """
        if time_us < self._now:
            raise ValueError(
                f"cannot schedule {name or 'an event'} at {time_us}, before now ({self._now})"
            )
        event = ScheduledEvent(time_us, priority, self._sequence, callback, name)
        self._sequence += 1
        heapq.heappush(self._heap, event)
        return event

    def peek(self) -> int | None:
        """Time of the next event, or None when nothing is scheduled."""
        return self._heap[0].time_us if self._heap else None

    def step(self) -> ScheduledEvent:
        """Advance to the next event and run it.

        Raises:
            IndexError: If nothing is scheduled.
        """
        event = heapq.heappop(self._heap)
        self._now = event.time_us
        event.callback(self)
        return event
