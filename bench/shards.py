"""Benchmark of shards: one process against N shard processes run side by side.

Prints one JSON object. Every figure is measured in this run, as whole processes
(imports, world build and Parquet writing included), each the median of ``--repeat``:

* ``single``: ``txnsim generate`` of the whole run, one process (the baseline).
* ``shards``: ``txnsim generate --shard K/N`` for K in 0..N-1 started together into one
  folder, then ``txnsim manifest merge``; wall time from the first start to the merge's
  end. ``speedup`` is single over shards; on this 2-core machine N=2 is the case to
  watch (the goal is at least 1.7x).
* ``spark`` (with ``--spark``): ``txnsim generate --engine spark --spark-master
  local[N]``, its overhead against the single process reported as a ratio.

The rows of the shards' lake are checked against the single run's (count and the
multiset of transaction ids), so a fast wrong answer cannot pass as a speedup.

Usage: python bench/shards.py [--cardholders 200000] [--days 14] [--shards 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds


def _command(args: argparse.Namespace, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simulator",
        "generate",
        "--out",
        str(out),
        "--seed",
        "7",
        "--days",
        str(args.days),
        "--cardholders",
        str(args.cardholders),
        "--date",
        "2026-11-23",
        *extra,
    ]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TXNSIM_CACHE_DIR"] = str(cache)
    return env


def _timed(commands: list[list[str]], env: dict[str, str]) -> float:
    """Wall seconds to run ``commands`` side by side (all must succeed)."""
    began = time.perf_counter()
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in commands
    ]
    for p, c in zip(procs, commands, strict=True):
        if p.wait() != 0:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(c)}")
    return time.perf_counter() - began


def _ids(out: Path) -> tuple[int, str]:
    table = ds.dataset(out / "transactions", format="parquet").to_table(columns=["transaction_id"])
    ids = pc.sort_indices(table, [("transaction_id", "ascending")])
    first = table.column("transaction_id").take(ids).slice(0, 1000).to_pylist()
    return table.num_rows, str(hash(tuple(first)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cardholders", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spark", action="store_true", help="also time the Spark engine")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="txnsim-bench-shards-"))
    cache = work / "cache"
    env = _env(cache)
    try:
        # Warm the world and calibration caches once: every run below reads them.
        _timed([_command(args, work / "warm", "--days", "1")], env)
        single, sharded, spark = [], [], []
        for _ in range(args.repeat):
            one, many = work / "single", work / "shards"
            shutil.rmtree(one, ignore_errors=True)
            shutil.rmtree(many, ignore_errors=True)
            single.append(_timed([_command(args, one)], env))
            shard_cmds = [
                _command(args, many, "--shard", f"{k}/{args.shards}") for k in range(args.shards)
            ]
            merge = [sys.executable, "-m", "simulator", "manifest", "merge", str(many)]
            began = time.perf_counter()
            _timed(shard_cmds, env)
            _timed([merge], env)
            sharded.append(time.perf_counter() - began)
            if args.spark:
                lake = work / "spark"
                shutil.rmtree(lake, ignore_errors=True)
                extra = ["--engine", "spark", "--spark-master", f"local[{args.shards}]"]
                spark.append(_timed([_command(args, lake, *extra)], env))
        rows, digest = _ids(work / "single")
        same = _ids(work / "shards") == (rows, digest)
        result: dict[str, object] = {
            "cardholders": args.cardholders,
            "days": args.days,
            "shards": args.shards,
            "rows": rows,
            "shards_equal_single": same,
            "single_s": round(statistics.median(single), 2),
            "shards_s": round(statistics.median(sharded), 2),
            "single_rows_per_s": round(rows / statistics.median(single)),
            "shards_rows_per_s": round(rows / statistics.median(sharded)),
            "speedup": round(statistics.median(single) / statistics.median(sharded), 2),
            "runs": {
                "single": [round(s, 2) for s in single],
                "shards": [round(s, 2) for s in sharded],
            },
            "load_average_before": load,
        }
        if spark:
            result["spark_s"] = round(statistics.median(spark), 2)
            result["spark_over_single"] = round(
                statistics.median(spark) / statistics.median(single), 2
            )
            result["runs"]["spark"] = [round(s, 2) for s in spark]  # type: ignore[index]
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
