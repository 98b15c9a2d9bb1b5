"""Handles: the pending result of one call, for sync and async callers alike.

A call made from sync code gets a :class:`CallHandle` (``.result(timeout)``
blocks). A call made from a running event loop gets a handle that *is* an
asyncio future, so ``await``, ``asyncio.gather`` and ``asyncio.wait`` take it as
it is, without wrapping it in one more task: a :class:`FutureHandle` for thread
and process work, a plain :class:`asyncio.Task` for a coroutine (on the
caller's loop). All of them are :class:`Handle` instances.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABCMeta, abstractmethod
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from boundwise.probe.clock import wall_ns

if TYPE_CHECKING:
    from boundwise.runtime.calls import Call

T = TypeVar("T")

_AWAIT_IT = "this handle belongs to the running event loop: 'await' it instead of calling .result()"


class Handle(Generic[T], metaclass=ABCMeta):
    """The pending result of one call: awaitable in async code, ``.result()`` in sync code."""

    __slots__ = ()

    @abstractmethod
    def result(self, timeout: float | None = None) -> T:
        """Wait for the outcome: the value, or the task's exception raised here.

        ``timeout`` bounds this wait only (``TimeoutError``); the call goes on.
        """

    @abstractmethod
    def done(self) -> bool:
        """True once the call has an outcome (value, exception or cancelled)."""

    @abstractmethod
    def cancel(self) -> bool:
        """Cancel the call: queued work is dropped, process work is killed, loop
        work is cancelled. Work already running on a thread cannot be stopped."""

    @abstractmethod
    def cancelled(self) -> bool:
        """True if the call was cancelled."""

    @abstractmethod
    def __await__(self) -> Generator[Any, None, T]: ...


class CallHandle(Handle[T]):
    """The handle of a call made from sync code (or from a loop while the runtime was full)."""

    __slots__ = ("_call",)

    def __init__(self, call: Call) -> None:
        self._call = call

    def result(self, timeout: float | None = None) -> T:
        call = self._call
        if not call.admitted and not call.done():
            start = wall_ns()
            call.runtime._admit(call, timeout)
            if timeout is not None:
                timeout = max(0.0, timeout - (wall_ns() - start) / 1e9)
        return cast(T, call.result(timeout))

    def done(self) -> bool:
        return self._call.done()

    def cancel(self) -> bool:
        return self._call.cancel()

    def cancelled(self) -> bool:
        return self._call.cancelled()

    def __await__(self) -> Generator[Any, None, T]:
        call = self._call
        if call.admitted or call.done():
            return cast(Generator[Any, None, T], asyncio.wrap_future(call).__await__())
        # Accepted only now: the runtime was full when the call was made.
        return self._admit_then_wait(call).__await__()

    @staticmethod
    async def _admit_then_wait(call: Call) -> T:
        await call.runtime._admit_async(call)
        return cast(T, await asyncio.wrap_future(call))

    def __repr__(self) -> str:
        return f"<Handle {self._call!r}>"


class FutureHandle(asyncio.Future[T]):
    """The handle of a thread or process call made from a running loop.

    An asyncio future of that loop, fed by the call's thread-safe future (what
    ``loop.run_in_executor`` does); cancelling it cancels the call.
    """

    def __init__(self, call: Call, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._call = call
        # The call tells this handle directly when it settles (Call.notify): no
        # done-callback registration, which would take the call's lock once more.
        call.waiter = self

    def _from_call(self, call: Call) -> None:
        # On whichever thread settled the call.
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self.get_loop().call_soon_threadsafe(self._copy, call)

    def _copy(self, call: Call) -> None:
        if super().done():
            return
        # The call has settled for good: read its outcome without its lock.
        state, exc, value = call.outcome()
        if state == "CANCELLED":
            super().cancel()
        elif exc is not None:
            self.set_exception(exc)
        else:
            self.set_result(value)

    def result(self, timeout: float | None = None) -> T:
        if super().done():
            return super().result()
        if asyncio._get_running_loop() is self.get_loop():
            raise RuntimeError(_AWAIT_IT)
        return cast(T, self._call.result(timeout))

    def cancel(self, msg: Any | None = None) -> bool:
        self._call.cancel()
        return super().cancel(msg)

    def __repr__(self) -> str:
        return f"<Handle {self._call!r}>"


Handle.register(FutureHandle)
# A coroutine called from async code runs as a plain task on the caller's loop:
# awaitable, with done(), cancel() and result() (once done), like any handle.
Handle.register(asyncio.Task)
