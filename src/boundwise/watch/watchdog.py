"""The event-loop watchdog: notice when a loop stops getting back to its own
scheduling, and say where it was stuck and on what.

How it works, and why it costs the loop almost nothing:

* On the loop thread, a heartbeat callback re-arms itself with ``loop.call_later``
  every ``threshold / 4``. It only reads the clock and stores two numbers. It uses
  nothing but the public loop API, so it works with asyncio and uvloop alike.
* A daemon thread checks the heartbeat. Once it is overdue by half the threshold, the
  thread samples the loop thread every few milliseconds (Python stack, kernel state,
  CPU clock) until the heartbeat comes back.
* When the heartbeat comes back later than ``threshold`` after it was due, that is a
  stall. Its duration is the heartbeat's lateness: a lower bound on the time the loop
  was stuck, short of it by at most ``threshold / 4``. So a block shorter than the
  threshold is never reported.

The samples name the program's own line that blocked (the most-sampled one), the call
in progress there, and the kind of block (the probe's wait taxonomy). The sampler holds
the GIL while it reads the loop thread, so a loop thread running Python is found
waiting for the GIL: because of us. Such samples count as ``cpu``, and the loop
thread's CPU clock over the stall decides between CPU work and a blocking call.
"""

from __future__ import annotations

import asyncio
import dis
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from boundwise.probe import frames as _frames
from boundwise.probe.classify import Classifier
from boundwise.probe.clock import wall_ns
from boundwise.probe.frames import Site, callee_name, is_user_code, stack, user_site
from boundwise.probe.kernel import TaskFiles, runtime_region, source_available
from boundwise.probe.taxonomy import Category

from .advice import advice_for
from .stall import Frame, Stall

__all__ = ["Stall", "Watchdog", "watch"]

logger = logging.getLogger("boundwise.watch")

StallCallback = Callable[[Stall], object]

# boundwise's own frames (the pytest plugin's wrapper, the middleware) are left out
# of the stacks it reports.
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(slots=True)
class _Sample:
    category: Category
    detail: str
    site: Site | None
    call: str
    stack: list[Site]
    context: str
    returned: tuple[Site, str] | None = None
    """The user frame's previous call (its site and name): the one that just returned
    when this sample had to wait for the GIL."""
    weight: int = 1
    """Nanoseconds this sample stands for: since the previous one. A sample that had
    to wait for the GIL (the loop thread ran C code holding it, ``json.loads`` on a
    big payload) is taken just as that call returns, and stands for all of it."""


@dataclass(slots=True)
class _Window:
    """What the sampler saw while the heartbeat was overdue."""

    start_ns: int
    end_ns: int
    samples: list[_Sample]
    cpu_fraction: float | None


