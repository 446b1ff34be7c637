"""Prometheus metrics of ``txnsim generate`` and ``txnsim stream``.

They live in the process registry of :mod:`runtime.metrics`, which ``--metrics-port``
serves.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import Counter, Gauge, Histogram

from runtime.metrics import REGISTRY

__all__ = ["BatchMeter", "count_events"]

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


def count_events(table: pa.Table) -> None:
    """Count a batch of transactions by fraud scenario."""
    if table.num_rows == 0:
        return
    scenario = table.column("fraud_scenario")
    if scenario.null_count:  # the genuine rows: counted, not hashed (2.5 ms a day's table)
        EVENTS.labels(type="transaction", scenario="none").inc(scenario.null_count)
    for item in pc.value_counts(scenario.drop_null()).to_pylist():
        EVENTS.labels(type="transaction", scenario=item["values"]).inc(item["counts"])
        FRAUD_INJECTED.labels(scenario=item["values"]).inc(item["counts"])


class BatchMeter:
    """A batch run's progress as these metrics (:class:`simulator.batch.lander.Meter`)."""

    def events(self, table: pa.Table) -> None:
        """Count a landed table's transactions."""
        count_events(table)

    def simulated_until(self, at: dt.datetime) -> None:
        """The simulated time reached."""
        SIMULATED_TIME.set(at.timestamp())
