"""Admission: a bounded number of accepted, unfinished tasks.

One counter serves both worlds: sync callers block in :meth:`Gate.acquire`,
coroutines wait in :meth:`Gate.acquire_async` without blocking their loop. A
freed slot is handed straight to the longest waiter, so waiters are served in
order and no one is starved by a caller that keeps finding a free slot.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class _Waiter:
    __slots__ = ("future", "lock", "loop")

    def __init__(
        self,
        lock: threading.Lock | None,
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[None] | None,
    ) -> None:
        self.lock = lock
        self.loop = loop
        self.future = future


class Gate:
    """A counting semaphore shared by threads and event loops."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a runtime must accept at least one task, not {size}")
        self.size = size
        self._free = size
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self.size - self._free

    def try_acquire(self) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            return False

    def acquire(self, timeout: float | None = None) -> bool:
        """Take a slot, blocking the calling thread; False if ``timeout`` ran out."""
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            lock = threading.Lock()
            lock.acquire()
            waiter = _Waiter(lock, None, None)
            self._waiters.append(waiter)
        if lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return True
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return True  # handed a slot just as the wait ran out
            return False

    async def acquire_async(self) -> None:
        """Take a slot, waiting without blocking the running loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            future: asyncio.Future[None] = loop.create_future()
            waiter = _Waiter(None, loop, future)
            self._waiters.append(waiter)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove(waiter)
                    handed = False
                except ValueError:
                    handed = True
            if handed and future.done() and not future.cancelled():
                self.release()  # the slot arrived just before the cancellation
            # (a slot handed to a cancelled future is passed on by _wake)
            raise

    def release(self) -> None:
        """Return a slot, or hand it to the longest waiter."""
        with self._lock:
            if not self._waiters:
                self._free += 1
                return
            waiter = self._waiters.popleft()
        if waiter.lock is not None:
            waiter.lock.release()
        else:
            assert waiter.loop is not None and waiter.future is not None
            try:
                waiter.loop.call_soon_threadsafe(_wake, waiter.future, self)
            except RuntimeError:  # the waiter's loop is closed: nobody to hand it to
                self.release()


def _wake(future: asyncio.Future[None], gate: Gate) -> None:
    if future.done():
        gate.release()  # cancelled in the meantime: pass the slot on
    else:
        future.set_result(None)
