"""How fast the machine is right now: a fixed workload timed, for the benchmarks' reports.

This machine's speed drifts by up to 2x within minutes whatever runs on it (a shared
host): the same pure-Python loop took 0.16 s and 0.34 s a minute apart, with the load
average under 1. A benchmark that times this probe beside each run shows which runs met
a slow host, so figures from different hours can be compared, and a run is only
compared with the runs beside it.
"""

from __future__ import annotations

import time

import numpy as np

#: Iterations of the interpreter loop; about 0.2 s on this machine at its usual speed.
_LOOP = 5_000_000
#: Elements sorted by numpy (compiled code, one core).
_SORT = 2_000_000


def probe() -> float:
    """Seconds for a fixed single-core workload: an interpreter loop, then a numpy sort."""
    values = np.random.default_rng(0).random(_SORT)
    began = time.perf_counter()
    total = 0
    for i in range(_LOOP):
        total += i
    np.sort(values)
    return round(time.perf_counter() - began, 3)