class Watchdog:
    """Watches one event loop for stalls longer than ``threshold`` seconds.

    ``on_stall`` is called with each :class:`Stall`, from the watchdog thread (keep
    it short; it must not touch the loop). Stalls are also kept in :attr:`stalls`
    (the latest ``max_stalls``) and, with ``log=True``, logged as warnings on the
    ``boundwise.watch`` logger. ``context`` is called at each sample to label what
    the loop is running (an endpoint, a test); by default, the asyncio task that runs.
    """

    def __init__(
        self,
        threshold: float = 0.1,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        on_stall: StallCallback | None = None,
        log: bool = True,
        context: Callable[[], str] | None = None,
        split_contexts: bool = True,
        sample_interval: float | None = None,
        max_stalls: int = 1000,
    ) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.loop = loop
        self.on_stall = on_stall
        self.log = log
        self.context = context
        self.split_contexts = split_contexts
        self.stalls: list[Stall] = []
        self.stall_count = 0
        self.max_stalls = max_stalls
        self._threshold_ns = int(threshold * 1e9)
        # The heartbeat period bounds how much a stall's duration is underestimated.
        self._interval = min(max(threshold / 4, 0.002), 0.25)
        self._interval_ns = int(self._interval * 1e9)
        self._sample_interval = sample_interval or min(max(threshold / 20, 0.002), 0.02)
        # Heartbeat state: written on the loop thread, read by the watchdog thread.
        self._due_ns = 0
        self._beats = 0
        self._skip_next = False
        self._late: deque[tuple[int, int]] = deque()
        self._handle: asyncio.TimerHandle | None = None
        # Watchdog thread state.
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._paused = False
        self._windows: deque[_Window] = deque(maxlen=8)
        self._ident = 0
        self._native_id = 0
        self._task: TaskFiles | None = None
        self._classifier = Classifier(_facts().gil_region)
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Watchdog:
        """Start watching. From the loop's own thread the heartbeat starts at once;
        from another thread it starts on the loop's next iteration."""
        if self._thread is not None:
            return self
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
        self._stopping = False
        self._due_ns = wall_ns() + self._interval_ns
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._attach()
        else:
            self._skip_next = True
            loop.call_soon_threadsafe(self._attach)
        self._thread = threading.Thread(target=self._run, name="boundwise-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Stall]:
        """Stop watching; returns the stalls seen. From the loop thread, a stall still
        in progress (the loop was stuck right up to this call) is counted too."""
        if self._thread is None:
            return self.stalls
        if threading.get_ident() == self._ident:
            self._check_now()
        handle, self._handle = self._handle, None
        if handle is not None:
            if threading.get_ident() == self._ident:
                handle.cancel()
            elif self.loop is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(handle.cancel)
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        if self._task is not None:
            self._task.close()
            self._task = None
        return self.stalls

    def pause(self) -> None:
        """The loop stops running for a while (between ``run_until_complete`` calls):
        time it spends not running is not a stall. Call from the loop thread."""
        self._paused = True
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()

    def resume(self) -> None:
        """The loop runs again. Call from the loop thread."""
        if not self._paused:
            return
        self._paused = False
        self._beat(count=False)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Watchdog:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    # -- loop thread ----------------------------------------------------------------

    def _attach(self) -> None:
        self._ident = threading.get_ident()
        self._native_id = threading.get_native_id()
        if _facts().source != "stack":
            self._task = TaskFiles(os.getpid(), self._native_id)
        self._beat(count=False)

    def _beat(self, count: bool = True) -> None:
        """The heartbeat: runs on the loop thread, costs two clock reads."""
        now = wall_ns()
        if count and not self._skip_next and now - self._due_ns > self._threshold_ns:
            self._late.append((self._due_ns, now))
            self._wake.set()
        self._skip_next = False
        self._due_ns = now + self._interval_ns
        self._beats += 1
        if not self._stopping and not self._paused and self.loop is not None:
            self._handle = self.loop.call_later(self._interval, self._beat)

    def _check_now(self) -> None:
        """A stall still in progress when watching ends on the loop thread."""
        now = wall_ns()
        if not self._paused and not self._skip_next and now - self._due_ns > self._threshold_ns:
            self._late.append((self._due_ns, now))
            self._beats += 1

    # -- watchdog thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                before = wall_ns()
                expected = before + self._interval_ns
                cpu_before = self._loop_cpu_ns() if self._ident else None
                self._wake.wait(self._interval)
                self._wake.clear()
                self._report_late()
                loop = self.loop
                if loop is None or loop.is_closed():
                    break
                if self._paused or not self._ident:
                    continue
                if not loop.is_running():
                    self._skip_next = True  # the time it spends stopped is not a stall
                    continue
                if wall_ns() - self._due_ns > self._threshold_ns // 2:
                    self._sample_until_beat(expected, before, cpu_before)
            self._report_late()
        except Exception:  # the watchdog must never take the program down
            logger.exception("boundwise watchdog failed")

    def _sample_until_beat(self, expected: int, before: int, cpu_before: int | None) -> None:
        """Sample the loop thread until the heartbeat comes back. ``expected`` is when
        this thread should have woken: later than that, it was kept from the GIL."""
        beats = self._beats
        start = wall_ns()
        cpu0 = self._loop_cpu_ns()
        samples: list[_Sample] = []
        limit = 10_000  # about a minute of samples: a longer stall keeps its first ones
        previous = max(self._due_ns, start - self._interval_ns)
        cpu_prev, cpu_prev_at = cpu_before, before
        # Longer than this between samples, and the loop thread never let go of the GIL.
        held_ns = int((self._sample_interval + 4 * sys.getswitchinterval()) * 1e9)
        while self._beats == beats and not self._stopping and not self._paused:
            if len(samples) < limit:
                sample = self._sample()
                if sample is None:
                    break
                now = wall_ns()
                cpu_now = self._loop_cpu_ns()
                sample.weight = max(1, now - previous)
                # Kept from the GIL, and the loop thread was on a CPU all that time:
                # it ran native code holding the GIL (not a busy machine delaying us).
                held = (
                    now - expected > held_ns
                    and cpu_now is not None
                    and cpu_prev is not None
                    and cpu_now - cpu_prev > (now - cpu_prev_at) // 2
                )
                cpu_prev, cpu_prev_at = cpu_now, now
                if held and sample.returned is not None:
                    # The GIL was held all along: native code (json.loads on a big
                    # payload) that has just returned. Name it, not where it returned to.
                    site_, call_ = sample.returned
                    sample.site, sample.call, sample.category = site_, call_, Category.CPU
                    sample.detail = "native code holding the GIL"
                previous = now
                samples.append(sample)
            time.sleep(self._sample_interval)
        end = wall_ns()
        cpu1 = self._loop_cpu_ns()
        fraction = None
        if cpu0 is not None and cpu1 is not None and end > start:
            fraction = min(1.0, max(0.0, (cpu1 - cpu0) / (end - start)))
        with self._lock:
            self._windows.append(_Window(start, end, samples, fraction))
        self._report_late()

    def _loop_cpu_ns(self) -> int | None:
        """CPU time the loop thread used or was ready to use (on a run queue)."""
        if self._task is not None:
            got = self._task.cpu_ns()
            if got is not None:
                return got[0] + got[1]
        try:
            return time.clock_gettime_ns(time.pthread_getcpuclockid(self._ident))
        except (OSError, AttributeError, OverflowError):
            return None

    def _sample(self) -> _Sample | None:
        frame = sys._current_frames().get(self._ident)  # None: in native code only (uvloop)
        if frame is None and self._task is None:
            return None
        state = self._task.state() if self._task is not None else None
        if state is not None and state.running:
            category, detail = Category.CPU, "running"
        elif state is None:
            category, detail = self._classifier.classify_stack(frame, self._ident)
        else:
            category, detail = self._classifier.classify(state, frame, self._ident)
        # A GIL wait is kept as such here; the stall decides what it was (see below).
        if frame is None:
            return _Sample(category, detail, None, "", [], self._context(), None)
        site = user_site(frame)
        call = ""
        returned = None
        f: Any = frame
        while f is not None:
            if is_user_code(f.f_code):
                call = call_in(f)
                # Where native code that held the GIL returned to: in the user's frame
                # itself, or a frame it has just entered (the next call), it was the
                # user's previous call; deeper inside a call, it is that call.
                fresh = f is frame or (frame.f_back is f and frame.f_lasti <= 8)
                if fresh:
                    returned = _previous_call(f)
                elif site is not None:
                    returned = (site, call)
                break
            f = f.f_back
        if not call:
            call = call_in(frame)
        frames = [f for f in stack(frame) if not f.file.startswith(_OWN_DIR)]
        return _Sample(category, detail, site, call, frames, self._context(), returned)

    def _context(self) -> str:
        try:
            if self.context is None:
                return _task_label(self.loop)
            return self.context() or ""
        except Exception:
            return ""

    def _report_late(self) -> None:
        """Turn late heartbeats into stalls, with the samples taken meanwhile."""
        while self._late:
            due, arrival = self._late.popleft()
            with self._lock:
                window = next(
                    (w for w in self._windows if w.end_ns >= due and w.start_ns <= arrival), None
                )
                if window is not None:
                    self._windows.remove(window)
            split = self._threshold_ns if self.split_contexts else 0
            for stall in _split_by_context(due, arrival, window, split):
                self._record(stall)

    def _record(self, stall: Stall) -> None:
        self.stall_count += 1
        self.stalls.append(stall)
        if len(self.stalls) > self.max_stalls:
            del self.stalls[0]
        if self.log:
            logger.warning("%s", stall)
        if self.on_stall is not None:
            try:
                self.on_stall(stall)
            except Exception:
                logger.exception("boundwise on_stall callback failed")


def _task_label(loop: asyncio.AbstractEventLoop | None) -> str:
    """The task the loop runs now (``Task-3 handle``): read from another thread, it is
    a plain lookup in asyncio's registry of running tasks."""
    task = asyncio.current_task(loop) if loop is not None else None
    if task is None:
        return ""
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", "")
    return f"{task.get_name()} {name}".strip()


@dataclass(frozen=True, slots=True)
class _Facts:
    gil_region: tuple[int, int] | None
    source: str


_facts_cache: _Facts | None = None


def _facts() -> _Facts:
    """What this process's kernel exposes, found once (it costs a few milliseconds)."""
    global _facts_cache
    if _facts_cache is None:
        _facts_cache = _Facts(runtime_region(), source_available())
    return _facts_cache


def call_in(frame: FrameType) -> str:
    """The call a frame is in. On 3.11 a frame that called a *Python* function reports
    an ``f_lasti`` inside the CALL's inline cache, past the CALL itself, where
    ``callee_name`` finds nothing: take the nearest call just before it."""
    name = callee_name(frame)
    if name:
        return name
    calls = _frames._callee_cache.get(frame.f_code)  # filled by callee_name above
    if not calls:
        return ""
    lasti = frame.f_lasti
    before = [offset for offset in calls if lasti - 8 <= offset < lasti]  # 4 cache entries
    return calls[max(before)] if before else ""


def _previous_call(frame: FrameType) -> tuple[Site, str] | None:
    """The call before the one the frame is in (or before where it is)."""
    call_in(frame)  # fills the probe's cache of the code's calls
    calls = _frames._callee_cache.get(frame.f_code)
    if not calls:
        return None
    # On 3.11 a call is a PRECALL and a CALL a few bytes apart: one call site each.
    sites: list[tuple[int, int, str]] = []  # (first offset, last offset, name)
    for offset in sorted(calls):
        if sites and offset - sites[-1][1] <= 6 and calls[offset] == sites[-1][2]:
            sites[-1] = (sites[-1][0], offset, calls[offset])
        else:
            sites.append((offset, offset, calls[offset]))
    lasti = frame.f_lasti
    in_call = any(first <= lasti <= last + 8 for first, last, _ in sites)
    before = [site for site in sites if site[1] + 8 < lasti]
    if before and not in_call and _awaiting(frame):
        before.pop()  # that call made the awaitable being awaited now: it has not run yet
    if not before:
        return None
    offset, _, name = before[-1]
    line = next(
        (ln for start, end, ln in frame.f_code.co_lines() if start <= offset < end and ln), 0
    )
    if not line:
        return None
    return Site(frame.f_code.co_filename, line, frame.f_code.co_name), name


_AWAIT_OPS = frozenset(
    dis.opmap[name]
    for name in ("SEND", "YIELD_VALUE", "GET_AWAITABLE", "RESUME", "JUMP_BACKWARD_NO_INTERRUPT")
    if name in dis.opmap
)


def _awaiting(frame: FrameType) -> bool:
    code = frame.f_code.co_code
    return 0 <= frame.f_lasti < len(code) and code[frame.f_lasti] in _AWAIT_OPS


def _split_by_context(
    due_ns: int, arrival_ns: int, window: _Window | None, threshold_ns: int
) -> list[Stall]:
    """One stall per context whose share of the stall is over the threshold (0: no
    splitting). Samples of smaller shares, or unlabelled, go to the largest share."""
    if not threshold_ns or window is None or not window.samples:
        return [_build_stall(due_ns, arrival_ns, window)]
    groups: dict[str, list[_Sample]] = {}
    for sample in window.samples:
        groups.setdefault(sample.context, []).append(sample)
    total = sum(s.weight for s in window.samples)
    duration = arrival_ns - due_ns

    def share(group: list[_Sample]) -> int:
        return int(duration * sum(s.weight for s in group) / total)

    big = {c: g for c, g in groups.items() if c and share(g) > threshold_ns}
    if len(big) < 2:
        return [_build_stall(due_ns, arrival_ns, window)]
    heaviest = max(big.values(), key=share)
    for context, group in groups.items():
        if context not in big:
            heaviest.extend(group)
    stalls = []
    start = due_ns
    for group in big.values():
        end = start + share(group)
        # The loop thread's CPU clock covers all groups: each one's kind of block
        # comes from its own samples.
        part = _Window(window.start_ns, window.end_ns, group, None)
        stalls.append(_build_stall(start, end, part))
        start = end
    return stalls


def _build_stall(due_ns: int, arrival_ns: int, window: _Window | None) -> Stall:
    duration = (arrival_ns - due_ns) / 1e9
    started = time.time() - (wall_ns() - due_ns) / 1e9
    if window is None or not window.samples:
        return Stall(
            duration_s=duration,
            category=Category.OTHER,
            advice="the stall ended before it could be sampled; lower the threshold to see it",
            cpu_fraction=window.cpu_fraction if window else None,
            started_at=started,
        )
    samples = window.samples
    fraction = window.cpu_fraction
    # We hold the GIL while sampling, so a loop thread running Python is found waiting
    # for it: that is CPU work. Only when the loop thread's CPU clock barely moved was
    # the GIL really held by another thread all along.
    gil_is = Category.GIL if fraction is not None and fraction < 0.3 else Category.CPU
    for s in samples:
        if s.category is Category.GIL:
            s.category = gil_is
    counts: Counter[Category] = Counter()
    for s in samples:
        counts[s.category] += s.weight
    total = sum(counts.values())
    blocking = Counter({c: n for c, n in counts.items() if c is not Category.CPU})
    if not blocking or (fraction is not None and fraction >= 0.5):
        category = Category.CPU
    else:
        category = blocking.most_common(1)[0][0]
    in_category = [s for s in samples if s.category is category] or samples
    site = _heaviest([s for s in in_category if s.site is not None], lambda s: s.site)
    chosen = [s for s in in_category if s.site == site] or in_category
    # Without a line of the program's own, the innermost call is the event loop's or
    # the server's plumbing: naming it would mislead.
    call = _heaviest(chosen, lambda s: s.call) if site is not None else ""
    detail = _heaviest(chosen, lambda s: s.detail)
    context = _heaviest([s for s in samples if s.context], lambda s: s.context)
    last = chosen[-1]
    return Stall(
        duration_s=duration,
        category=category,
        file=site.file if site else "",
        line=site.line if site else 0,
        function=site.function if site else "",
        call=call,
        advice=advice_for(call, category),
        cpu_fraction=fraction,
        samples=len(samples),
        breakdown={str(c): round(n / total, 3) for c, n in counts.most_common()},
        detail=detail,
        stack=[Frame.of(s) for s in last.stack],
        started_at=started,
        context=context or "",
    )


def _heaviest(samples: list[_Sample], key: Callable[[_Sample], Any]) -> Any:
    """The value of ``key`` that the samples stand for the most time with."""
    weights: Counter[Any] = Counter()
    for s in samples:
        weights[key(s)] += s.weight
    return weights.most_common(1)[0][0] if weights else None


def watch(
    threshold: float = 0.1,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    on_stall: StallCallback | None = None,
    log: bool = True,
) -> Watchdog:
    """Watch the running event loop (or ``loop``) for stalls longer than ``threshold``.

    >>> async def main():
    ...     with boundwise.watch(threshold=0.05) as w:
    ...         await serve()
    ...     print(w.stalls)
    """
    return Watchdog(threshold, loop=loop, on_stall=on_stall, log=log)
