"""Per-endpoint figures of a web app, and the advice they lead to.

Shared by the ASGI and the WSGI middleware. For each route: requests, wall time, CPU
time spent on the event loop thread, loop time blocked by stalls (with the blocking
site and call), and for sync work in threads, CPU time against the kinds of waiting.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from boundwise.probe.frames import display_path
from boundwise.probe.taxonomy import Category

from .advice import advice_for
from .stall import Stall

REPORT_SCHEMA = "boundwise.endpoints/1"


@dataclass(frozen=True, slots=True)
class BlockSite:
    """Where an endpoint blocked the loop, and in what."""

    file: str
    line: int
    function: str
    call: str
    category: Category

    def __str__(self) -> str:
        where = f"{display_path(self.file)}:{self.line}" if self.file else "an unknown line"
        return where + (f" in {self.call}" if self.call else "")


@dataclass(slots=True)
class EndpointStats:
    """Everything measured for one route."""

    route: str
    kind: str = "async"
    """``async`` (runs on the loop), ``sync`` (a ``def`` run in threads) or ``wsgi``."""
    requests: int = 0
    errors: int = 0
    wall_s: float = 0.0
    loop_cpu_s: float = 0.0
    """CPU time on the event loop thread during this route's own steps."""
    loop_held_s: float = 0.0
    """Wall time this route's steps held the event loop."""
    blocked_s: float = 0.0
    """Loop time this route's steps held the loop longer than the threshold (measured
    per step; for stalls outside requests, the stalls' duration)."""
    stalls: int = 0
    thread_wall_s: float = 0.0
    """Wall time of this route's work in threads (a ``def`` endpoint, a WSGI view)."""
    thread_cpu_s: float = 0.0
    waits: Counter[Category] = field(default_factory=Counter)
    """Samples of this route's threads, by kind of wait."""
    sites: dict[BlockSite, float] = field(default_factory=dict)
    """Loop time blocked, per :class:`BlockSite` (seconds)."""

    @property
    def blocked_per_call_s(self) -> float:
        return self.blocked_s / self.requests if self.requests else 0.0

    @property
    def top_site(self) -> BlockSite | None:
        known = [site for site in self.sites if site.file] or list(self.sites)
        return max(known, key=self.sites.__getitem__) if known else None

    @property
    def thread_wait_s(self) -> float:
        return max(0.0, self.thread_wall_s - self.thread_cpu_s)

    @property
    def main_wait(self) -> Category | None:
        """The most sampled kind of waiting (running and the GIL left out)."""
        waits = [(n, c) for c, n in self.waits.items() if c not in (Category.CPU, Category.GIL)]
        return max(waits)[1] if waits else None

    def advice(self) -> str:
        """One sentence: what to change about this endpoint, or that it is fine."""
        if self.route.startswith("("):  # stalls that belong to no endpoint
            ms = self.blocked_s * 1000
            if self.stalls and "GIL" in self.route:
                return (
                    f"the loop waited {ms:.0f} ms in all for the GIL held by worker threads "
                    "— move their CPU work to a process pool"
                )
            site = self.top_site
            if site is not None and site.file:
                return f"the loop blocked {ms:.0f} ms outside requests at {site} — " + advice_for(
                    site.call, site.category
                )
            return f"the loop blocked {ms:.0f} ms outside requests"
        if self.thread_wall_s > 0 and self.kind != "async":
            # A def endpoint's stalls are the loop waiting for the GIL its threads hold.
            return self._thread_advice()
        if self.stalls and self.blocked_s > 0:
            ms = self.blocked_per_call_s * 1000
            site = self.top_site
            where = f" at {site}" if site else ""
            head = f"`async def` endpoint blocks the loop {ms:.0f} ms per call{where}"
            if site is None or site.category in (Category.CPU, Category.GIL):
                return head + " — make it `def` or offload it to a process"
            fix = advice_for(site.call, site.category)
            return f"{head} ({site.category}) — {fix}, or make it `def`"
        return "ok: yields to the loop"

    def thread_shares(self) -> tuple[float, float]:
        """(share of thread time waiting on something, share busy: on CPU or wanting
        the GIL). From the samples when there are some, else from the thread clock."""
        samples = sum(self.waits.values())
        if samples:
            busy = self.waits[Category.CPU] + self.waits[Category.GIL]
            return (samples - busy) / samples, busy / samples
        wait = self.thread_wait_s / self.thread_wall_s if self.thread_wall_s else 0.0
        return wait, 1 - wait

    def _thread_advice(self) -> str:
        label = "`def` endpoint" if self.kind == "sync" else "view"
        wait_share, busy_share = self.thread_shares()
        pct = f"{wait_share:.0%}"
        wait = self.main_wait
        if wait_share >= 0.5 and wait is not None:
            if wait is Category.NETWORK:
                return (
                    f"{label} spends {pct} waiting on the network — it would serve "
                    "more as `async def` with an async client"
                )
            if wait is Category.SLEEP:
                return (
                    f"{label} spends {pct} sleeping — as `async def` with "
                    "`await asyncio.sleep` it would hold no thread"
                )
            if wait is Category.SUBPROCESS:
                return (
                    f"{label} spends {pct} waiting on a child process — "
                    "`asyncio.create_subprocess_exec` in an `async def` holds no thread"
                )
            if wait is Category.LOCK:
                return f"{label} spends {pct} waiting on a lock — contention limits it"
            return f"{label} spends {pct} waiting ({wait}) — fine in threads"
        if busy_share >= 0.5:
            cpu = self.thread_cpu_s / self.thread_wall_s if self.thread_wall_s else 0.0
            return (
                f"{label} is CPU-bound ({cpu:.0%} on CPU, the rest mostly waiting for "
                "the GIL) — threads share the GIL: offload the work to a process pool"
            )
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        n = self.requests or 1
        site = self.top_site
        return {
            "route": self.route,
            "kind": self.kind,
            "requests": self.requests,
            "errors": self.errors,
            "wall_s": round(self.wall_s, 6),
            "mean_wall_ms": round(self.wall_s / n * 1000, 3),
            "loop_cpu_s": round(self.loop_cpu_s, 6),
            "loop_cpu_ms_per_call": round(self.loop_cpu_s / n * 1000, 3),
            "loop_held_s": round(self.loop_held_s, 6),
            "blocked_s": round(self.blocked_s, 6),
            "blocked_ms_per_call": round(self.blocked_per_call_s * 1000, 3),
            "stalls": self.stalls,
            "thread_wall_s": round(self.thread_wall_s, 6),
            "thread_cpu_s": round(self.thread_cpu_s, 6),
            "waits": {str(c): n for c, n in self.waits.most_common()},
            "block_site": None
            if site is None
            else {
                "file": display_path(site.file),
                "line": site.line,
                "function": site.function,
                "call": site.call,
                "category": str(site.category),
            },
            "advice": self.advice(),
        }


