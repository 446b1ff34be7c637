"""A/B of checkouts (or settings) as whole `txnsim generate` processes, runs interleaved.

This machine's speed drifts by up to 2x within minutes (:mod:`machine`), so two sets
measured one after the other compare the host's minutes as much as the code. Here
the variants take turns, run after run (A B, B A, A B, ...), so a drift slows them
alike, and each one's median wall and CPU seconds are compared within the same minutes.

A variant is ``name=PATH`` (a checkout's root: ``git worktree add /tmp/base HEAD~1``),
optionally with environment settings after it: ``two=.,TXNSIM_WORKERS=2``. Each
runs ``python -m simulator generate ARGS`` from its root with its own cache folder;
one run each first fills the caches and is not counted. Prints one JSON object:
per variant the median wall and CPU seconds (user + system of the process and its
workers, from ``wait4``) and every run.

Usage: python bench/interleaved.py base=/tmp/base new=. [--repeat 10] [--args "..."]
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
from typing import Any

from batch import _as_installed
from machine import probe

#: The batch floor's run (issue 13): 7 days x 100k cardholders.
DEFAULT_ARGS = "--seed 7 --date 2026-11-24 --days 7 --cardholders 100000"


def _variant(spec: str) -> tuple[str, Path, dict[str, str]]:
    name, _, rest = spec.partition("=")
    path, *settings = rest.split(",")
    if not name or not path:
        raise SystemExit(f"{spec!r}: a variant is NAME=PATH[,VAR=VALUE...]")
    env = dict(setting.split("=", 1) for setting in settings)
    return name, Path(path).resolve(), env


def _run(root: Path, env: dict[str, str], args: list[str], out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "simulator", "generate", *args, "--out", str(out)]
    began = time.perf_counter()
    with subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        if status != 0:
            assert proc.stderr is not None
            raise SystemExit(f"{root}: txnsim failed ({status}): {proc.stderr.read()[-2000:]!r}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="+", help="NAME=PATH[,VAR=VALUE...]")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--args", default=DEFAULT_ARGS, help="txnsim generate's arguments")
    options = parser.parse_args()
    variants = [_variant(spec) for spec in options.variants]
    args = options.args.split()
    report: dict[str, Any] = {
        "benchmark": "interleaved",
        "args": options.args,
        "repeat": options.repeat,
        "load_before": round(os.getloadavg()[0], 2),
        "probe_s": probe(),
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        base = _as_installed()
        envs = {
            name: {
                **base,
                "PYTHONPATH": str(root),
                "TXNSIM_CACHE_DIR": f"{tmp}/{name}-cache",
                **env,
            }
            for name, root, env in variants
        }
        for name, root, _ in variants:  # fills the caches and writes bytecode
            _run(root, envs[name], args, Path(tmp) / name)
        for round_ in range(options.repeat):
            for name, root, _ in variants if round_ % 2 == 0 else variants[::-1]:
                runs[name].append(_run(root, envs[name], args, Path(tmp) / name))
    for name, taken in runs.items():
        report[name] = {
            "wall_s": round(statistics.median(wall for wall, _ in taken), 3),
            "cpu_s": round(statistics.median(cpu for _, cpu in taken), 3),
            "runs": [[round(wall, 3), round(cpu, 3)] for wall, cpu in taken],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
