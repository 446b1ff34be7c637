"""A console script's start-up: its modules load with the cyclic collector paused.

Importing numpy, pyarrow, pydantic and the command's modules makes some 60,000
objects, and the collector walks them again and again while they are made: 30 ms
of a run's CPU (116 collections, 7 days x 100k cardholders), for nothing to free.
A console script pauses the collector before its first import and resumes it when
the command is about to run; what start-up made is then frozen (``gc.freeze``), so
later collections skip it, and a forked worker does not touch those pages to
collect them.

Its linear algebra runs on one thread (:func:`one_blas_thread`): numpy's OpenBLAS
otherwise starts a thread per core when numpy is imported, which spins for some
0.1 s looking for work that never comes (the simulation multiplies no matrices
outside the world build): 120 ms of CPU per process, measured with ``perf stat``.
"""

from __future__ import annotations

import gc
import os

__all__ = ["one_blas_thread", "pause_collector", "resume_collector"]

#: What the BLAS libraries numpy may be built with read for their thread count.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """Have numpy's BLAS use the calling thread only, unless the environment says otherwise.

    Before numpy is first imported: the library reads its setting as it loads. Child
    processes inherit it.
    """
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")


_paused = False


def pause_collector() -> None:
    """Pause the cyclic garbage collector until :func:`resume_collector`."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """Freeze what exists now and resume the collector (if :func:`pause_collector` paused it)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
