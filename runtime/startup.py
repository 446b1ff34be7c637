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

Memory a command frees is kept for its next use (:func:`keep_freed_memory`). A slice's
arrays and Arrow buffers are freed and made again slice after slice; by default glibc
hands every block over 128 KiB back to the kernel at once, and pyarrow's mimalloc its
pages 10 ms after they are freed, so each slice faulted its memory in again and the
kernel zeroed it, page by page: 7% of a run's CPU in ``clear_page_erms`` alone (``perf
record``, 7 days x 100k cardholders). Kept, that run takes 3.5% less CPU and 5% less
wall time (ten interleaved pairs), and a day of 1M cardholders 14% less CPU and 13%
less wall (four pairs); peaks are lower (README, Benchmarks).
"""

from __future__ import annotations

import gc
import os

__all__ = ["keep_freed_memory", "one_blas_thread", "pause_collector", "resume_collector"]

#: What the BLAS libraries numpy may be built with read for their thread count.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """Have numpy's BLAS use the calling thread only, unless the environment says otherwise.

    Before numpy is first imported: the library reads its setting as it loads. Child
    processes inherit it.
    """
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")


#: pyarrow's mimalloc: keep freed pages for a second (its default is 10 ms), and map no
#: transparent huge pages. A slice frees and makes its buffers again within a second at
#: any scale measured; kept for ever instead, a 10M-cardholder day ran 11% faster but
#: peaked 8% higher (7.28 GB against 6.71), and 1M x 7 days 1.10x its largest day's
#: peak against 1.06x. mimalloc writes its free list into every block of a fresh page,
#: so a huge page was faulted in and zeroed whole, 2 MiB at a time, where the blocks in
#: use touch a few 4 KiB pages (page faults went from 7% of a 7-day run's samples to
#: 4.5%, with 6% fewer samples in all).
_MIMALLOC = {"MIMALLOC_PURGE_DELAY": "1000", "MIMALLOC_ALLOW_THP": "0"}

#: glibc's ``mallopt`` parameters (``<malloc.h>``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap, not their own mapping: glibc's largest.
_MMAP_THRESHOLD = 32 << 20
#: Free memory at a heap's top is handed back to the kernel beyond this much.
_TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> None:
    """Have the allocators keep freed memory for reuse instead of handing it back at once.

    Before pyarrow is first imported: its mimalloc reads its options from the environment
    as it loads (the environment's own values win). glibc's thresholds are set through
    ``mallopt``; on another C library only the first part applies. Forked workers
    inherit both.
    """
    for name, value in _MIMALLOC.items():
        os.environ.setdefault(name, value)
    if not _glibc():
        return
    import ctypes

    mallopt = ctypes.CDLL(None).mallopt
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def _glibc() -> bool:
    """Whether this process runs on glibc (not musl, macOS or Windows)."""
    if "CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}):
        return False
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (OSError, ValueError):
        return False


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
