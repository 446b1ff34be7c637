"""The ``txnsim`` console script: the command line, its modules loaded with the collector paused."""

from __future__ import annotations

from typing import NoReturn

from runtime.startup import keep_freed_memory, one_blas_thread, pause_collector

__all__ = ["txnsim"]


def txnsim() -> NoReturn:
    """Run the command line in this process (see :func:`simulator.cli.entry`)."""
    one_blas_thread()
    keep_freed_memory()
    pause_collector()  # resumed by the command line once the command's modules are loaded
    from simulator.cli import entry

    entry()
