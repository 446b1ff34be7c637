"""Benchmark of `txnsim validate`: peak memory on N days against 10N days, and rows/s.

Prints one JSON object. Both datasets (same population, N and 10N simulated days) are
generated first, each in its own process; then each is validated in its own child process,
so a peak RSS (``getrusage`` of that child) is that validation's alone.
``rss_ratio_10x_to_1x`` is the figure that must stay at most 1.2 (peak memory must not
grow with the dataset's size).

Usage: python bench/validate.py [--cardholders 100000] [--days 1]
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


def generate_child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from simulator.batch.generate import generate
    from simulator.settings.loading import load_settings
    from simulator.settings.run import RunSeed

    settings = load_settings(
        None,
        {
            "out": args.out,
            "seed": 7,
            "days": args.days,
            "start_date": "2026-11-23",
            "cache_dir": args.cache,
            "population": {"cardholders": args.cardholders},
        },
        environ=False,
    )
    summary = generate(settings, RunSeed.from_settings(settings))
    print(json.dumps({"rows": summary.rows}))


def validate_child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from simulator.validate.checks import validate

    began = time.perf_counter()
    report = validate(args.out)
    seconds = time.perf_counter() - began
    result = {
        "rows": report.rows,
        "status": "violation" if report.violations else "ok",
        "seconds": round(seconds, 3),
        "rows_per_s": round(report.rows / seconds),
    }
    print(json.dumps(result))


def _child(mode: str, *extra: str) -> tuple[dict[str, object], float]:
    cmd = [sys.executable, __file__, "--child", mode, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"benchmark child {mode} failed with status {status}")
    result: dict[str, object] = json.loads(output)
    return result, round(usage.ru_maxrss / 1024, 1)


def measure(cardholders: int, days: int, cache: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        common = ["--out", out, "--cardholders", str(cardholders), "--days", str(days)]
        _child("generate", *common, "--cache", cache)
        result, rss = _child("validate", *common)
        result["days"] = days
        result["peak_rss_mb"] = rss
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["generate", "validate"])
    parser.add_argument("--cardholders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1, help="N: the small run; the large is 10N")
    parser.add_argument("--out")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"))
    args = parser.parse_args()
    if args.child == "generate":
        generate_child(args)
        return
    if args.child == "validate":
        validate_child(args)
        return
    small = measure(args.cardholders, args.days, args.cache)
    large = measure(args.cardholders, 10 * args.days, args.cache)
    report = {
        "benchmark": "validate",
        "cardholders": args.cardholders,
        "small": small,
        "large": large,
        "rows_ratio": round(float(large["rows"]) / float(small["rows"]), 2),  # type: ignore[arg-type]
        "rss_ratio_10x_to_1x": round(
            float(large["peak_rss_mb"]) / float(small["peak_rss_mb"]),  # type: ignore[arg-type]
            3,
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
