"""The root of every exception txnsim raises on purpose.

Each package keeps its own tree in its own ``errors.py`` and roots it here, so a caller
that embeds txnsim can catch one type::

    TxnsimError
    ├── ConfigError                     invalid settings or command-line values (exit 2)
    ├── schemas.errors.SchemaError      an event schema, a framing or a value (schemas)
    ├── simulator.errors.SimulatorError the generator, streamer, validator, report
    └── consumers.errors.SinkError      the Kafka-to-Parquet sink

Third-party errors are mapped to these at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "TxnsimError"]


class TxnsimError(Exception):
    """Base class of every error txnsim raises on purpose."""


class ConfigError(TxnsimError):
    """Settings, a config file or a command-line value are invalid (exit 2).

    The message names the offending field (as a dotted path) and what is allowed. Each
    package's own ``ConfigError`` derives from this one.
    """
