"""The thread route: a bounded pool of worker threads fed by one queue.

Threads are started on demand, up to ``size``, and only when no idle thread is
waiting, so a burst of quick calls does not spawn threads it does not need.
Jobs are plain callables: no per-call future or work-item object of its own.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable

from boundwise.runtime.sched import forget_thread

Job = Callable[[], None]


class ThreadRoute:
    """Run jobs on at most ``size`` threads named ``<name>-N``."""

    def __init__(self, size: int, name: str = "boundwise-thread") -> None:
        if size < 1:
            raise ValueError(f"the thread route needs at least one thread, not {size}")
        self.size = size
        self._name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # One token per parked thread. deque.append and deque.pop are atomic, so
        # counting idle threads needs no lock (a Semaphore takes one twice a call).
        self._idle: deque[None] = deque()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def started(self) -> int:
        return len(self._threads)

    def submit(self, job: Job) -> None:
        self._queue.put(job)
        # An idle thread will take the job; otherwise grow the pool.
        try:
            self._idle.pop()
        except IndexError:
            if len(self._threads) < self.size:
                self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            if self._closed or len(self._threads) >= self.size:
                return
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        get, parked = self._queue.get, self._idle.append
        while True:
            job = get()
            if job is None:
                forget_thread()
                return
            job()
            del job  # drop the reference while parked
            parked(None)

    def close(self, timeout: float | None = None) -> bool:
        """Stop the threads after the queued jobs; True if all of them ended."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(timeout)
        return not any(t.is_alive() for t in threads if t is not current)
