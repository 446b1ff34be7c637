"""Every thread's stack on demand: what a long-running process that seems stuck waits for.

``kill -USR1 <pid>`` makes ``txnsim stream``, ``txnsim generate`` or ``txnsim-sink``
write the stack of each of its threads to stderr and go on. The dump is written by
the interpreter's C signal handler (:mod:`faulthandler`), so it comes even while the
main thread waits inside a client library (librdkafka, a socket) and Python-level
signal handlers would wait with it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import signal

__all__ = ["dump_stacks_on_signal"]


def dump_stacks_on_signal(signum: int = signal.SIGUSR1) -> bool:
    """Write every thread's stack to stderr when ``signum`` arrives.

    Returns:
        Whether it was installed: not where stderr is no file (a test's capture, an
        embedding program's stream) or the platform has no such signal.
    """
    with contextlib.suppress(io.UnsupportedOperation, RuntimeError, AttributeError, ValueError):
        faulthandler.register(signum, all_threads=True)
        return True
    return False
