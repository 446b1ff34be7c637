"""Exceptions of the shared formats: schemas, framing, encoding and decoding.

The tree::

    TxnsimError (runtime.errors)
    └── SchemaError   an event schema does not parse or cannot be mapped to Arrow
        └── DecodeError   a record value is not valid framed Avro of its schema

Whatever fastavro or pyarrow raise on malformed input is mapped to these at the
boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from runtime.errors import TxnsimError

__all__ = ["DecodeError", "SchemaError"]


class SchemaError(TxnsimError):
    """An event schema cannot be parsed or mapped to Arrow."""


class DecodeError(SchemaError):
    """A record value is not a valid Avro encoding of the schema in the expected framing."""
