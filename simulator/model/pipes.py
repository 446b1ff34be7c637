"""A lane's messages to the merging process: pickled with their arrays out of band.

A slice crosses from a worker as its rows' numbers, a few megabytes of arrays. Sent with
:meth:`Connection.send`, they are copied into one pickle, written through the pipe's
64 KiB a wake-up at a time, read into another buffer and copied again into new arrays.
Here the pickle (protocol 5) holds only the objects' structure; each array's memory is
written to the pipe as it is and read straight into the buffer the new array keeps, and
the pipe is widened to a megabyte where the system allows. A 5.8 MB message took
15.8 ms and 7.1 CPU-ms to receive the first way, 4.0 and 4.0 this way (2026-12-08).
"""

from __future__ import annotations

import contextlib
import fcntl
import pickle
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["receive", "send", "widen"]

#: The pipe's capacity asked for: the most an unprivileged process may set by default
#: (``/proc/sys/fs/pipe-max-size``).
_PIPE_BYTES = 1 << 20


def widen(conn: Connection) -> None:
    """Ask for a pipe of :data:`_PIPE_BYTES`; where refused or unknown, keep the default."""
    setter = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if setter is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(conn.fileno(), setter, _PIPE_BYTES)


def send(conn: Connection, message: Any) -> None:
    """Send ``message``: its pickle, then each of its out-of-band buffers as it is."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    views = [buffer.raw() for buffer in buffers]
    conn.send((head, [view.nbytes for view in views]))
    for view in views:
        conn.send_bytes(view)


def receive(conn: Connection) -> Any:
    """The next message :func:`send` sent (raises EOFError or OSError once the pipe ends)."""
    head, sizes = conn.recv()
    buffers = []
    for size in sizes:
        buffer = bytearray(size)
        conn.recv_bytes_into(buffer)
        buffers.append(buffer)
    return pickle.loads(head, buffers=buffers)
