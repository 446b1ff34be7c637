"""Consumers of the simulator's event streams: ``txnsim-sink`` lands a topic as Parquet.

The public API, importable from here (the sink's modules load on first use, so
``import consumers.errors`` stays light)::

    settings = load_sink_settings({"kafka": {"bootstrap_servers": "..."}, "dest": "..."})
    store = open_store(settings.dest, s3=settings.s3)
    stats = Sink(settings, store).run()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consumers.errors import (
    ConfigError,
    KafkaUnavailable,
    SinkConflict,
    SinkError,
)
from runtime.lazy import lazy_exports
from storage.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from consumers.settings import KafkaSettings, SinkSettings, load_sink_settings
    from consumers.sink import Sink
    from consumers.stats import SinkStats
    from storage.base import ObjectStore, S3Settings, open_store
    from storage.local import LocalStore
    from storage.s3 import S3Store

__all__ = [
    "ConfigError",
    "KafkaSettings",
    "KafkaUnavailable",
    "LocalStore",
    "ObjectStore",
    "S3Settings",
    "S3Store",
    "Sink",
    "SinkConflict",
    "SinkError",
    "SinkSettings",
    "SinkStats",
    "StoreError",
    "StoreUnavailable",
    "load_sink_settings",
    "open_store",
]

#: Where each lazily loaded name lives.
_LAZY = {
    "KafkaSettings": "consumers.settings",
    "LocalStore": "storage.local",
    "ObjectStore": "storage.base",
    "S3Settings": "storage.base",
    "S3Store": "storage.s3",
    "Sink": "consumers.sink",
    "SinkSettings": "consumers.settings",
    "SinkStats": "consumers.stats",
    "load_sink_settings": "consumers.settings",
    "open_store": "storage.base",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
