"""What happens in the world: trips, behaviour per slice, assembly into events, the engine.

Uses the world and the fraud planner; knows nothing of where the events go.
"""

from __future__ import annotations

__all__: list[str] = []
