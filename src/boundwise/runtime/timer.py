"""Deadlines: one thread fires every ``timeout=`` of a runtime.

A heap of deadlines and a single thread, started on first use, instead of a
``threading.Timer`` (a thread) per call.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

from boundwise.probe.clock import wall


class Deadlines:
    """Run callbacks at given times on one background thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    def at(self, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, ``delay`` seconds from now."""
        when = wall() + delay
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (when, next(self._seq), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][0] == when:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap:
                        delay = self._heap[0][0] - wall()
                        if delay <= 0:
                            break
                        self._cond.wait(delay)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._heap)
            callback()

    def close(self) -> None:
        """Drop pending deadlines and stop the thread."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
