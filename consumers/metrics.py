"""Prometheus metrics of ``txnsim-sink``, in the process registry of :mod:`runtime.metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from runtime.metrics import REGISTRY

__all__ = [
    "ADOPTED",
    "BYTES",
    "COMMITS",
    "COMMIT_LAG",
    "CONSUMED",
    "DEAD_LETTERS",
    "FILES",
    "FRESHNESS",
    "REGISTRY_RETRIES",
    "ROWS",
    "STORE_RETRIES",
]


CONSUMED = Counter("txnsim_sink_records_consumed", "Records read from Kafka.", registry=REGISTRY)
FILES = Counter("txnsim_sink_files_written", "Parquet files written.", registry=REGISTRY)
ROWS = Counter("txnsim_sink_rows_written", "Rows in the files written.", registry=REGISTRY)
BYTES = Counter(
    "txnsim_sink_written_bytes", "Bytes of the Parquet files written.", registry=REGISTRY
)
ADOPTED = Counter(
    "txnsim_sink_files_adopted",
    "Files found already landed (after a crash or rebalance) and adopted, not rewritten.",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "txnsim_sink_dead_letters",
    "Undecodable records written to the dead-letter prefix.",
    registry=REGISTRY,
)
STORE_RETRIES = Counter(
    "txnsim_sink_store_retries",
    "Retried destination operations (5xx, throttling, timeouts, refused connections).",
    registry=REGISTRY,
)
REGISTRY_RETRIES = Counter(
    "txnsim_sink_registry_retries",
    "Retried Schema Registry requests (unreachable, timeouts, 5xx).",
    registry=REGISTRY,
)
COMMITS = Counter("txnsim_sink_commits", "Offset commits.", registry=REGISTRY)
COMMIT_LAG = Gauge(
    "txnsim_sink_commit_lag_records",
    "Records between the committed offset and the partition's end, per partition.",
    ["partition"],
    registry=REGISTRY,
)
FRESHNESS = Gauge(
    "txnsim_sink_last_committed_event_time_seconds",
    "Event time of the last committed record, per partition (Unix timestamp).",
    ["partition"],
    registry=REGISTRY,
)
