"""Run-queue wait of the calling thread, from ``/proc/thread-self/schedstat``.

A CPU-bound call on a busy machine is often runnable but not running: it waits
on the run queue for a core. Its CPU/wall ratio then looks low although it never
waited on anything. Adding the run-queue wait to its CPU time gives the ratio it
would have on an idle core, so a crowded machine does not make CPU-heavy work
look like waiting work. Reading it costs about a microsecond (``pread`` on a
kept-open file). Where the file does not exist the wait reads as 0.
"""

from __future__ import annotations

import contextlib
import os
import threading

_PATH = "/proc/thread-self/schedstat"
_local = threading.local()
AVAILABLE = os.path.exists(_PATH)


def runqueue_ns() -> int:
    """Nanoseconds the calling thread has spent runnable but waiting for a core."""
    if not AVAILABLE:
        return 0
    fd: int | None = getattr(_local, "fd", None)
    try:
        if fd is None:
            # /proc/thread-self resolves when opened: one file per thread.
            fd = _local.fd = os.open(_PATH, os.O_RDONLY)
        return int(os.pread(fd, 128, 0).split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def forget_thread() -> None:
    """Close the calling thread's file (call it before the thread ends)."""
    fd: int | None = getattr(_local, "fd", None)
    if fd is not None:
        _local.fd = None
        with contextlib.suppress(OSError):
            os.close(fd)
