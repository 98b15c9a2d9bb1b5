"""Shared pieces of the runtime benchmarks: the work functions and table printing.

The work functions live in this module (not in ``__main__``) so that every
contender, whatever its way of naming a function in a worker process, can
import them there.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence


def noop(x: int) -> int:
    return x


async def anoop(x: int) -> int:
    return x


def spin(ms: float) -> float:
    """Pure-Python CPU work: exactly ``ms`` ms of this thread's CPU time."""
    end = time.thread_time() + ms / 1000
    n = 0
    while time.thread_time() < end:
        n += 1
    return ms


def wait(ms: float) -> float:
    """A blocking I/O wait of ``ms`` ms."""
    time.sleep(ms / 1000)
    return ms


def hang(seconds: float = 30.0) -> None:
    time.sleep(seconds)


def die() -> None:
    os._exit(13)


def pid() -> int:
    return os.getpid()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    text = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in text
    ]
    return "\n".join([line, rule, *body])


def say(text: str = "") -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
