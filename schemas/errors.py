"""Exceptions of the shared formats: schemas, framing, encoding and decoding.

The tree::

    TxnsimError (runtime.errors)
    ├── SchemaError   an event schema does not parse or cannot be mapped to Arrow
    │   └── DecodeError   a record value is not valid framed Avro of its schema
    └── RegistryError the Schema Registry did not answer or refused
        ├── RegistryUnavailable  unreachable, TLS failure, timeout, 5xx
        └── IncompatibleSchema   a schema its compatibility rule refuses

Whatever fastavro or pyarrow raise on malformed input is mapped to these at the
boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from runtime.errors import TxnsimError

__all__ = [
    "DecodeError",
    "IncompatibleSchema",
    "RegistryError",
    "RegistryUnavailable",
    "SchemaError",
]


class SchemaError(TxnsimError):
    """An event schema cannot be parsed or mapped to Arrow."""


class DecodeError(SchemaError):
    """A record value is not a valid Avro encoding of the schema in the expected framing."""


class RegistryError(TxnsimError):
    """The Schema Registry did not answer, or refused a schema or an id."""


class RegistryUnavailable(RegistryError):
    """The Schema Registry cannot be reached (connection, TLS, timeout, 5xx)."""


class IncompatibleSchema(RegistryError):
    """The registry refused to register a schema under its compatibility rule."""
