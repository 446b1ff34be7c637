"""Scraping a Prometheus endpoint in tests, with the Prometheus text parser."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["free_port", "scrape", "scrape_while"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the endpoint by sample name (e.g. ``txnsim_events_total``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def scrape_while(
    proc: subprocess.Popen[Any],
    port: int,
    ready: str,
    timeout_s: float = 180,
    at_least: float = 1,
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Scrape until sample ``ready`` (summed over labels) reaches ``at_least``.

    Fails if ``proc`` ends first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the command ended before it could be scraped"
        try:
            samples = scrape(port)
        except OSError:
            time.sleep(0.2)
            continue
        if sum(value for _, value in samples.get(ready, [])) >= at_least:
            return samples
        time.sleep(0.2)
    raise TimeoutError(f"{ready} stayed below {at_least} for {timeout_s} s")
