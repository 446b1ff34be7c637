"""Exceptions of the object stores, shared by the batch job and the sink.

The tree::

    TxnsimError (runtime.errors)
    ├── StoreError        the destination refused for a reason retrying will not fix
    └── StoreUnavailable  a transient failure (outage, throttling, timeout): retried

Library errors (botocore's ``ClientError``, OS errors) are mapped to these at the
boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from runtime.errors import TxnsimError

__all__ = ["StoreError", "StoreUnavailable"]


class StoreError(TxnsimError):
    """The destination refused an operation for a reason retrying will not fix."""


class StoreUnavailable(TxnsimError):
    """A transient failure of the destination (outage, throttling, timeout)."""
