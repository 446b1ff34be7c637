"""Exceptions raised by the simulator.

Every error the simulator raises on purpose derives from :class:`SimulatorError`, so a
caller can catch one type. The tree::

    SimulatorError
    ├── ConfigError        invalid settings, config file or command-line values (exit 2)
    ├── SchemaError        an event schema that does not parse or cannot be mapped
    ├── ReferenceDataError the gazetteer or MCC table cannot serve the configuration
    ├── OutputError        the output folder cannot be written
    └── DecodeError        a Kafka record value is not valid framed Avro (simulator.avro_codec)

Third-party errors (pydantic, OS, pyarrow) are mapped to these at the boundary with
``raise ... from exc`` so the original stays visible.
"""

from __future__ import annotations

__all__ = ["ConfigError", "OutputError", "ReferenceDataError", "SchemaError", "SimulatorError"]


class SimulatorError(Exception):
    """Base class of every error the simulator raises on purpose."""


class ConfigError(SimulatorError):
    """Settings, a config file or a command-line value are invalid.

    The message names the offending field (as a dotted path) and what is allowed.
    """


class SchemaError(SimulatorError):
    """An event schema cannot be parsed or mapped to Arrow."""


class ReferenceDataError(SimulatorError):
    """Reference data (cities, MCCs, calendars) cannot serve the configuration."""


class OutputError(SimulatorError):
    """The output location cannot be written."""
