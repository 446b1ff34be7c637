"""Exceptions raised by the simulator: generate, stream, validate, report.

Every error the simulator raises on purpose derives from :class:`SimulatorError` (itself a
:class:`runtime.errors.TxnsimError`), so a caller can catch one type. The tree::

    SimulatorError
    ├── ConfigError          invalid settings, config file or flag values (exit 2);
    │   │                    also a runtime.errors.ConfigError
    │   └── UnknownScenarioError  a fraud scenario no built-in or entry point provides
    ├── ReferenceDataError   the gazetteer or MCC table cannot serve the configuration
    ├── OutputError          the output folder cannot be written
    ├── KafkaUnavailable     the cluster could not be reached, or the topic made ready
    ├── PublishError         records could not be delivered (the stream stops, exit 1)
    └── LagExceeded          releases fell behind ``--max-lag`` (exit 4)

Schema, framing and decoding errors are :mod:`schemas.errors`. Third-party errors
(pydantic, OS, pyarrow, aiokafka) are mapped to these at the boundary with
``raise ... from exc`` so the original stays visible.
"""

from __future__ import annotations

from runtime import errors as _runtime

__all__ = [
    "ConfigError",
    "KafkaUnavailable",
    "LagExceeded",
    "OutputError",
    "PublishError",
    "ReferenceDataError",
    "SimulatorError",
    "UnknownScenarioError",
]


class SimulatorError(_runtime.TxnsimError):
    """Base class of every error the simulator raises on purpose."""


class ConfigError(SimulatorError, _runtime.ConfigError):
    """Settings, a config file or a command-line value are invalid.

    The message names the offending field (as a dotted path) and what is allowed.
    """


class UnknownScenarioError(ConfigError):
    """A fraud scenario name that neither the built-ins nor any entry point provide."""


class ReferenceDataError(SimulatorError):
    """Reference data (cities, MCCs, calendars) cannot serve the configuration."""


class OutputError(SimulatorError):
    """The output location cannot be written."""


class KafkaUnavailable(SimulatorError):
    """The cluster could not be reached (or the topic made ready) in time."""


class PublishError(SimulatorError):
    """Records could not be delivered; the stream stops rather than lose or reorder them."""


class LagExceeded(SimulatorError):
    """Releases fell further behind schedule than allowed (``--max-lag``)."""
