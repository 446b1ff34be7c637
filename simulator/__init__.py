"""txnsim: a seeded, agent-based card-transaction simulator.

The public API: build :class:`Settings` with :func:`load_settings`, a :class:`Streams`
from the seed, then either :func:`generate` a span of days into a folder, or iterate
a :class:`SliceSource` over a :class:`World` for the same events as Arrow tables.
"""

from __future__ import annotations

from simulator.config import Settings
from simulator.engine import Slice, SliceSource
from simulator.errors import (
    ConfigError,
    OutputError,
    ReferenceDataError,
    SchemaError,
    SimulatorError,
)
from simulator.generate import RunSummary, generate
from simulator.schema import EventSchema, transaction_schema
from simulator.seeding import Streams
from simulator.settings import load_settings
from simulator.world import World, build_world

__all__ = [
    "ConfigError",
    "EventSchema",
    "OutputError",
    "ReferenceDataError",
    "RunSummary",
    "SchemaError",
    "Settings",
    "SimulatorError",
    "Slice",
    "SliceSource",
    "Streams",
    "World",
    "build_world",
    "generate",
    "load_settings",
    "transaction_schema",
]
