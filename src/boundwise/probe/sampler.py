"""The sampler: a thread that reads every thread's kernel state and Python stack.

Each round it reads, for every thread, the nanoseconds it spent on a CPU so far
(exact, from the kernel) and, for threads that ran since the last round, what they
are blocked in and which line of the program they are at. CPU time is therefore
measured, not inferred from samples; only the *reason* for time off the CPU is
sampled, and it is weighted by the time it stands for.

The observer effect: the sampler needs the GIL while it reads, so Python threads
wait for it *because of the sampler*. That wait is not contention: it is taken off
their GIL time (and reported as ``observer_s``). Threads whose CPU clock advances
while the sampler holds the GIL are running native code that released the GIL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from .classify import Classifier, running_category
from .frames import Site, user_site
from .kernel import (
    TICK_S,
    KernelState,
    TaskFiles,
    mapping_in,
    runtime_region,
    source_available,
)
from .tally import Tally, ThreadTotals
from .taxonomy import Category

DEFAULT_INTERVAL = 0.005
MAX_DUTY = 0.03
"""The sampler holds the GIL at most this share of the time: with many threads it
samples less often rather than slowing the program."""
MAX_BACKOFF = 8
"""While Python code runs, the interval grows up to this many times (40 ms)."""
_NATIVE_WINDOW_NS = 20_000
HOUSEKEEPING_EVERY = 0.1
FLUSH_EVERY = 0.25
SAMPLER_THREAD_NAME = "boundwise-samp"
"""The sampler's thread name as the kernel keeps it (15 characters at most)."""
"""Seconds between looks for new threads and worker processes."""


@dataclass(slots=True)
class _Track:
    """What the sampler remembers of one thread between rounds."""

    pid: int
    tid: int
    files: TaskFiles | None
    totals: ThreadTotals
    ident: int | None = None
    worker_region: tuple[int, int] | None = None
    run_ns: int = -1
    delay_ns: int = 0
    category: Category = Category.OTHER
    """What it was doing at the last reading (``cpu`` when on a CPU)."""
    last_wait: Category = Category.OTHER
    """The last thing it was seen waiting on: the likely cause of time off the CPU
    in an interval that ends with it running."""
    site: Site | None = None
    cpu_site: Site | None = None
    wait_site: Site | None = None
    """Where it last waited: time off the CPU in an interval that ends running."""
    """Where the CPU time of the interval that ends now was spent."""
    cpu_as: Category = Category.CPU
    """Where its CPU goes at this reading: ``disk`` inside a file-system call (for sites)."""
    system_ticks: int = -1
    """Kernel CPU ticks when first seen (-1: not read yet)."""
    cpu_kind: str = ""
    """``native`` (runs while we hold the GIL), ``python`` (waits for the GIL), or unknown."""
    alive: bool = True
    ended: bool = False
    """Its last interval is accounted."""
    fresh: bool = False
    """Started while sampling: the CPU it used before we first saw it counts."""


@dataclass(slots=True)
class _Worker:
    pid: int
    region: tuple[int, int] | None
    tracks: dict[int, _Track] = field(default_factory=dict)
    skipped: set[int] = field(default_factory=set)


