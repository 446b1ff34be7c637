"""Benchmark of `txnsim generate` as users run it: whole processes, 1 worker against 2.

Prints one JSON object. Each run is the console script in a process of its own
(imports, world from the cache, simulation, Parquet, labels, catalogs and manifest
included), timed from outside: wall seconds, CPU seconds (user + system of the
process and its workers) and peak RSS from ``wait4``, and the wall by phase from the
times of its log lines (:func:`phases`). A warm-up run fills the cache first and is not
counted. The settings take turns (1 worker, 2 workers, 1, 2...), so a host that slows
down during the set slows both alike; each run carries the machine probe timed just
before it (``probe_s``, :mod:`machine`). Reported per setting: the median of
``--repeat`` runs and every run.

The baseline, measured in the same run: the landed transactions read back as one
table and written again to one Parquet file with the run's writer settings, in a
process of its own (``write_only_rows_per_s``), the ceiling of a run that writes them.

Usage: python bench/batch.py [--cardholders 100000] [--days 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import probe

ROOT = Path(__file__).resolve().parent.parent


def run_once(args: argparse.Namespace, out: Path, workers: int) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    speed = probe()
    cmd = [
        *_txnsim(),
        "--log-level",
        "INFO",  # its lines time the phases (a dozen lines a run)
        "generate",
        "--seed",
        "7",
        "--date",
        args.date,
        "--days",
        str(args.days),
        "--cardholders",
        str(args.cardholders),
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    env = {**_as_installed(), "TXNSIM_CACHE_DIR": args.cache}
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.time()
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - began
        stdout.seek(0)
        stderr.seek(0)
        log = stderr.read().decode()
        if status != 0:
            raise SystemExit(f"txnsim failed ({status}): {log[-2000:]}")
        summary = json.loads(stdout.read().decode().strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "probe_s": speed,
        "rows": summary["rows"],
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "phases_s": phases(log, started, started + wall),
    }


def phases(log: str, started: float, ended: float) -> dict[str, float]:
    """The run's wall time by phase, from the times of its log lines.

    ``start``: the process's start to the world built (interpreter, imports, settings,
    world from the cache); ``first_slice``: to the first slice handed to the writer
    (nothing is written meanwhile); ``steady``: to the last slice handed over; ``tail``:
    to the process's exit (the last slice encoded, labels, catalogs, manifest).
    """
    at: dict[str, list[float]] = {}
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            when = dt.datetime.fromisoformat(entry["ts"]).timestamp()
            at.setdefault(entry.get("msg", ""), []).append(when)
    world, slices = at["world built"][0], at["simulated slice"]
    return {
        "start": round(world - started, 3),
        "first_slice": round(slices[0] - world, 3),
        "steady": round(slices[-1] - slices[0], 3),
        "tail": round(ended - slices[-1], 3),
    }


def _txnsim() -> list[str]:
    """The command line of this checkout (run from its root), whatever ``txnsim`` on PATH is.

    An editable install elsewhere (a CI clone) would otherwise be what is measured.
    """
    return [sys.executable, "-m", "simulator"]


def _as_installed() -> dict[str, str]:
    """This environment, but writing bytecode caches as Python does by default.

    ``pip install`` compiles them; a sandbox that sets ``PYTHONDONTWRITEBYTECODE``
    would otherwise have every run compile the package's modules again (0.07-0.1 s).
    The warm-up run writes them.
    """
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def write_only(out: Path) -> float:
    """Rows per second writing the landed transactions again, in a fresh process."""
    code = f"""
import pathlib, sys, time
sys.path.insert(0, {str(ROOT)!r})
import pyarrow.dataset as ds
from simulator.batch.files import write_parquet_file
from simulator.settings.loading import load_settings
settings = load_settings(None, {{"out": {str(out)!r}}}, environ=False)
table = ds.dataset({str(out / "transactions")!r}, format="parquet").to_table()
began = time.perf_counter()
baseline = pathlib.Path({str(out)!r}) / "baseline"
write_parquet_file(baseline, "t.parquet", table, settings.writer)
print(table.num_rows / (time.perf_counter() - began))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cardholders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--date", default="2026-11-23")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    report: dict[str, object] = {
        "benchmark": "batch",
        "cardholders": args.cardholders,
        "days": args.days,
        "load_before": round(load, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lake"
        run_once(args, out, 1)  # fills the cache
        taken: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for _ in range(args.repeat):
            for workers, runs in taken.items():
                runs.append(run_once(args, out, workers))
        for workers, runs in taken.items():
            wall = statistics.median(r["wall_s"] for r in runs)
            cpu = statistics.median(r["cpu_s"] for r in runs)
            rows = runs[0]["rows"]
            report[f"workers_{workers}"] = {
                "phases_s": {
                    name: statistics.median(r["phases_s"][name] for r in runs)
                    for name in runs[0]["phases_s"]
                },
                "rows": rows,
                "wall_s": wall,
                "rows_per_s": round(rows / wall),
                "rows_per_cpu_s": round(rows / cpu),
                "cpu_per_wall": round(cpu / wall, 2),
                "probe_s": statistics.median(r["probe_s"] for r in runs),
                "runs": runs,
            }
        ceiling = write_only(out)
    report["write_only_rows_per_s"] = round(ceiling)
    best = min((1, 2), key=lambda w: report[f"workers_{w}"]["wall_s"])  # type: ignore[index]
    report["fastest_vs_write_only"] = round(
        report[f"workers_{best}"]["rows_per_s"] / ceiling,  # type: ignore[index]
        3,
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