@dataclass(slots=True)
class EndpointReport:
    """The per-endpoint report of one app."""

    endpoints: list[EndpointStats]
    threshold_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "threshold_s": self.threshold_s,
            "endpoints": [e.to_dict() for e in self.endpoints],
        }

    def __getitem__(self, route: str) -> EndpointStats:
        for e in self.endpoints:
            if e.route == route:
                return e
        raise KeyError(route)

    def table(self) -> Table:
        table = Table(title="boundwise: per-endpoint loop and thread time", title_justify="left")
        for name in (
            "route",
            "kind",
            "reqs",
            "mean ms",
            "loop CPU ms",
            "blocked ms/call",
            "thread CPU %",
            "advice",
        ):
            left = name in ("route", "kind", "advice")
            table.add_column(name, justify="left" if left else "right", overflow="fold")
        for e in self.endpoints:
            n = e.requests or 1
            cpu_pct = f"{e.thread_cpu_s / e.thread_wall_s:.0%}" if e.thread_wall_s else "-"
            table.add_row(
                e.route,
                e.kind,
                str(e.requests),
                f"{e.wall_s / n * 1000:.1f}",
                f"{e.loop_cpu_s / n * 1000:.2f}",
                f"{e.blocked_per_call_s * 1000:.0f}",
                cpu_pct,
                e.advice(),
            )
        return table

    def __rich__(self) -> Table:
        return self.table()

    def __str__(self) -> str:
        console = Console(
            width=160, no_color=True, color_system=None, record=True, file=io.StringIO()
        )
        console.print(self.table())
        return console.export_text().rstrip()


