"""Prometheus metrics scraped from running commands and parsed with the Prometheus parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from simulator.settings.loading import load_settings
from tests.kafka_read import spawn_stream
from tests.prometheus import free_port, scrape_while


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TXNSIM_")}


def test_generate_serves_metrics_during_the_run(tmp_path: Path, cache_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--log-format",
            "json",
            "generate",
            "--seed",
            "3",
            "--days",
            "6",
            "--cardholders",
            "20000",
            "--out",
            str(tmp_path / "lake"),
            "--set",
            f"cache_dir={cache_dir}",
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        samples = scrape_while(proc, port, "txnsim_events_total")
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    events = samples["txnsim_events_total"]
    assert {labels["type"] for labels, _ in events} == {"transaction"}
    scenarios = {labels["scenario"] for labels, _ in events}
    assert "none" in scenarios  # genuine transactions
    assert scenarios - {"none"} <= set(load_settings(environ=False).fraud.scenarios)
    (simulated,) = samples["txnsim_simulated_time_seconds"]
    assert simulated[1] >= 1_700_000_000  # a Unix timestamp, not a count
    # Every log line is JSON with the run id and seed.
    lines = [orjson.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line)
    progress = [line for line in lines if line["msg"] == "simulated slice"]
    assert progress
    assert all(line["seed"] == 3 for line in progress)
    assert all(len(line["run_id"]) == 12 for line in progress)
    assert {"rows", "rows_per_s", "simulated_until", "eta_s"} <= set(progress[-1])
    assert orjson.loads(out.splitlines()[-1])["rows"] > 0


@pytest.mark.kafka
def test_stream_serves_lag_speed_and_produce_latency(
    kafka_bootstrap: str, topic: str, cache_dir: Path
) -> None:
    port = free_port()
    proc = spawn_stream(
        kafka_bootstrap,
        topic,
        cache_dir,
        "--speed",
        "3600",
        "--days",
        "1",
        "--metrics-port",
        str(port),
    )
    try:
        samples = scrape_while(proc, port, "txnsim_events_total")
        samples = scrape_while(proc, port, "txnsim_stream_speed_ratio")
    finally:
        proc.terminate()
        proc.communicate(timeout=120)
    assert samples["txnsim_produce_latency_seconds_count"][0][1] > 0
    assert samples["txnsim_stream_lag_seconds"][0][1] >= 0
    # Pacing at 3600x: the achieved speed is of that order, not "max".
    speed = samples["txnsim_stream_speed_ratio"][0][1]
    assert 100 < speed < 20_000
    assert samples["txnsim_produce_errors_total"][0][1] == 0
