"""Prometheus metrics of ``txnsim generate``, ``txnsim stream`` and ``txnsim-sink``.

One registry for the process, served over HTTP with ``--metrics-port`` (text format at
``/metrics``). Names follow Prometheus conventions: a ``txnsim_`` prefix, base units
(seconds, bytes), ``_total`` on counters (added by the client library).
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["REGISTRY", "count_events", "serve"]

log = logging.getLogger("txnsim.metrics")

REGISTRY = CollectorRegistry()

# --- The simulator (generate and stream) ----------------------------------------------------

EVENTS = Counter(
    "txnsim_events",
    "Events emitted, by event type and fraud scenario ('none' for legitimate ones).",
    ["type", "scenario"],
    registry=REGISTRY,
)
FRAUD_INJECTED = Counter(
    "txnsim_fraud_injected",
    "Fraudulent transactions emitted, by scenario.",
    ["scenario"],
    registry=REGISTRY,
)
LABELS = Counter(
    "txnsim_labels",
    "Fraud labels released onto the labels topic, by source (issuer_confirmed, chargeback).",
    ["source"],
    registry=REGISTRY,
)
SIMULATED_TIME = Gauge(
    "txnsim_simulated_time_seconds",
    "Simulated time reached, as a Unix timestamp.",
    registry=REGISTRY,
)
STREAM_LAG = Gauge(
    "txnsim_stream_lag_seconds",
    "How far releases are behind schedule, in simulated seconds.",
    registry=REGISTRY,
)
STREAM_SPEED = Gauge(
    "txnsim_stream_speed_ratio",
    "Achieved speed: simulated seconds released per wall second since the start.",
    registry=REGISTRY,
)
PRODUCE_LATENCY = Histogram(
    "txnsim_produce_latency_seconds",
    "Time from handing a batch of records to the producer until it is accepted.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
PRODUCE_ERRORS = Counter(
    "txnsim_produce_errors",
    "Batches the producer failed to deliver.",
    registry=REGISTRY,
)

# --- The sink -----------------------------------------------------------------------------

SINK_CONSUMED = Counter(
    "txnsim_sink_records_consumed", "Records read from Kafka.", registry=REGISTRY
)
SINK_FILES = Counter("txnsim_sink_files_written", "Parquet files written.", registry=REGISTRY)
SINK_ROWS = Counter("txnsim_sink_rows_written", "Rows in the files written.", registry=REGISTRY)
SINK_BYTES = Counter(
    "txnsim_sink_written_bytes", "Bytes of the Parquet files written.", registry=REGISTRY
)
SINK_ADOPTED = Counter(
    "txnsim_sink_files_adopted",
    "Files found already landed (after a crash or rebalance) and adopted, not rewritten.",
    registry=REGISTRY,
)
SINK_DEAD_LETTERS = Counter(
    "txnsim_sink_dead_letters",
    "Undecodable records written to the dead-letter prefix.",
    registry=REGISTRY,
)
SINK_STORE_RETRIES = Counter(
    "txnsim_sink_store_retries",
    "Retried destination operations (5xx, throttling, timeouts, refused connections).",
    registry=REGISTRY,
)
SINK_COMMITS = Counter("txnsim_sink_commits", "Offset commits.", registry=REGISTRY)
SINK_COMMIT_LAG = Gauge(
    "txnsim_sink_commit_lag_records",
    "Records between the committed offset and the partition's end, per partition.",
    ["partition"],
    registry=REGISTRY,
)
SINK_FRESHNESS = Gauge(
    "txnsim_sink_last_committed_event_time_seconds",
    "Event time of the last committed record, per partition (Unix timestamp).",
    ["partition"],
    registry=REGISTRY,
)


def count_events(table: pa.Table) -> None:
    """Count a batch of transactions by fraud scenario."""
    if table.num_rows == 0:
        return
    scenario = table.column("fraud_scenario")
    counts = pc.value_counts(scenario.fill_null("none")).to_pylist()
    for item in counts:
        EVENTS.labels(type="transaction", scenario=item["values"]).inc(item["counts"])
        if item["values"] != "none":
            FRAUD_INJECTED.labels(scenario=item["values"]).inc(item["counts"])


def serve(port: int | None, host: str = "127.0.0.1") -> None:
    """Serve the registry on ``host:port`` in a daemon thread (nothing if ``port`` is None).

    Raises:
        OSError: If the port cannot be bound.
    """
    if port is None:
        return
    start_http_server(port, addr=host, registry=REGISTRY)
    log.info("serving metrics", extra={"address": f"http://{host}:{port}/metrics"})
