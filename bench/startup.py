"""Benchmark of the default command, `txnsim generate --out ./lake`, as a whole process.

Prints one JSON object: the wall time of ``--repeat`` runs of the console script with
no other flag (a fresh seed each time, as users first run it), their median, and the
floor any Python program on this stack pays, measured in the same run: an interpreter
that imports numpy, pyarrow (Parquet and compute) and pydantic and does nothing else.

Usage: python bench/startup.py [--repeat 7]
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

IMPORTS = "import numpy, pyarrow, pyarrow.parquet, pyarrow.compute, pydantic"
ROOT = Path(__file__).resolve().parent.parent
#: This checkout's code first on the path, whichever checkout an editable install names.
#: Bytecode caches are written, as Python does by default (``pip install`` compiles them);
#: a sandbox's ``PYTHONDONTWRITEBYTECODE`` would have every run compile the modules again.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPATH": str(ROOT),
}


def timed(cmd: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    script = shutil.which("txnsim")
    command = [script] if script else [sys.executable, "-m", "simulator"]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        timed([*command, "generate", "--out", "./lake"], cwd)  # the caches (holidays, places)
        runs, floor = [], []
        for _ in range(args.repeat):
            shutil.rmtree(cwd / "lake", ignore_errors=True)
            runs.append(timed([*command, "generate", "--out", "./lake"], cwd))
            floor.append(timed([sys.executable, "-c", IMPORTS], cwd))
    report = {
        "benchmark": "startup",
        "command": "txnsim generate --out ./lake",
        "load_before": round(load, 2),
        "median_s": round(statistics.median(runs), 3),
        "runs_s": [round(r, 3) for r in runs],
        "imports_only_median_s": round(statistics.median(floor), 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
