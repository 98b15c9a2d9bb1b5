"""Call sites inside forked worker processes.

The sampler measures worker processes from the kernel (their CPU and waits), but
it cannot read another process's Python stacks. So a worker forked while a session
runs starts a sampler of its own, which only records call sites, and leaves them
in a file for the parent to merge when the session stops.

Workers started with ``spawn`` or ``forkserver`` run no code of ours before
theirs: they are measured from the kernel only, without call sites.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import time
from typing import Any

from .frames import Site
from .tally import Tally
from .taxonomy import Category

_session_dir: str | None = None
_interval = 0.005
_hook_installed = False


def begin(interval: float) -> None:
    """Have workers forked from now on record their call sites."""
    global _session_dir, _interval, _hook_installed
    # Only named here: a worker creates it. Most programs never fork one.
    base = os.environ.get("TMPDIR") or "/tmp"
    _session_dir = os.path.join(base, f"boundwise-workers-{os.getpid()}-{time.monotonic_ns()}")
    _interval = interval
    if not _hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_start_in_child)
        _hook_installed = True


def end(tally: Tally) -> None:
    """Merge the call sites workers left into ``tally``; stop recording.

    A worker's sites give where its time went; how much time is what the parent
    measured of that worker from the kernel, so the sites are scaled to it.
    """
    global _session_dir
    directory, _session_dir = _session_dir, None
    if directory is None:
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return  # no worker was forked
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".json") and name[:-5].isdigit():
            _merge(int(name[:-5]), _load(path), tally)
        with contextlib.suppress(OSError):
            os.remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def _load(path: str) -> list[list[Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            rows: list[list[Any]] = json.load(f)
            return rows
    except (OSError, ValueError):
        return []  # a worker killed while writing: its sites are lost, nothing else


def _merge(pid: int, rows: list[list[Any]], tally: Tally) -> None:
    recorded = sum(float(row[4]) for row in rows)
    measured = sum(
        sum(s for c, s in t.by_category().items() if c is not Category.IDLE)
        for (p, _), t in tally.threads.items()
        if p == pid
    )
    if recorded <= 0 or measured <= 0:
        return
    scale = measured / recorded
    for file, line, function, category, seconds in rows:
        tally.add_site(Site(file, int(line), function), Category(category), float(seconds) * scale)


def _start_in_child() -> None:
    directory = _session_dir
    if directory is None:
        return
    from .sampler import Sampler  # here, not at import: the sampler imports us

    sampler = Sampler(_interval, find_workers=False)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{os.getpid()}.json")

    def flush() -> None:
        rows = [
            [site.file, site.line, site.function, category.value, seconds]
            for (site, category), seconds in list(sampler.tally.sites.items())
        ]
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(rows, f)
        os.replace(tmp, path)

    sampler.on_flush = flush
    sampler.start()
    atexit.register(flush)
    # multiprocessing's workers leave through os._exit(): its finalizers still run.
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.Finalize(None, flush, exitpriority=100)
