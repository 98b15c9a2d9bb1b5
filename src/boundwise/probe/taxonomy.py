"""The wait taxonomy: every sample of a thread falls in exactly one category."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What a thread was doing when it was sampled."""

    CPU = "cpu"
    NETWORK = "network"
    DISK = "disk"
    SLEEP = "sleep"
    SUBPROCESS = "subprocess"
    LOCK = "lock"
    GIL = "gil"
    IDLE = "idle"
    OTHER = "other"


#: Categories that make up a breakdown, in report order. ``idle`` is left out:
#: a parked thread is not waiting, it has nothing to do.
BREAKDOWN_CATEGORIES: tuple[Category, ...] = (
    Category.CPU,
    Category.NETWORK,
    Category.DISK,
    Category.SLEEP,
    Category.SUBPROCESS,
    Category.LOCK,
    Category.GIL,
    Category.OTHER,
)

DESCRIPTIONS: dict[Category, str] = {
    Category.CPU: "executing (Python or native code)",
    Category.NETWORK: "waiting on sockets, DNS or an event loop with pending I/O",
    Category.DISK: "waiting on the file system",
    Category.SLEEP: "timed sleep",
    Category.SUBPROCESS: "waiting on a child process or a pipe",
    Category.LOCK: "waiting on another thread (Lock, Condition, Queue, Event, Semaphore)",
    Category.GIL: "runnable Python code waiting for the GIL",
    Category.IDLE: "parked with nothing to do",
    Category.OTHER: "not recognised",
}
