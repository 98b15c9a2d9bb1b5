"""One accepted call, and what the runtime knows about the function it calls."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from boundwise.runtime.learning import FunctionStats

if TYPE_CHECKING:
    from boundwise.runtime.api import Runtime
    from boundwise.runtime.handles import FutureHandle


class Spec:
    """A function as the runtime runs it: the callable, its hints and its figures."""

    __slots__ = (
        "backlog",
        "fn",
        "is_coroutine",
        "kind",
        "name",
        "ref",
        "retries",
        "stats",
        "timeout",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        ref: Any,
        name: str,
        kind: str,
        timeout: float | None,
        retries: int,
        is_coroutine: bool,
        stats: FunctionStats,
    ) -> None:
        self.fn = fn
        self.ref = ref  # what is pickled to name the function in a worker process
        self.name = name
        self.kind = kind
        self.timeout = timeout
        self.retries = retries
        self.is_coroutine = is_coroutine
        self.stats = stats
        self.backlog: deque[Call] = deque()  # calls waiting while the function is learned


class Call(concurrent.futures.Future[Any]):
    """A call accepted by a runtime; it is also the future of its result.

    The future stays "pending" until it has an outcome, so it can be cancelled
    while it runs: cancelling kills process work, stops loop work and drops
    queued work. Work already running on a thread cannot be stopped, and
    ``cancel()`` says so by returning False, like :mod:`concurrent.futures`.
    """

    def __init__(
        self, runtime: Runtime, spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.attempt = 0
        self.claimed = -1  # last attempt whose outcome was taken
        self.where = ""  # route of the current attempt
        self.admitted = False
        self.admitting = False
        self.started = False
        self.exploring = False
        self.task: asyncio.Task[Any] | None = None
        self.waiter: FutureHandle[Any] | None = None  # the asyncio handle awaiting it

    def settle_result(self, value: Any) -> None:
        """Set the result (unless cancelled) and tell the waiting handle."""
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self.set_result(value)
        if self.waiter is not None:
            self.waiter._from_call(self)

    def settle_exception(self, exc: BaseException) -> None:
        """Set the exception (unless cancelled) and tell the waiting handle."""
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self.set_exception(exc)
        if self.waiter is not None:
            self.waiter._from_call(self)

    def outcome(self) -> tuple[str, BaseException | None, Any]:
        """``(state, exception, result)`` of a settled call, read without its lock."""
        return self._state, self._exception, self._result

    def __call__(self) -> None:
        # The job a thread of the thread route runs.
        self.runtime._run_on_thread(self)

    def cancel(self) -> bool:
        if self.where == "thread" and self.started:
            return False
        if not super().cancel():
            return False
        self.runtime._cancelled(self)
        if self.waiter is not None:
            self.waiter._from_call(self)
        return True

    def __repr__(self) -> str:
        return f"<Call {self.spec.name}() on {self.where or 'no route yet'} {self._state.lower()}>"
