"""The process's Prometheus registry and its HTTP endpoint.

One registry per process, served with ``--metrics-port`` (text format at ``/metrics``).
Each side defines its own metrics in it (:mod:`simulator.metrics`,
:mod:`consumers.metrics`). Names follow Prometheus conventions: a ``txnsim_`` prefix,
base units (seconds, bytes), ``_total`` on counters (added by the client library).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["REGISTRY", "serve"]

log = logging.getLogger("txnsim.metrics")

REGISTRY = CollectorRegistry()


def serve(port: int | None, host: str = "127.0.0.1") -> None:
    """Serve the registry on ``host:port`` in a daemon thread (nothing if ``port`` is None).

    Raises:
        OSError: If the port cannot be bound.
    """
    if port is None:
        return
    start_http_server(port, addr=host, registry=REGISTRY)
    log.info("serving metrics", extra={"address": f"http://{host}:{port}/metrics"})
