"""The Profile: where a program's time went, as a plain data model.

It is what ``boundwise profile --json`` prints (schema ``boundwise.profile/1``, see
DESIGN.md) and what ``boundwise advise`` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .frames import display_path
from .tally import Tally
from .taxonomy import BREAKDOWN_CATEGORIES, Category

SCHEMA = "boundwise.profile/1"
MODELS: tuple[str, ...] = ("sync", "threads", "asyncio", "processes", "hybrid")
VERDICTS: tuple[str, ...] = ("cpu-bound", "io-bound", "mixed")
MAX_SITES = 40


def active_of(seconds: dict[str, float]) -> float:
    """Seconds of non-idle time."""
    return sum(seconds.get(c.value, 0.0) for c in BREAKDOWN_CATEGORIES)


def breakdown_of(seconds: dict[str, float]) -> dict[str, float]:
    """Fractions of non-idle time per category; they sum to 1 (all 0 when no time)."""
    total = active_of(seconds)
    if total <= 0:
        return {c.value: 0.0 for c in BREAKDOWN_CATEGORIES}
    return {c.value: seconds.get(c.value, 0.0) / total for c in BREAKDOWN_CATEGORIES}


@dataclass(slots=True)
class ThreadProfile:
    name: str
    native_id: int
    pid: int
    seconds: dict[str, float]
    """Seconds per category, ``idle`` included."""

    @property
    def breakdown(self) -> dict[str, float]:
        return breakdown_of(self.seconds)

    @property
    def active_s(self) -> float:
        return active_of(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "native_id": self.native_id,
            "pid": self.pid,
            "active_s": round(self.active_s, 4),
            "idle_s": round(self.seconds.get("idle", 0.0), 4),
            "breakdown": _rounded(self.breakdown),
        }


@dataclass(slots=True)
class SiteProfile:
    """A line of the program's own code, and the time spent at it in one category."""

    file: str
    line: int
    function: str
    category: str
    seconds: float
    fraction: float

    @property
    def location(self) -> str:
        return f"{display_path(self.file)}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": display_path(self.file),
            "line": self.line,
            "function": self.function,
            "category": self.category,
            "seconds": round(self.seconds, 4),
            "fraction": round(self.fraction, 4),
        }


@dataclass(slots=True)
class ProcessProfile:
    pid: int
    role: str
    """``main``, or ``worker`` for a worker process of the program."""
    cpu_s: float
    seconds: dict[str, float]

    @property
    def breakdown(self) -> dict[str, float]:
        return breakdown_of(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "role": self.role,
            "cpu_s": round(self.cpu_s, 4),
            "breakdown": _rounded(self.breakdown),
        }


@dataclass(slots=True)
class Recommendation:
    """The execution model that fits, why, and how much faster each model should be."""

    model: str
    reason: str
    predicted_speedup: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": self.reason,
            "predicted_speedup": {m: round(v, 2) for m, v in self.predicted_speedup.items()},
        }


