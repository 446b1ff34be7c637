"""Consumers of the simulator's event streams: ``txnsim-sink`` lands a topic as Parquet.

The public API, importable from here (the sink's modules load on first use, so
``import consumers.errors`` stays light)::

    settings = load_sink_settings({"kafka": {"bootstrap_servers": "..."}, "dest": "..."})
    store = open_store(settings.dest, endpoint_url=settings.s3.endpoint_url,
                       region=settings.s3.region)
    stats = Sink(settings, store).run()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consumers.errors import (
    ConfigError,
    KafkaUnavailable,
    SinkConflict,
    SinkError,
    StoreError,
    StoreUnavailable,
)
from runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from consumers.settings import KafkaSettings, S3Settings, SinkSettings, load_sink_settings
    from consumers.sink import Sink
    from consumers.stats import SinkStats
    from consumers.store import LocalStore, ObjectStore, S3Store, open_store

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
    "LocalStore": "consumers.store",
    "ObjectStore": "consumers.store",
    "S3Settings": "consumers.settings",
    "S3Store": "consumers.store",
    "Sink": "consumers.sink",
    "SinkSettings": "consumers.settings",
    "SinkStats": "consumers.stats",
    "load_sink_settings": "consumers.settings",
    "open_store": "consumers.store",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
