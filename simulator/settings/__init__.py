"""Settings: the frozen models, how they are loaded, and the run they resolve to.

``types``, ``models`` and ``fraud`` hold the models; ``loading`` builds the one settings
object of a process; ``run`` resolves it into the run's one seed and what the engine reads.

The lowest layer above the core: it imports nothing from the world, the model, the
fraud plugins or the edges.
"""

from __future__ import annotations

__all__: list[str] = []
