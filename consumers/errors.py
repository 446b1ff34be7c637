"""Exceptions raised by ``txnsim-sink``.

Every error the sink raises on purpose derives from :class:`SinkError` (a
:class:`runtime.errors.TxnsimError`). The tree and what each means for the process::

    SinkError
    ├── ConfigError       invalid settings or flags, naming the field (exit 2);
    │                     also a runtime.errors.ConfigError
    ├── KafkaUnavailable  the cluster did not answer, or the topic does not exist (exit 1)
    └── SinkConflict      an object at a file's name is not this sink's file (exit 1)

The destination's errors are the stores' (:mod:`storage.errors`):
``StoreError``, a refusal retrying will not fix (exit 1), and ``StoreUnavailable``, a
transient failure, retried, fatal only past ``retry_give_up_s``.

Undecodable records are not errors of the sink: they are dead-lettered and counted.
Library errors (librdkafka's ``KafkaException``, botocore's ``ClientError``, OS errors)
are mapped to these at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from runtime import errors as _runtime

__all__ = [
    "ConfigError",
    "KafkaUnavailable",
    "SinkConflict",
    "SinkError",
]


class SinkError(_runtime.TxnsimError):
    """Base class of every error the sink raises on purpose."""


class ConfigError(SinkError, _runtime.ConfigError):
    """The sink's settings or flags are invalid; the message names the field."""


class KafkaUnavailable(SinkError):
    """The cluster did not answer, or the topic does not exist."""


class SinkConflict(SinkError):
    """An object at a file's name is not a file this sink could have written for it."""
