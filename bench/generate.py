"""Benchmark of `txnsim generate`: throughput with Parquet writing, and peak memory by span.

Prints one JSON object. Every figure is measured in this run, each configuration in its
own child process (so peak RSS is that run's alone):

* ``one_day``: 1 simulated day of N cardholders, rows/s end to end and in steady state
  (after the one-off world build), with its peak RSS.
* ``seven_days``: the same population over 7 days; its peak RSS against the 1-day run
  (``rss_ratio_7d_to_1d``; memory must not grow with the span).
* ``write_only``: the baseline: the 1-day table written to Parquet with the same settings,
  no simulation; ``steady_vs_write_only`` is the share of that ceiling the full model reaches.
* ``no_fraud``: the same day with ``fraud.target_rate=0``; ``fraud_overhead`` is the share
  of the run time the fraud planner (campaigns, warm-up, calibration, labels) adds.

Usage: python bench/generate.py [--cardholders 100000] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    import pyarrow.dataset as ds

    from simulator.batch.files import write_parquet_file
    from simulator.batch.generate import generate
    from simulator.settings.loading import load_settings
    from simulator.settings.run import RunSeed
    from simulator.world.build import build_world

    settings = load_settings(
        None,
        {
            "out": args.out,
            "seed": 7,
            "days": args.days,
            "workers": args.workers,
            "start_date": "2026-11-23",
            "cache_dir": args.cache,
            "population": {"cardholders": args.cardholders},
            **({} if args.fraud_rate is None else {"fraud": {"target_rate": args.fraud_rate}}),
        },
        environ=False,
    )
    began = time.perf_counter()
    build_world(settings, RunSeed.from_settings(settings))
    world_s = time.perf_counter() - began
    began = time.perf_counter()
    summary = generate(settings, RunSeed.from_settings(settings))
    total_s = time.perf_counter() - began
    result = {
        "rows": summary.rows,
        "seconds": round(total_s, 3),
        "world_seconds": round(world_s, 3),
        "rows_per_s": round(summary.rows / total_s),
        "steady_rows_per_s": round(summary.rows / max(total_s - world_s, 1e-9)),
    }
    if args.write_only:
        table = ds.dataset(Path(args.out) / "transactions", format="parquet").to_table()
        began = time.perf_counter()
        write_parquet_file(Path(args.out) / "baseline", "t.parquet", table, settings.writer)
        seconds = time.perf_counter() - began
        result["write_only_rows_per_s"] = round(table.num_rows / seconds)
    print(json.dumps(result))


def measure(
    cardholders: int,
    days: int,
    workers: int,
    cache: str,
    write_only: bool = False,
    fraud_rate: float | None = None,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--cardholders",
            str(cardholders),
            "--days",
            str(days),
            "--workers",
            str(workers),
            "--out",
            out,
            "--cache",
            cache,
        ]
        if write_only:
            cmd.append("--write-only")
        if fraud_rate is not None:
            cmd += ["--fraud-rate", str(fraud_rate)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"benchmark child failed with status {status}")
        result: dict[str, object] = json.loads(output)
        result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--cardholders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"))
    parser.add_argument("--write-only", action="store_true")
    parser.add_argument("--fraud-rate", type=float)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    one = measure(args.cardholders, 1, args.workers, args.cache, write_only=True)
    seven = measure(args.cardholders, 7, args.workers, args.cache)
    no_fraud = measure(args.cardholders, 1, args.workers, args.cache, fraud_rate=0.0)
    report = {
        "benchmark": "generate",
        "cardholders": args.cardholders,
        "workers": args.workers,
        "one_day": one,
        "seven_days": seven,
        "no_fraud": no_fraud,
        "fraud_overhead": round(1 - float(no_fraud["seconds"]) / float(one["seconds"]), 3),  # type: ignore[arg-type]
        "rss_ratio_7d_to_1d": round(float(seven["peak_rss_mb"]) / float(one["peak_rss_mb"]), 3),  # type: ignore[arg-type]
        "steady_vs_write_only": round(
            float(one["steady_rows_per_s"]) / float(one["write_only_rows_per_s"]),
            3,  # type: ignore[arg-type]
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
