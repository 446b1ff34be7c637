"""txnsim: a seeded, agent-based card-transaction simulator.

The public API: build :class:`Settings` with :func:`load_settings` and the run's one
:class:`RunSeed` from them, then either :func:`generate` a span of days into a folder, or
iterate a :class:`SliceSource` over a :class:`World` (and the :class:`RunSpec`) for the
same events as Arrow tables.

The names are imported on first use, so ``import simulator.core.ids`` (or the command
line's ``--help``) does not load the whole package.
"""

from __future__ import annotations

from runtime.lazy import lazy_exports

__all__ = [
    "ConfigError",
    "EventSchema",
    "OutputError",
    "ReferenceDataError",
    "RunSeed",
    "RunSpec",
    "RunSummary",
    "SchemaError",
    "Settings",
    "SimulatorError",
    "Slice",
    "SliceSource",
    "World",
    "build_world",
    "generate",
    "load_settings",
    "transaction_schema",
]

_HOMES = {
    "ConfigError": "simulator.errors",
    "OutputError": "simulator.errors",
    "ReferenceDataError": "simulator.errors",
    "SimulatorError": "simulator.errors",
    "SchemaError": "schemas.errors",
    "EventSchema": "schemas.event",
    "transaction_schema": "schemas.event",
    "Settings": "simulator.settings.models",
    "load_settings": "simulator.settings.loading",
    "RunSeed": "simulator.settings.run",
    "RunSpec": "simulator.settings.run",
    "World": "simulator.world.build",
    "build_world": "simulator.world.build",
    "Slice": "simulator.model.slices",
    "SliceSource": "simulator.model.engine",
    "RunSummary": "simulator.batch.generate",
    "generate": "simulator.batch.generate",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
