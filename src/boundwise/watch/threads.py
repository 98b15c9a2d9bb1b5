"""Sample the threads that run a server's sync work: what their waiting is made of.

A sync (``def``) endpoint runs in a worker thread: its CPU time is measured exactly
with the thread's own clock, and this sampler splits the rest (the waiting) by kind,
from the kernel state and stack of each worker while it runs a request. It samples
only while some thread is being tracked, so an app without sync work pays nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from boundwise.probe.classify import Classifier
from boundwise.probe.kernel import TaskFiles, runtime_region, source_available
from boundwise.probe.taxonomy import Category

# A thread running Python is found waiting for the GIL whenever the sampler itself holds
# it: such samples are counted as ``gil`` and read as "busy" (running or wanting to run);
# the thread clock tells how much of that really ran.


@dataclass(slots=True)
class _Tracked:
    ident: int
    task: TaskFiles | None
    waits: Counter[Category]


class ThreadSampler:
    """Samples tracked threads every ``interval`` seconds from a daemon thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self._tracked: dict[int, _Tracked] = {}
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._thread: threading.Thread | None = None
        self._classifier = Classifier(runtime_region())
        self._use_kernel = source_available() != "stack"

    @contextmanager
    def track(self) -> Iterator[Counter[Category]]:
        """Track the calling thread while the block runs; yields its wait samples."""
        native = threading.get_native_id()
        task = TaskFiles(os.getpid(), native) if self._use_kernel else None
        entry = _Tracked(threading.get_ident(), task, Counter())
        with self._lock:
            self._tracked[native] = entry
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="boundwise-thread-sampler", daemon=True
                )
                self._thread.start()
        self._work.set()
        try:
            yield entry.waits
        finally:
            with self._lock:
                self._tracked.pop(native, None)
                if not self._tracked:
                    self._work.clear()
            if task is not None:
                task.close()

    def _run(self) -> None:
        while True:
            self._work.wait()
            with self._lock:
                tracked = list(self._tracked.values())
            if tracked:
                frames = sys._current_frames()
                for entry in tracked:
                    self._sample(entry, frames.get(entry.ident))
            time.sleep(self.interval)

    def _sample(self, entry: _Tracked, frame: object) -> None:
        try:
            state = entry.task.state() if entry.task is not None else None
            if state is not None and state.running:
                entry.waits[Category.CPU] += 1
                return
            category, _ = (
                self._classifier.classify_stack(frame, entry.ident)  # type: ignore[arg-type]
                if state is None
                else self._classifier.classify(state, frame, entry.ident)  # type: ignore[arg-type]
            )
        except Exception:  # a thread that just ended, a /proc file that went away
            return
        if category is not Category.IDLE:
            entry.waits[category] += 1


_shared: ThreadSampler | None = None


def shared_sampler() -> ThreadSampler:
    """The process-wide sampler (one thread, however many middlewares)."""
    global _shared
    if _shared is None:
        _shared = ThreadSampler()
    return _shared
