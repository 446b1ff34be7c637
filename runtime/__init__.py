"""The small runtime both sides stand on: the root error, logging, metrics, overrides.

``simulator`` (the generator) and ``consumers`` (the sink) both import this package and
``schemas``; neither imports the other.
"""

from __future__ import annotations

from runtime.errors import TxnsimError

__all__ = ["TxnsimError"]
