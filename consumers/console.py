"""The ``txnsim-sink`` console script: the sink's command line, numpy's BLAS on one thread."""

from __future__ import annotations

from runtime.startup import one_blas_thread

__all__ = ["txnsim_sink"]


def txnsim_sink() -> None:
    """Run the sink's command line in this process (see :func:`consumers.cli.entry`)."""
    one_blas_thread()  # before the sink's modules import numpy
    from consumers.cli import entry

    entry()
