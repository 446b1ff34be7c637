"""``txnsim stream``: the events released in simulated time onto a publisher (Kafka or memory).

The only layer that paces against a wall clock; the simulation below it never reads one.
"""

from __future__ import annotations

__all__: list[str] = []
