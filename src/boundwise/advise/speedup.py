"""The speedup model: how fast the measured work would run under each execution model.

The profile gives the work as a sync program would do it, one step after another:
``T = Cpy + Cnat + W`` where ``Cpy`` is Python CPU (needs the GIL), ``Cnat`` CPU in
native code that releases the GIL, and ``W`` waits (network, disk, sleep,
subprocess, other). GIL and lock waits are not work: they are what concurrency
costs, and vanish when the same work runs sequentially. Under each model, with
``n`` cores, the time is bounded below by what that model cannot overlap:

=========  ===============================================================
sync       ``T``
threads    ``max(Cpy, (Cpy + Cnat) / n, T / K_THREADS)``: one thread runs Python
           at a time; native code and waits overlap, up to a pool of threads
asyncio    ``max(Cpy + Cnat + Wdisk + Wother, T / K_ASYNC)``: one thread; only
           network, sleep and subprocess waits overlap (there is no async disk)
processes  ``T / n``: every part runs in parallel, one process per core
hybrid     ``max((Cpy + Cnat) / n, Wdisk + Wother, T / K_ASYNC)``: a loop overlaps
           the waits it can, a process pool runs the CPU; where the CPU or the waiting is under
           ``SPLIT_MIN`` of the work there is nothing to split, and hybrid is
           just processes or asyncio
=========  ===============================================================

Locks serialise: the work threads did while others queued on a lock (``S``: the
larger of the profile's ``serial_s`` and what the queueing time implies) is taken
to run one thread at a time under every model, and Amdahl's law applies to it:
``time = S + (1 - S / T) * time_model``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..probe.profile import MODELS, Profile

K_THREADS = 32
"""Waits a thread pool overlaps (ThreadPoolExecutor's default ceiling)."""
K_ASYNC = 256
"""Waits an event loop overlaps: far more than threads, each wait costs a few KB."""
SPLIT_MIN = 0.10


@dataclass(frozen=True, slots=True)
class Work:
    """The measured work, in seconds, as a sync program would do it."""

    cpu_python: float
    cpu_native: float
    network: float
    disk: float
    sleep: float
    subprocess: float
    other: float
    serial: float
    """Part of the work that ran under a lock, one thread at a time."""

    @property
    def cpu(self) -> float:
        return self.cpu_python + self.cpu_native

    @property
    def waits(self) -> float:
        return self.network + self.disk + self.sleep + self.subprocess + self.other

    @property
    def total(self) -> float:
        return self.cpu + self.waits

    @classmethod
    def from_profile(cls, profile: Profile) -> Work:
        s = profile.seconds
        cpu = s.get("cpu", 0.0)
        native = min(cpu, profile.native_cpu_s)
        waits = ("network", "disk", "sleep", "subprocess", "other")
        total = cpu + sum(s.get(w, 0.0) for w in waits)
        return cls(
            cpu_python=cpu - native,
            cpu_native=native,
            **{w: s.get(w, 0.0) for w in waits},
            serial=min(max(profile.serial_s, _queued_work(profile)), total),
        )


def _queued_work(profile: Profile) -> float:
    """Work that ran under a lock, from how long threads queued for it: with ``k``
    threads queueing ``L`` seconds in all behind one holder at a time, the holders
    worked about ``L / (k - 1)`` seconds."""
    lock = profile.seconds.get("lock", 0.0)
    if lock <= 0:
        return 0.0
    waiters = sum(1 for t in profile.threads if t.seconds.get("lock", 0.0) > 0.01 * lock)
    return lock / (waiters - 1) if waiters >= 2 else lock


def model_times(work: Work, cores: int) -> dict[str, float]:
    """Predicted time of the work under each model (same unit as ``work``)."""
    t, n = work.total, max(1, cores)
    threads = max(work.cpu_python, work.cpu / n, t / K_THREADS)
    asyncio = max(work.cpu + work.disk + work.other, t / K_ASYNC)
    processes = t / n
    if t > 0 and work.cpu / t < SPLIT_MIN:
        hybrid = asyncio
    elif t > 0 and work.waits / t < SPLIT_MIN:
        hybrid = processes
    else:
        hybrid = max(work.cpu / n, work.disk + work.other, t / K_ASYNC)
    times = {
        "sync": t,
        "threads": threads,
        "asyncio": asyncio,
        "processes": processes,
        "hybrid": hybrid,
    }
    if work.serial > 0 and t > 0:
        parallel = 1.0 - work.serial / t
        times = {m: work.serial + parallel * v for m, v in times.items()}
    return times


def predicted_speedup(work: Work, cores: int) -> dict[str, float]:
    """Speedup of each model over sync (1.0 for all when there is no work)."""
    times = model_times(work, cores)
    sync = times["sync"]
    return {m: (sync / times[m] if times[m] > 0 else 1.0) for m in MODELS}