class Collector:
    """Thread-safe per-route accumulator."""

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._stats: dict[str, EndpointStats] = {}
        self.generation = 0
        """Counts resets: figures handed out by :meth:`stats` before one are stale."""

    def _get(self, route: str, kind: str) -> EndpointStats:
        stats = self._stats.get(route)
        if stats is None:
            stats = self._stats[route] = EndpointStats(route, kind)
        elif kind not in ("async", "-") and stats.kind == "async":
            stats.kind = kind
        return stats

    def stats(self, route: str, kind: str) -> EndpointStats:
        """The figures of a route, to add to with :meth:`add_loop_request`."""
        with self._lock:
            return self._get(route, kind)

    def add_loop_request(
        self, s: EndpointStats, wall_ns: int, cpu_ns: int, held_ns: int, error: bool
    ) -> None:
        """A request that ran only on the loop and never blocked it: the common case,
        kept cheap (every served request pays for it)."""
        with self._lock:
            s.requests += 1
            s.errors += error
            s.wall_s += wall_ns / 1e9
            s.loop_cpu_s += cpu_ns / 1e9
            s.loop_held_s += held_ns / 1e9

    def add_request(
        self,
        route: str,
        *,
        kind: str = "async",
        wall_s: float,
        loop_cpu_s: float = 0.0,
        loop_held_s: float = 0.0,
        blocked_s: float = 0.0,
        thread_wall_s: float = 0.0,
        thread_cpu_s: float = 0.0,
        waits: Counter[Category] | None = None,
        error: bool = False,
        stalls: list[Stall] | None = None,
    ) -> None:
        with self._lock:
            s = self._get(route, kind)
            s.requests += 1
            s.errors += error
            s.wall_s += wall_s
            s.loop_cpu_s += loop_cpu_s
            s.loop_held_s += loop_held_s
            s.blocked_s += blocked_s
            s.thread_wall_s += thread_wall_s
            s.thread_cpu_s += thread_cpu_s
            if waits:
                s.waits.update(waits)
            for stall in stalls or ():
                self._add_stall(s, stall)

    def add_stall(
        self, route: str, stall: Stall, *, count_time: bool = True, kind: str = "async"
    ) -> None:
        """A stall seen after its request finished (``count_time=False``: the
        request's steps already counted the time), or outside any request."""
        with self._lock:
            s = self._get(route, kind)
            self._add_stall(s, stall)
            if count_time:
                s.blocked_s += stall.duration_s

    def discount_blocked(self, route: str, seconds: float) -> None:
        """Take back loop time a route's step held only because it waited for the GIL."""
        with self._lock:
            s = self._stats.get(route)
            if s is not None:
                s.blocked_s = max(0.0, s.blocked_s - seconds)

    @staticmethod
    def _add_stall(s: EndpointStats, stall: Stall) -> None:
        s.stalls += 1
        site = BlockSite(stall.file, stall.line, stall.function, stall.call, stall.category)
        s.sites[site] = s.sites.get(site, 0.0) + stall.duration_s

    def report(self) -> EndpointReport:
        with self._lock:
            stats = [_copy(s) for s in self._stats.values()]
        stats.sort(key=lambda s: (s.blocked_s, s.wall_s), reverse=True)
        return EndpointReport(stats, self.threshold)

    def reset(self) -> None:
        with self._lock:
            self._stats.clear()
            self.generation += 1


def _copy(s: EndpointStats) -> EndpointStats:
    return EndpointStats(
        s.route,
        s.kind,
        s.requests,
        s.errors,
        s.wall_s,
        s.loop_cpu_s,
        s.loop_held_s,
        s.blocked_s,
        s.stalls,
        s.thread_wall_s,
        s.thread_cpu_s,
        Counter(s.waits),
        dict(s.sites),
    )