@dataclass(slots=True)
class Profile:
    """Measured time of one run, and (once advised) the verdict and recommendation."""

    target: str = ""
    exit_code: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    cores: int = 1
    samples: int = 0
    interval_s: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    """Thread-seconds per category over every measured thread, ``idle`` included."""
    native_cpu_s: float = 0.0
    """CPU time spent in native code that had released the GIL."""
    serial_s: float = 0.0
    """Work done while other threads queued on a lock: it runs one thread at a time."""
    observer_s: float = 0.0
    """Time the program waited for the GIL because the sampler held it (not counted)."""
    runqueue_s: float = 0.0
    """Time runnable threads waited for a free core (not counted)."""
    threads: list[ThreadProfile] = field(default_factory=list)
    sites: list[SiteProfile] = field(default_factory=list)
    processes: list[ProcessProfile] = field(default_factory=list)
    source: str = "syscall"
    """Evidence used: ``syscall`` and ``wchan`` (kernel), or ``stack`` (Python stacks only)."""
    notes: list[str] = field(default_factory=list)
    verdict: str | None = None
    recommendation: Recommendation | None = None

    @property
    def breakdown(self) -> dict[str, float]:
        """Fractions of non-idle thread time per category; they sum to 1."""
        return breakdown_of(self.seconds)

    @property
    def active_s(self) -> float:
        return active_of(self.seconds)

    def sites_for(self, category: str) -> list[SiteProfile]:
        return [s for s in self.sites if s.category == category]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "target": self.target,
            "exit_code": self.exit_code,
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "cores": self.cores,
            "samples": self.samples,
            "interval_s": self.interval_s,
            "breakdown": _rounded(self.breakdown),
            "seconds": _rounded(self.seconds),
            "cpu_native_fraction": round(self.native_cpu_s / self.seconds["cpu"], 4)
            if self.seconds.get("cpu")
            else 0.0,
            "serial_s": round(self.serial_s, 4),
            "observer_s": round(self.observer_s, 4),
            "runqueue_s": round(self.runqueue_s, 4),
            "threads": [t.to_dict() for t in self.threads],
            "sites": [s.to_dict() for s in self.sites],
            "processes": [p.to_dict() for p in self.processes],
            "source": self.source,
            "notes": list(self.notes),
            "verdict": self.verdict,
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
        }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Read a profile back from its JSON form (``boundwise advise``)."""
        if data.get("schema") != SCHEMA:
            raise ValueError(
                f"not a boundwise profile (schema {data.get('schema')!r}, want {SCHEMA!r})"
            )
        breakdown = data["breakdown"]
        seconds = data.get("seconds") or {}
        if not seconds:
            # Older or hand-written files: rebuild seconds from the fractions.
            active = float(data.get("wall_s", 1.0)) or 1.0
            seconds = {k: float(v) * active for k, v in breakdown.items()}
        cpu = float(seconds.get("cpu", 0.0))
        rec = data.get("recommendation")
        return cls(
            target=str(data.get("target", "")),
            exit_code=int(data.get("exit_code", 0)),
            wall_s=float(data.get("wall_s", 0.0)),
            cpu_s=float(data.get("cpu_s", 0.0)),
            cores=int(data.get("cores", 1)),
            samples=int(data.get("samples", 0)),
            interval_s=float(data.get("interval_s", 0.0)),
            seconds={k: float(v) for k, v in seconds.items()},
            native_cpu_s=float(data.get("cpu_native_fraction", 0.0)) * cpu,
            serial_s=float(data.get("serial_s", 0.0)),
            observer_s=float(data.get("observer_s", 0.0)),
            runqueue_s=float(data.get("runqueue_s", 0.0)),
            threads=[
                ThreadProfile(
                    t["name"],
                    int(t["native_id"]),
                    int(t.get("pid", 0)),
                    {k: float(v) * float(t.get("active_s", 1.0)) for k, v in t["breakdown"].items()}
                    | {"idle": float(t.get("idle_s", 0.0))},
                )
                for t in data.get("threads", [])
            ],
            sites=[
                SiteProfile(
                    s["file"],
                    int(s["line"]),
                    s["function"],
                    s["category"],
                    float(s.get("seconds", 0.0)),
                    float(s["fraction"]),
                )
                for s in data.get("sites", [])
            ],
            processes=[
                ProcessProfile(p["pid"], p["role"], float(p["cpu_s"]), dict(p["breakdown"]))
                for p in data.get("processes", [])
            ],
            source=str(data.get("source", "syscall")),
            notes=list(data.get("notes", [])),
            verdict=data.get("verdict"),
            recommendation=Recommendation(
                rec["model"], rec["reason"], dict(rec["predicted_speedup"])
            )
            if rec
            else None,
        )


def _native_share(tally: Tally) -> float:
    """Share of CPU time in native code, from the CPU time whose kind was seen."""
    known = tally.native_cpu_s + tally.python_cpu_s
    return tally.native_cpu_s / known if known > 0 else 0.0


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in values.items()}


def summarize(
    tally: Tally,
    *,
    target: str,
    exit_code: int,
    wall_s: float,
    cpu_s: float,
    cores: int,
    interval_s: float,
    source: str,
    main_pid: int,
) -> Profile:
    """Turn the sampler's running totals into a Profile."""
    seconds: dict[str, float] = {c.value: 0.0 for c in Category}
    per_process: dict[int, dict[str, float]] = {}
    threads: list[ThreadProfile] = []
    for totals in tally.threads.values():
        by_cat = {c.value: s for c, s in totals.by_category().items()}
        proc = per_process.setdefault(totals.pid, {c.value: 0.0 for c in Category})
        for name, value in by_cat.items():
            seconds[name] += value
            proc[name] += value
        thread = ThreadProfile(totals.name, totals.native_id, totals.pid, by_cat)
        if thread.active_s > 0 or by_cat["idle"] > 0:
            threads.append(thread)
    threads.sort(key=lambda t: (t.pid != main_pid, -t.active_s))
    active = active_of(seconds) or 1.0
    sites = [
        SiteProfile(site.file, site.line, site.function, cat.value, secs, secs / active)
        for (site, cat), secs in tally.sites.items()
        if cat is not Category.IDLE and secs / active >= 0.001
    ]
    sites.sort(key=lambda s: -s.seconds)
    processes = [ProcessProfile(main_pid, "main", cpu_s, per_process.get(main_pid, {}))]
    for pid, proc_seconds in per_process.items():
        if pid != main_pid:
            processes.append(
                ProcessProfile(pid, "worker", tally.worker_cpu_s.get(pid, 0.0), proc_seconds)
            )
    notes: list[str] = []
    if source == "wchan":
        notes.append(
            "syscalls were not readable: waits were classified from wchan and Python stacks"
        )
    elif source == "stack":
        notes.append(
            "kernel thread states (/proc wchan, syscall) were not readable: "
            "waits were classified from Python stacks only"
        )
    active = active_of(seconds)
    if tally.runqueue_s > 0.1 * (active + tally.runqueue_s):
        notes.append(
            f"the machine was busy: runnable threads waited {tally.runqueue_s:.2f} s for a "
            "free core, left out of the breakdown"
        )
    return Profile(
        target=target,
        exit_code=exit_code,
        wall_s=wall_s,
        cpu_s=cpu_s + sum(tally.worker_cpu_s.values()),
        cores=cores,
        samples=tally.readings,
        interval_s=interval_s,
        seconds=seconds,
        native_cpu_s=seconds["cpu"] * _native_share(tally),
        serial_s=tally.serial_s,
        observer_s=tally.observer_s,
        runqueue_s=tally.runqueue_s,
        threads=threads,
        sites=sites[:MAX_SITES],
        processes=processes,
        source=source,
        notes=notes,
    )
