"""Running totals of sampled time: per thread, per process, per call site.

The sampler adds to these as it goes, so memory stays bounded however long the
program runs: a total per (thread, category) and per (site, category), never a
list of samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .frames import Site
from .taxonomy import Category

MAX_THREADS = 256
"""Threads tracked one by one; later ones are pooled under one entry."""

_INDEX = {c: i for i, c in enumerate(Category)}


@dataclass(slots=True)
class ThreadTotals:
    pid: int
    native_id: int
    name: str
    worker: bool = False
    seconds: list[float] = field(default_factory=lambda: [0.0] * len(Category))
    system_s: float = 0.0
    """CPU time the kernel spent on the thread's behalf, inside its system calls."""

    def add(self, category: Category, seconds: float) -> None:
        self.seconds[_INDEX[category]] += seconds

    def by_category(self) -> dict[Category, float]:
        """Seconds per category. System CPU time is the kernel working inside the
        calls the thread makes: it goes to what those calls wait on (disk,
        network, subprocess), in proportion, when the thread waited on any."""
        out = {c: self.seconds[i] for c, i in _INDEX.items()}
        waits = {c: out[c] for c in _KERNEL_WORK if out[c] > 0}
        total = sum(waits.values())
        if total > 0 and self.system_s > 0:
            moved = min(out[Category.CPU], self.system_s)
            out[Category.CPU] -= moved
            for c, s in waits.items():
                out[c] += moved * s / total
        return out


_KERNEL_WORK = (Category.DISK, Category.NETWORK, Category.SUBPROCESS)


@dataclass(slots=True)
class Tally:
    """Everything the sampler has measured so far."""

    threads: dict[tuple[int, int], ThreadTotals] = field(default_factory=dict)
    sites: dict[tuple[Site, Category], float] = field(default_factory=dict)
    worker_cpu_s: dict[int, float] = field(default_factory=dict)
    readings: int = 0
    rounds: int = 0
    observer_s: float = 0.0
    runqueue_s: float = 0.0
    """Time runnable threads waited for a free core."""
    native_cpu_s: float = 0.0
    """CPU seen running while the sampler held the GIL: native code."""
    python_cpu_s: float = 0.0
    """CPU of threads seen waiting for the GIL: Python code."""
    serial_s: float = 0.0
    """Work done while other threads queued on a lock."""

    def thread(self, pid: int, native_id: int, name: str, worker: bool = False) -> ThreadTotals:
        key = (pid, native_id)
        totals = self.threads.get(key)
        if totals is None:
            if len(self.threads) >= MAX_THREADS:
                key = (pid, 0)
                totals = self.threads.get(key)
                if totals is None:
                    totals = ThreadTotals(pid, 0, "(more threads)", worker)
                    self.threads[key] = totals
                return totals
            totals = ThreadTotals(pid, native_id, name, worker)
            self.threads[key] = totals
        return totals

    def add_site(self, site: Site | None, category: Category, seconds: float) -> None:
        if site is None or seconds <= 0.0:
            return
        key = (site, category)
        self.sites[key] = self.sites.get(key, 0.0) + seconds
