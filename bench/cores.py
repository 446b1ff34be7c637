"""Whether two busy cores are two cores' worth: kernels timed alone, then two at once.

Prints one JSON object. Each kernel runs in a process of its own, first alone, then as
two processes started together; the runs take turns (alone, pair, alone, pair...), so
a host that drifts slows both alike. Reported per kernel: the median CPU seconds of a
process alone and in a pair, and their ratio (``pair_cpu_over_alone``): 1.0 when the
cores share nothing, above it when the second process slows the first.

The kernels are the shapes of `txnsim generate`'s work:

* ``interpreter``: a pure-Python loop (the interpreter's share: planning, file
  bookkeeping); touches almost no memory.
* ``in_cache``: arithmetic over 100k-element arrays, which stay in a core's own cache.
* ``streaming``: the same arithmetic over 2M-element arrays (16 MB), which pass through
  memory (a day's columns on their way to Parquet).
* ``gather``: random gathers from an 8 MB table: bound by the shared cache and memory.

A ratio well above 1 means that work of that shape runs slower on each core when both
are busy: rows per CPU-second then fall as CPU seconds over wall seconds rise.

Usage: python bench/cores.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier

import numpy as np


def interpreter() -> None:
    total = 0
    for i in range(12_000_000):
        total += i * i % 7


def in_cache() -> None:
    values = np.random.default_rng(0).random(100_000)
    for _ in range(6_000):
        values = values * 1.0001 + 0.5


def streaming() -> None:
    values = np.random.default_rng(0).random(2_000_000)
    for _ in range(300):
        values = values * 1.0001 + 0.5


def gather() -> None:
    rng = np.random.default_rng(0)
    table = rng.random(1_000_000)
    rows = rng.integers(0, len(table), 200_000)
    for _ in range(800):
        table[rows].sum()


KERNELS: dict[str, Callable[[], None]] = {
    "interpreter": interpreter,
    "in_cache": in_cache,
    "streaming": streaming,
    "gather": gather,
}


def _timed(name: str, start: Barrier, out: multiprocessing.SimpleQueue[float]) -> None:
    start.wait()
    began = time.process_time()
    KERNELS[name]()
    out.put(time.process_time() - began)


def cpu_seconds(name: str, processes: int) -> list[float]:
    """CPU seconds of each of ``processes`` processes running kernel ``name`` at once."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes)
    out: multiprocessing.SimpleQueue[float] = context.SimpleQueue()
    workers = [context.Process(target=_timed, args=(name, start, out)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [out.get() for _ in workers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, object] = {
        "benchmark": "cores",
        "cpus": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 2),
    }
    for name in KERNELS:
        alone: list[float] = []
        pair: list[float] = []
        for _ in range(args.repeat):
            alone += cpu_seconds(name, 1)
            pair += cpu_seconds(name, 2)
        report[name] = {
            "alone_cpu_s": round(statistics.median(alone), 3),
            "pair_cpu_s": round(statistics.median(pair), 3),
            "pair_cpu_over_alone": round(statistics.median(pair) / statistics.median(alone), 2),
            "runs_alone": [round(s, 3) for s in alone],
            "runs_pair": [round(s, 3) for s in pair],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
