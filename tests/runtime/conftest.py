"""Every runtime test leaves no worker process and no runtime thread behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from boundwise.runtime import api


def _leftovers() -> tuple[list[psutil.Process], list[threading.Thread]]:
    children = [c for c in psutil.Process().children(recursive=True) if _alive(c)]
    threads = [t for t in threading.enumerate() if t.name.startswith("boundwise") and t.is_alive()]
    return children, threads


def _alive(p: psutil.Process) -> bool:
    try:
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        # multiprocessing's own helpers (one per interpreter, not per runtime)
        cmdline = " ".join(p.cmdline())
    except psutil.NoSuchProcess:
        return False
    return "resource_tracker" not in cmdline and "forkserver" not in cmdline


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    if api._default is not None:
        api._default.close(cancel=True)
        api._default = None
    deadline = time.monotonic() + 5
    children, threads = _leftovers()
    while (children or threads) and time.monotonic() < deadline:
        time.sleep(0.05)
        children, threads = _leftovers()
    assert not children, f"worker processes left behind: {children}"
    assert not threads, f"runtime threads left behind: {threads}"