class Sampler:
    """Samples every thread of this process, and of its worker processes."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        source: str | None = None,
        find_workers: bool = True,
    ) -> None:
        if interval <= 0:
            raise ValueError("the sampling interval must be positive")
        self.interval = interval
        self.source = source or source_available()
        region = runtime_region() if self.source == "syscall" else None
        self.gil_region = region
        self.classifier = Classifier(region)
        self.tally = Tally()
        self.pid = os.getpid()
        self._tracks: dict[int, _Track] = {}
        self._workers: dict[int, _Worker] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_tid = 0
        self._known_idents: set[int] = set()
        """Python threads already tracked (and the sampler itself)."""
        self._native_candidates: set[int] = set()
        self._present_at_start: set[int] = set()
        """Threads threading did not list when sampling began."""
        self._last_housekeeping = 0.0
        self._hold_ns = 0
        self._backoff = 1
        self._lock_seen = False
        self._cpu_clock: Callable[[int], int] | None = _thread_cpu_clock()
        self.error: BaseException | None = None
        self.find_workers = find_workers
        self.on_flush: Callable[[], None] | None = None
        """Called every ``FLUSH_EVERY`` seconds (a worker hands its sites over)."""
        self._last_flush = 0.0

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="boundwise-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Tally:
        """Stop sampling (after one last round) and return the totals."""
        self._stop.set()  # wakes the sampler at once, even in a long pause
        if self._thread is not None:
            self._thread.join()
        for track in [*self._tracks.values(), *self._all_worker_tracks()]:
            self._read_system_time(track)
            if track.files is not None:
                track.files.close()
        return self.tally

    def _run(self) -> None:
        _name_this_thread(SAMPLER_THREAD_NAME)
        self._own_tid = threading.get_native_id()
        self._known_idents.add(threading.get_ident())
        prev = time.perf_counter_ns()
        try:
            self._housekeeping()
            self._round(prev, first=True)
            while not self._stop.is_set():
                # Sleep the interval; longer when rounds get expensive (many threads),
                # and while Python code keeps the GIL busy: each round then costs
                # the program a GIL hand-off, and CPU time is exact without samples.
                pause = max(self.interval * self._backoff, self._hold_ns / 1e9 * (1 / MAX_DUTY - 1))
                if self._stop.wait(pause):
                    break
                now = time.perf_counter()
                if now - self._last_housekeeping >= HOUSEKEEPING_EVERY:
                    self._housekeeping()
                if self.on_flush is not None and now - self._last_flush >= FLUSH_EVERY:
                    self._last_flush = now
                    self.on_flush()
                start = time.perf_counter_ns()
                self._round(start - prev)
                prev = start
            start = time.perf_counter_ns()
            self._round(start - prev)
        except BaseException as exc:  # never take the program down with us
            self.error = exc

    # -- discovering threads and workers -------------------------------------

    def _housekeeping(self) -> None:
        self._last_housekeeping = time.perf_counter()
        self._python_threads()
        if self.source != "stack":
            self._native_threads()
            if self.find_workers:
                self._find_workers()
            for track in [*self._tracks.values(), *self._all_worker_tracks()]:
                self._read_system_time(track)

    def _read_system_time(self, track: _Track) -> None:
        """Kernel CPU time since first seen (ticks: read now and then, not every round)."""
        if track.files is None or not track.alive:
            return
        ticks = track.files.system_ticks()
        if ticks is None:
            return
        if track.system_ticks < 0:
            track.system_ticks = 0 if track.fresh else ticks
        track.totals.system_s = (ticks - track.system_ticks) * TICK_S

    def _python_threads(self) -> None:
        # threading._active (ident -> Thread), without enumerate()'s lock and copy.
        active: dict[int, threading.Thread] = getattr(threading, "_active", {})
        for thread in list(active.values()):
            tid = thread.native_id
            if tid is None or tid == self._own_tid or thread.ident is None:
                continue
            track = self._tracks.get(tid)
            if track is None:
                files = (
                    TaskFiles(self.pid, tid, self.source == "syscall")
                    if self.source != "stack"
                    else None
                )
                totals = self.tally.thread(self.pid, tid, thread.name)
                # Off its CPU before we saw it wait: a Python thread wanting the GIL.
                track = _Track(
                    self.pid, tid, files, totals, ident=thread.ident, last_wait=Category.GIL
                )
                track.fresh = self.tally.rounds > 0
                self._tracks[tid] = track
            track.ident = thread.ident
            track.totals.name = thread.name
            self._known_idents.add(thread.ident)

    def _native_threads(self) -> None:
        """Threads started outside ``threading`` (by C libraries): kernel state only."""
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{self.pid}/task")]
        except OSError:
            return
        unknown = {tid for tid in tids if tid not in self._tracks and tid != self._own_tid}
        if self.tally.rounds == 0:
            self._present_at_start = unknown
        # A thread seen once may be a Python thread that threading has not listed
        # yet: wait for a second look before calling it native.
        candidates, self._native_candidates = unknown & self._native_candidates, unknown
        for tid in candidates:
            files = TaskFiles(self.pid, tid, self.source == "syscall")
            name = files.comm() or f"thread-{tid}"
            totals = self.tally.thread(self.pid, tid, f"{name} (native)")
            # Its CPU since it started counts only if it started while we measured.
            fresh = tid not in self._present_at_start
            self._tracks[tid] = _Track(self.pid, tid, files, totals, fresh=fresh)

    def _find_workers(self) -> None:
        """Worker processes of ``multiprocessing`` (pools, ProcessPoolExecutor).

        Only processes that run our own Python code are measured with us; an
        external command (``subprocess.run``) stays outside, and waiting for it is
        ``subprocess`` time.
        """
        mp = sys.modules.get("multiprocessing.process")
        children = getattr(mp, "_children", ()) if mp is not None else ()
        pids: set[int] = set()
        for proc in list(children):
            popen = getattr(proc, "_popen", None)
            pid = getattr(popen, "pid", None)
            if isinstance(pid, int) and getattr(popen, "returncode", None) is None:
                pids.add(pid)
        for pid in pids - self._workers.keys():
            region = mapping_in(pid, self.gil_region) if self.gil_region else None
            self._workers[pid] = _Worker(pid, region)
        for pid, worker in self._workers.items():
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                continue
            for tid in tids:
                if tid not in worker.tracks and tid not in worker.skipped:
                    files = TaskFiles(pid, tid, self.source == "syscall")
                    if files.comm() == SAMPLER_THREAD_NAME:
                        files.close()
                        worker.skipped.add(tid)
                        continue
                    totals = self.tally.thread(
                        pid, tid, files.comm() or f"worker-{pid}", worker=True
                    )
                    worker.tracks[tid] = _Track(
                        pid,
                        tid,
                        files,
                        totals,
                        worker_region=worker.region,
                        fresh=True,
                        last_wait=Category.IDLE,  # a worker off its CPU waits for work
                    )

    def _all_worker_tracks(self) -> list[_Track]:
        return [t for w in self._workers.values() for t in w.tracks.values()]

    # -- one round -----------------------------------------------------------

    def _round(self, elapsed_ns: int, first: bool = False) -> None:
        """Read every thread once and account the time since the last round."""
        t_a = time.perf_counter_ns()
        frames = sys._current_frames()
        if not frames.keys() <= self._known_idents:
            self._python_threads()  # short-lived threads are seen from their first round
        tracks = [t for t in self._tracks.values() if t.alive]
        # CPU clocks first, at the moment we took the GIL.
        ran = [self._read_cpu(t) for t in tracks]
        states: list[KernelState | None] = []
        for track, moved in zip(tracks, ran, strict=True):
            frame = frames.get(track.ident) if track.ident is not None else None
            states.append(self._observe(track, frame, moved) if moved or first else None)
        for track, state in zip(tracks, states, strict=True):
            if state is not None and state.running and track.ident is not None:
                # On a CPU or runnable while we hold the GIL: native code if its
                # clock runs on; if it stands still, undecided (a native thread
                # preempted, or Python code on its way to the GIL).
                track.cpu_kind = "native" if self._runs_without_gil(track) else ""
        # A lone thread waiting for the GIL waits for us, the sampler: nobody else
        # wanted it. That is the observer effect, not contention.
        waiting = sum(1 for t in tracks if t.ident is not None and _wants_gil(t))
        self._backoff = min(self._backoff * 2, MAX_BACKOFF) if waiting else 1
        # Work done while other threads queue on a lock is taken to be under it.
        lock_now = any(t.category is Category.LOCK for t in tracks)
        contended, self._lock_seen = lock_now or self._lock_seen, lock_now
        seconds = 0.0 if first else elapsed_ns / 1e9
        for track, moved in zip(tracks, ran, strict=True):
            self._account(track, seconds, moved, lone=waiting <= 1, contended=contended)
        self._workers_round(seconds)
        for track in tracks:
            if not track.alive:  # forget ended threads: memory stays bounded
                self._forget(track)
        self.tally.rounds += 1
        self.tally.readings += len(tracks)
        self._hold_ns = time.perf_counter_ns() - t_a

    def _forget(self, track: _Track) -> None:
        if track.files is not None:
            track.files.close()
        self._tracks.pop(track.tid, None)
        if track.ident is not None:
            self._known_idents.discard(track.ident)

    def _runs_without_gil(self, track: _Track) -> bool:
        """Whether a thread found running keeps running while we hold the GIL.

        Its own CPU clock (exact, unlike schedstat, which lags by up to a tick)
        must advance for most of a short window; Python code cannot run then.
        """
        if self._cpu_clock is None or track.ident is None:
            return False
        try:
            start = self._cpu_clock(track.ident)
            t0 = time.perf_counter_ns()
            while time.perf_counter_ns() - t0 < _NATIVE_WINDOW_NS:
                pass
            ran = self._cpu_clock(track.ident) - start
            return ran * 2 >= time.perf_counter_ns() - t0
        except OSError:
            return False

    def _read_cpu(self, track: _Track) -> tuple[int, int] | None:
        """New CPU counters of a thread, or None when it has not run since last round."""
        if track.files is not None:
            cpu = track.files.cpu_ns()
        elif self._cpu_clock is not None and track.ident is not None:
            try:
                cpu = (self._cpu_clock(track.ident), 0)
            except OSError:
                cpu = None
        else:
            cpu = (track.run_ns + 1, 0)  # no clock: treat as moved, sample every round
        if cpu is None:
            track.alive = False
            return None
        if cpu[0] == track.run_ns and cpu[1] == track.delay_ns:
            return None
        return cpu

    def _observe(self, track: _Track, frame: FrameType | None, moved: object) -> KernelState | None:
        """Read what a thread that ran since the last round is doing now."""
        if track.files is not None:
            state = track.files.state()
            if state is None:
                track.alive = False
                return None
        else:
            state = None
        was_running = track.category in (Category.CPU, Category.GIL)
        previous_site = track.site
        if state is not None and state.running:
            track.category = Category.CPU
            track.cpu_as = running_category(frame)
        else:
            track.cpu_as = Category.CPU
            track.category, _ = self.classifier.classify(state, frame, track.tid)
            if track.category not in (Category.CPU, Category.GIL):
                track.last_wait = track.category
        track.cpu_kind = "python" if track.category is Category.GIL else ""
        track.site = user_site(frame) if frame is not None else None
        # The CPU time of an interval that ends in a wait was spent before the
        # wait began: where the thread was running at the last reading.
        running_now = track.category in (Category.CPU, Category.GIL)
        track.cpu_site = previous_site if was_running and not running_now else track.site
        if not running_now:
            track.wait_site = track.site
        return state if state is not None else KernelState(running=track.category is Category.CPU)

    def _account(
        self,
        track: _Track,
        seconds: float,
        moved: tuple[int, int] | None,
        lone: bool = False,
        contended: bool = False,
    ) -> None:
        """Add one interval of a thread: CPU as measured, the rest to what it waited on."""
        if not track.alive:
            if not track.ended:
                # It ended during the interval: on average, halfway through it.
                self._account_off(track, seconds / 2, track.category, lone)
                track.ended = True
            return
        if moved is None and track.run_ns < 0:
            return
        tally = self.tally
        cpu = queued = 0.0
        if moved is not None:
            run, delay = moved
            if track.run_ns < 0:
                track.run_ns, track.delay_ns = run, delay
                if track.fresh:
                    # It started during the interval: on average, halfway through it.
                    started, queued = run / 1e9, delay / 1e9
                    track.totals.add(Category.CPU, started)
                    tally.runqueue_s += queued
                    off = max(0.0, seconds / 2 - started - queued)
                    self._account_off(track, off, track.category, lone)
                return
            cpu = min(seconds, (run - track.run_ns) / 1e9)
            # Runnable but waiting for a core: the machine was busy. Neither
            # running nor waiting on anything of the program's own, so left out.
            queued = min(seconds - cpu, (delay - track.delay_ns) / 1e9)
            tally.runqueue_s += queued
            track.run_ns, track.delay_ns = run, delay
        category = self._account_off(track, max(0.0, seconds - cpu - queued), track.category, lone)
        totals = track.totals
        totals.add(Category.CPU, cpu)
        if track.cpu_as is not Category.CPU:
            pass  # kernel work inside a file-system call: neither Python nor native code
        elif track.cpu_kind == "native":
            tally.native_cpu_s += cpu
        elif track.cpu_kind == "python":
            tally.python_cpu_s += cpu
        if contended and category not in (Category.LOCK, Category.IDLE):
            tally.serial_s += seconds
        tally.add_site(track.cpu_site, track.cpu_as, cpu)

    def _account_off(self, track: _Track, off: float, category: Category, lone: bool) -> Category:
        """Add time a thread spent off the CPU to what it was waiting on."""
        site = track.site
        if category is Category.CPU:
            category, site = track.last_wait, track.wait_site
            if category is Category.OTHER and track.ident is not None:
                category = Category.GIL  # a Python thread not yet seen waiting
        if category is Category.GIL:
            observed = min(off, self._hold_ns / 1e9)
            off -= observed
            if lone:
                # Nobody else wanted the GIL: it waited for the sampler alone. The
                # rest of its time off the CPU went to what it last waited on.
                category = track.last_wait
                if category in (Category.GIL, Category.OTHER):
                    observed, off = observed + off, 0.0
            self.tally.observer_s += observed
        track.totals.add(category, off)
        self.tally.add_site(site, category, off)
        return category

    def _workers_round(self, seconds: float) -> None:
        for pid in list(self._workers):
            worker = self._workers[pid]
            live = [t for t in worker.tracks.values() if t.alive and t.files is not None]
            moves = [self._read_cpu(t) for t in live]
            for track, moved in zip(live, moves, strict=True):
                if track.alive and (moved is not None or track.run_ns < 0):
                    self._observe_worker(track)
            # The worker's own sampler (see workers.py) holds its GIL now and then.
            waiting = sum(1 for t in live if t.alive and t.category is Category.GIL)
            for track, moved in zip(live, moves, strict=True):
                self._account(track, seconds, moved, lone=waiting <= 1)
            self.tally.worker_cpu_s[pid] = sum(
                t.run_ns / 1e9 for t in worker.tracks.values() if t.run_ns > 0
            )
            if not any(t.alive for t in live):
                for track in worker.tracks.values():
                    if track.files is not None:
                        track.files.close()
                del self._workers[pid]

    def _observe_worker(self, track: _Track) -> None:
        assert track.files is not None
        state = track.files.state()
        if state is None:
            track.alive = False
            return
        if state.running:
            track.category = Category.CPU
            return
        lo, hi = track.worker_region or (0, 0)
        if state.syscall == "futex":
            # No stack to look at in another process: a futex on its GIL is GIL
            # contention among its threads; any other futex is a worker parked
            # until its parent hands it work.
            track.category = Category.GIL if lo <= state.arg0 < hi else Category.IDLE
            track.last_wait = track.category
            return
        category, _ = self.classifier.classify(state, None, track.tid)
        if category is Category.SUBPROCESS and state.fd_kind == "pipe":
            category = Category.IDLE  # reading the pipe its tasks arrive on
        track.category = track.last_wait = category


def _name_this_thread(name: str) -> None:
    """Name the thread for the kernel too (``top -H``, and our parent's sampler)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _wants_gil(track: _Track) -> bool:
    """Python code waiting to run: blocked on the GIL, or runnable but not running
    native code while the sampler holds the GIL."""
    if track.category is Category.GIL:
        return True
    return track.category is Category.CPU and track.cpu_kind != "native"


def _thread_cpu_clock() -> Callable[[int], int] | None:
    getclock = getattr(time, "pthread_getcpuclockid", None)
    if getclock is None:
        return None

    def read(ident: int) -> int:
        return time.clock_gettime_ns(getclock(ident))

    return read
