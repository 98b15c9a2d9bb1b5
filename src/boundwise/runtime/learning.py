"""Per-function figures and the routing decision for ``kind="auto"``.

Every call is measured where it runs: thread CPU time (``thread_time``) and
wall time of the function body only, without queueing or transfer; calls in
worker processes and learning calls also count the time they were runnable
but waited for a core (:mod:`boundwise.runtime.sched`). The rule:

* coroutine functions always run on the event loop (``"loop"``);
* a sync function starts on threads (always safe) while it is learning: its
  first :data:`MIN_SAMPLES` calls run one at a time on a thread, so that their
  CPU/wall ratio is not diluted by calls of the same function fighting each
  other for the GIL;
* it goes to processes when its smoothed CPU/wall ratio is at least
  :data:`CPU_RATIO` and its calls use at least :data:`MIN_PROCESS_CPU_S` of CPU
  (below that the hand-off to a process costs more than it saves), and only
  when the function pickles (checked once, answer cached);
* it comes back to threads when the ratio falls below :data:`BACK_RATIO`
  (hysteresis, so a function does not flap);
* it runs inline, in the caller, when its recent calls all finished within
  :data:`INLINE_MAX_S` — less than a hand-off to a thread costs — and goes back
  to threads as soon as one call takes longer than :data:`INLINE_BREAK_S`.

Percentiles come from a fixed-size ring of the latest wall times, so memory
stays bounded however many calls a function makes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

Route = Literal["loop", "thread", "process", "inline"]

MIN_SAMPLES = 2
CPU_RATIO = 0.7
BACK_RATIO = 0.5
MIN_PROCESS_CPU_S = 0.005
INLINE_MAX_S = 50e-6
INLINE_MAX_NS = int(INLINE_MAX_S * 1e9)
INLINE_SAMPLES = 16
INLINE_BREAK_S = 1e-3
ALPHA = 0.3
RING = 512


@dataclass(frozen=True, slots=True)
class Decision:
    """Why a function runs where it runs."""

    route: Route
    reason: str


class FunctionStats:
    """Measured figures of one function, and where its next call goes.

    Updated from worker threads, so every change holds :attr:`lock`.
    """

    __slots__ = (
        "_fast_streak",
        "_ring",
        "_ring_pos",
        "auto",
        "calls",
        "cpu_ewma",
        "cpu_ns",
        "crashes",
        "errors",
        "exploring",
        "lock",
        "name",
        "picklable",
        "ratio_ewma",
        "reason",
        "retries",
        "route",
        "samples",
        "timeouts",
        "wall_ns",
    )

    def __init__(self, name: str, route: Route, auto: bool, reason: str) -> None:
        self.name = name
        self.route: Route = route
        self.auto = auto
        self.reason = reason
        self.lock = threading.Lock()
        self.calls = 0
        self.samples = 0
        self.errors = 0
        self.crashes = 0
        self.timeouts = 0
        self.retries = 0
        self.cpu_ns = 0
        self.wall_ns = 0
        self.ratio_ewma = 0.0
        self.cpu_ewma = 0.0
        self.exploring = 0
        self.picklable: bool | None = None
        self._ring: list[int] = []
        self._ring_pos = 0
        self._fast_streak = 0

    @property
    def learning(self) -> bool:
        return self.auto and self.route != "loop" and self.samples < MIN_SAMPLES

    def record(self, cpu_ns: int, wall_ns: int, where: Route, ready_ns: int = 0) -> None:
        """Add one measured call and revisit the route if it is learned.

        ``ready_ns``: time the call was runnable but waited for a core; it counts
        as CPU demand for the ratio (see :mod:`boundwise.runtime.sched`).
        """
        if self.auto:
            with self.lock:  # the figures decide the route: keep them consistent
                self._add(cpu_ns, wall_ns, ready_ns)
                if self.route != "loop":
                    self._decide(wall_ns)
        else:
            # A hinted kind: the figures are only reported, and the thread route's
            # hot path is not worth a lock for them. In CPython these updates are
            # not interleaved between threads but at calls, so at worst one
            # smoothed value misses one sample.
            self._add(cpu_ns, wall_ns, ready_ns)

    def _add(self, cpu_ns: int, wall_ns: int, ready_ns: int) -> None:
        self.samples += 1
        self.cpu_ns += cpu_ns
        self.wall_ns += wall_ns
        self._keep_wall(wall_ns)
        ratio = (cpu_ns + ready_ns) / wall_ns if wall_ns > 0 else 0.0
        if ratio > 1.0:
            ratio = 1.0
        if self.samples == 1:
            self.ratio_ewma = ratio
            self.cpu_ewma = cpu_ns / 1e9
        else:
            self.ratio_ewma += ALPHA * (ratio - self.ratio_ewma)
            self.cpu_ewma += ALPHA * (cpu_ns / 1e9 - self.cpu_ewma)
        if wall_ns <= INLINE_MAX_NS:
            self._fast_streak += 1
        else:
            self._fast_streak = 0

    def _decide(self, last_wall_ns: int) -> None:
        # Caller holds self.lock.
        if self.samples < MIN_SAMPLES:
            return
        ratio, cpu = self.ratio_ewma, self.cpu_ewma
        if self.route == "inline":
            if last_wall_ns > INLINE_BREAK_S * 1e9:
                self.route = "thread"
                self.reason = f"a call took {last_wall_ns / 1e6:.1f} ms: too long to run inline"
            return
        if self._fast_streak >= INLINE_SAMPLES:
            self.route = "inline"
            self.reason = (
                f"{self._fast_streak} calls in a row finished within "
                f"{INLINE_MAX_S * 1e6:.0f} us: cheaper than a hand-off"
            )
            return
        heavy = ratio >= CPU_RATIO and cpu >= MIN_PROCESS_CPU_S
        if self.route != "process" and heavy:
            if self.picklable is False:
                self.reason = f"cpu/wall {ratio:.2f} but not picklable: stays on threads"
                return
            self.route = "process"
            self.reason = f"cpu/wall {ratio:.2f}, {cpu * 1e3:.1f} ms CPU per call: CPU-bound"
        elif self.route == "process" and (ratio < BACK_RATIO or cpu < MIN_PROCESS_CPU_S / 2):
            self.route = "thread"
            self.reason = f"cpu/wall {ratio:.2f}, {cpu * 1e3:.1f} ms CPU per call: mostly waits"
        elif self.route == "thread" and self.reason.startswith("learning"):
            self.reason = f"cpu/wall {ratio:.2f}, {cpu * 1e3:.1f} ms CPU per call: mostly waits"

    def record_wall(self, wall_ns: int) -> None:
        """Add one call measured by wall time only (a coroutine: its CPU time is shared).

        Lock-free on purpose (the loop route's hot path): calls of one coroutine
        function normally all run on one loop thread, and a race between two
        loops can only misplace one sample in the ring.
        """
        self.samples += 1
        self.wall_ns += wall_ns
        self._keep_wall(wall_ns)

    def _keep_wall(self, wall_ns: int) -> None:
        """Keep a call's wall time in the ring the percentiles are read from."""
        ring = self._ring
        if len(ring) < RING:
            ring.append(wall_ns)
        else:
            pos = self._ring_pos
            ring[pos] = wall_ns
            self._ring_pos = (pos + 1) % RING

    def percentile(self, q: float) -> float | None:
        """Wall time in seconds at quantile ``q`` of the latest calls."""
        with self.lock:
            data = sorted(self._ring)
        if not data:
            return None
        index = min(len(data) - 1, max(0, round(q * (len(data) - 1))))
        return data[index] / 1e9

    def snapshot(self) -> dict[str, Any]:
        """The figures :meth:`Runtime.stats` reports for this function."""
        p50 = self.percentile(0.5)
        p99 = self.percentile(0.99)
        with self.lock:
            return {
                "calls": self.calls,
                "route": self.route,
                "reason": self.reason,
                "learning": self.learning,
                "cpu_ratio": round(self.cpu_ns / self.wall_ns, 3) if self.wall_ns else None,
                "recent_cpu_ratio": round(self.ratio_ewma, 3) if self.samples else None,
                "cpu_s": self.cpu_ns / 1e9,
                "wall_s": self.wall_ns / 1e9,
                "p50_s": p50,
                "p99_s": p99,
                "errors": self.errors,
                "crashes": self.crashes,
                "timeouts": self.timeouts,
                "retries": self.retries,
                "picklable": self.picklable,
            }
