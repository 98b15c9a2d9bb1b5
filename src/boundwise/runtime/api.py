"""The runtime's public face: ``@task``, handles, ``Runtime``, ``map``.

>>> import boundwise as bw
>>> @bw.task
... def square(x):
...     return x * x
>>> square(3).result()
9

Every call of a task goes to one of four routes: the event loop (coroutine
functions), a thread, a worker process, or inline in the caller. ``kind="auto"``
learns the route from what the function was measured doing
(:mod:`boundwise.runtime.learning`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import functools
import importlib
import inspect
import os
import pickle
import sys
import threading
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from types import TracebackType
from typing import Any, Generic, Literal, ParamSpec, TypeVar, cast, overload

from boundwise.probe.clock import thread_cpu_ns, wall_ns
from boundwise.runtime.bridge import BackgroundLoop
from boundwise.runtime.calls import Call, Spec
from boundwise.runtime.dask import DaskRoute
from boundwise.runtime.errors import (
    NotPicklable,
    RemoteTraceback,
    RuntimeClosed,
    TaskTimeout,
    WorkerCrashed,
)
from boundwise.runtime.gate import Gate
from boundwise.runtime.handles import CallHandle, FutureHandle, Handle
from boundwise.runtime.learning import MIN_SAMPLES, FunctionStats, Route
from boundwise.runtime.pool import ProcessPool
from boundwise.runtime.sched import runqueue_ns
from boundwise.runtime.threads import ThreadRoute
from boundwise.runtime.timer import Deadlines

__all__ = ["Handle", "Runtime", "Task", "default_runtime", "map", "task"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

Kind = Literal["auto", "cpu", "io", "async", "inline"]
_KINDS: dict[str, str] = {
    "auto": "auto",
    "cpu": "cpu",
    "process": "cpu",
    "io": "io",
    "thread": "io",
    "async": "async",
    "loop": "async",
    "inline": "inline",
}
_ROUTE_OF_KIND: dict[str, Route] = {
    "cpu": "process",
    "io": "thread",
    "async": "loop",
    "inline": "inline",
}

#: Calls of one learning function that may run at once; the rest wait for the verdict.
EXPLORERS = 1
#: Most functions whose spec a runtime keeps at hand.
MAX_SPECS = 4096

_current: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "boundwise_runtime", default=None
)


# -- tasks ----------------------------------------------------------------


class Task(Generic[P, R]):
    """A function whose calls run on a runtime and return a :class:`Handle`.

    Made by :func:`task`. The original function stays reachable as ``.fn``.
    """

    def __init__(
        self,
        fn: Callable[P, Any],
        *,
        kind: str = "auto",
        timeout: float | None = None,
        retries: int = 0,
        runtime: Runtime | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, not {fn!r}")
        self.fn = fn
        self.kind = _check_kind(kind)
        self.timeout = _check_timeout(timeout)
        self.retries = _check_retries(retries)
        self.runtime = runtime
        self.is_coroutine = inspect.iscoroutinefunction(fn)
        _check_kind_fits(fn, self.kind, self.is_coroutine)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Handle[R]:
        rt = self.runtime or _current.get() or default_runtime()
        return rt._submit(self, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # A task defined in a class body binds like a method.
        if instance is None:
            return self
        return functools.partial(self, instance)

    def __reduce__(self) -> tuple[Any, ...]:
        # A worker process needs the plain function, found again by its name.
        return (_resolve_function, (self.fn.__module__, self.fn.__qualname__))

    def __repr__(self) -> str:
        return f"<boundwise task {_name_of(self.fn)} kind={self.kind!r}>"


@overload
def task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    kind: Kind = "auto",
    timeout: float | None = None,
    retries: int = 0,
    runtime: Runtime | None = None,
) -> Callable[[Callable[P, R]], Task[P, Any]]: ...
def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    kind: Kind = "auto",
    timeout: float | None = None,
    retries: int = 0,
    runtime: Runtime | None = None,
) -> Any:
    """Make a function run on the runtime: bare ``@task`` or ``@task(kind=..., ...)``.

    ``kind``: ``"auto"`` (learned), ``"cpu"`` (processes), ``"io"`` (threads),
    ``"async"`` (the event loop) or ``"inline"`` (in the caller). ``timeout``:
    seconds a call may run before it fails with :class:`TaskTimeout` (a process
    call is killed). ``retries``: how many times a failed or crashed call is
    run again. ``runtime``: pin the task to a runtime instead of the current one.
    """
    if fn is not None:
        return Task(fn, kind=kind, timeout=timeout, retries=retries, runtime=runtime)

    def decorate(f: Callable[..., Any]) -> Task[Any, Any]:
        return Task(f, kind=kind, timeout=timeout, retries=retries, runtime=runtime)

    return decorate


def _resolve_function(module: str, qualname: str) -> Callable[..., Any]:
    obj = _lookup(module, qualname)
    if obj is None:
        raise AttributeError(f"cannot find {module}.{qualname} in the worker process")
    return cast(Callable[..., Any], obj.fn if isinstance(obj, Task) else obj)


def _lookup(module: str, qualname: str) -> Any:
    try:
        obj: Any = sys.modules.get(module) or importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj


def _name_of(fn: Any) -> str:
    fn = getattr(fn, "fn", fn)
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _check_kind(kind: str) -> str:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown kind {kind!r}: use one of 'auto', 'cpu', 'io', 'async', 'inline'"
        ) from None


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return timeout


def _check_retries(retries: int) -> int:
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
    return retries


def _check_kind_fits(fn: Any, kind: str, is_coroutine: bool) -> None:
    name = _short(_name_of(fn))
    if kind == "async" and not is_coroutine:
        raise TypeError(f"{name}() is not a coroutine function: kind='async' needs 'async def'")
    if kind in ("cpu", "io", "inline") and is_coroutine:
        raise TypeError(
            f"{name}() is a coroutine function: it runs on the event loop, "
            f"so use kind='auto' or 'async', not {kind!r}"
        )


def _unpicklable_reason(fn: Any) -> str | None:
    """Why ``fn`` cannot be sent to a worker process, or None if it can."""
    if isinstance(fn, Task):
        raw = fn.fn
        qualname = getattr(raw, "__qualname__", "")
        if "<lambda>" in qualname:
            return "a lambda"
        if "<locals>" in qualname:
            return "defined inside another function"
        if _lookup(raw.__module__, qualname) not in (fn, raw):
            return f"{raw.__module__}.{qualname} does not name it at module level"
        return None
    try:
        pickle.dumps(fn, 5)
    except Exception as exc:
        qualname = getattr(fn, "__qualname__", "")
        if "<lambda>" in qualname:
            return "a lambda"
        if "<locals>" in qualname:
            return "defined inside another function"
        return f"{type(exc).__name__}: {exc}"
    return None


# -- map ------------------------------------------------------------------


class MapResults(Generic[T]):
    """Results of a function over an iterable: lazy, ordered, at most ``concurrency`` in flight.

    Iterate it (``for``) in sync code or ``async for`` in async code. The input
    is read only as results are taken; the first failure is raised at its turn
    and cancels what is still in flight.
    """

    def __init__(
        self, runtime: Runtime, fn: Callable[..., Any], items: Iterable[Any], concurrency: int
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._runtime = runtime
        self._fn = fn
        self._items: Iterator[Any] | None = iter(items)
        self._concurrency = concurrency
        self._window: deque[Handle[Any]] = deque()

    def _fill(self) -> None:
        while self._items is not None and len(self._window) < self._concurrency:
            try:
                item = next(self._items)
            except StopIteration:
                self._items = None
                break
            self._window.append(self._runtime.submit(self._fn, item))

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        self._fill()
        if not self._window:
            raise StopIteration
        handle = self._window.popleft()
        try:
            value = handle.result()
        except BaseException:
            self.close()
            raise
        self._fill()
        return cast(T, value)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        self._fill()
        if not self._window:
            raise StopAsyncIteration
        handle = self._window.popleft()
        try:
            value = await handle
        except BaseException:
            self.close()
            raise
        self._fill()
        return cast(T, value)

    def close(self) -> None:
        """Stop reading the input and cancel the calls in flight."""
        self._items = None
        while self._window:
            self._window.popleft().cancel()


# -- the runtime ----------------------------------------------------------


class StatsView(dict[str, dict[str, Any]]):
    """``{qualified name: figures}``; also found by short name or by the function."""

    def __getitem__(self, key: Any) -> dict[str, Any]:
        if not isinstance(key, str):
            key = _name_of(key)
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        matches = [name for name in self if name.endswith("." + key)]
        if len(matches) == 1:
            return dict.__getitem__(self, matches[0])
        if matches:
            raise KeyError(f"{key!r} is ambiguous: {', '.join(sorted(matches))}")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True


class Runtime:
    """Runs calls on the event loop, threads, processes or inline, as each function fits.

    ``threads``: most threads of the thread route. ``processes``: worker
    processes of the process route (default: one per core), started on first
    use. ``max_pending``: most accepted, unfinished calls; beyond it ``submit``
    blocks (sync code) or waits at ``await`` (async code) instead of queuing
    without limit. ``mp_context``: a :mod:`multiprocessing` context for the
    workers (default 'fork' where available, else 'spawn'). ``cluster``: a Dask
    ``distributed.Client``, cluster object or scheduler address; the CPU route
    then runs on the cluster instead of local processes.

    Use it as a context manager: leaving the block waits for every accepted
    call (or cancels them if the block raised) and stops every thread and
    process. Inside the block, tasks called without a runtime of their own
    run on this one.
    """

    def __init__(
        self,
        threads: int = 40,
        processes: int | None = None,
        *,
        max_pending: int = 1024,
        mp_context: Any = None,
        cluster: Any = None,
        name: str = "boundwise",
    ) -> None:
        self.threads = threads
        self.processes = processes or os.cpu_count() or 1
        self.name = name
        self._mp_context = mp_context
        self._thread_route = ThreadRoute(threads, name=f"{name}-thread")
        self._pool: ProcessPool | None = None
        self._dask: DaskRoute | None = None
        if cluster is not None:
            self._dask = DaskRoute(cluster, done=self._process_done, started=self._process_started)
        self._bg = BackgroundLoop(name=f"{name}-loop")
        self._deadlines = Deadlines(name=f"{name}-deadlines")
        self._gate = Gate(max_pending)
        self._specs: dict[Any, Spec] = {}
        self._stats: dict[str, FunctionStats] = {}
        # Accepted, unsettled calls. A dict, not a set: ``pop`` is an atomic
        # test-and-remove, so a call gives its slot back exactly once without a lock.
        self._live: dict[Call, None] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._tokens: list[contextvars.Token[Runtime | None]] = []

    # -- public -----------------------------------------------------------

    @overload
    def submit(self, fn: Task[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Handle[R]: ...
    @overload
    def submit(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Handle[R]: ...
    @overload
    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Handle[R]: ...
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Handle[Any]:
        """Call ``fn(*args, **kwargs)`` on the route that fits; returns a :class:`Handle`.

        ``fn`` is a task or any function (a plain function is ``kind="auto"``).
        Blocks while the runtime is full, when called from sync code.
        """
        return self._submit(fn, args, kwargs)

    def map(
        self, fn: Callable[..., Any], items: Iterable[Any], *, concurrency: int | None = None
    ) -> MapResults[Any]:
        """``fn(item)`` for each item: lazy, ordered, ``concurrency`` calls in flight at most."""
        if concurrency is None:
            concurrency = min(self._gate.size, max(self.threads, 2 * self.processes))
        return MapResults(self, fn, items, concurrency)

    def stats(self) -> StatsView:
        """Per function: calls, route and why, CPU/wall ratio, p50/p99 wall, errors."""
        with self._lock:
            items = list(self._stats.items())
        return StatsView((name, st.snapshot()) for name, st in items)

    def close(self, cancel: bool = False, timeout: float | None = None) -> None:
        """Finish (or, with ``cancel=True``, cancel) every accepted call, then stop
        every thread and worker process. ``timeout`` bounds the wait for the
        calls; what is still running then is cancelled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        forced = cancel
        if cancel:
            self._cancel_all()
        else:
            deadline = None if timeout is None else wall_ns() + int(timeout * 1e9)
            while True:
                with self._lock:
                    live = list(self._live)
                if not live:
                    break
                left = None if deadline is None else max(0.0, (deadline - wall_ns()) / 1e9)
                concurrent.futures.wait(live, timeout=left)
                if deadline is not None and wall_ns() >= deadline:
                    self._cancel_all()
                    forced = True
                    break
        self._deadlines.close()
        self._bg.close()
        if self._pool is not None:
            self._pool.close()
        if self._dask is not None:
            self._dask.close()
        # A thread cannot be stopped: after a cancel, one stuck in a call is left
        # behind (a daemon) rather than hanging close() forever.
        self._thread_route.close(timeout=5.0 if forced else None)

    def _cancel_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for call in live:
            call.cancel()
        for call in live:
            if not call.done():
                # Running on a thread: it cannot be stopped, so it is left to finish.
                call.started = False
                call.cancel()

    def __enter__(self) -> Runtime:
        self._tokens.append(_current.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()
        self.close(cancel=exc_type is not None)

    def _leave(self) -> None:
        """No longer the current runtime of this context."""
        if self._tokens:
            with contextlib.suppress(ValueError):
                _current.reset(self._tokens.pop())

    async def __aenter__(self) -> Runtime:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.close, cancel=exc_type is not None)
        )

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live worker processes (empty before first use)."""
        return self._pool.pids if self._pool is not None else []

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._gate.in_use} pending"
        return f"<Runtime {self.name!r} threads={self.threads} processes={self.processes} {state}>"

    # -- accepting calls -----------------------------------------------------

    def _spec(self, fn: Any) -> Spec:
        try:
            return self._specs[fn]
        except KeyError:
            pass
        except TypeError:  # unhashable callable: learn nothing, still run it
            return self._make_spec(fn)
        spec = self._make_spec(fn)
        with self._lock:
            if len(self._specs) >= MAX_SPECS:
                # Callables made on the fly (lambdas, partials) must not pile up; a
                # spec is cheap to rebuild and the figures live on, keyed by name.
                self._specs.clear()
            return self._specs.setdefault(fn, spec)

    def _make_spec(self, fn: Any) -> Spec:
        if isinstance(fn, Task):
            raw, kind, timeout, retries = fn.fn, fn.kind, fn.timeout, fn.retries
            is_coroutine = fn.is_coroutine
        else:
            if not callable(fn):
                raise TypeError(f"submit() needs a function or a task, not {fn!r}")
            raw, kind, timeout, retries = fn, "auto", None, 0
            is_coroutine = inspect.iscoroutinefunction(fn)
        name = _name_of(raw)
        auto = kind == "auto"
        if auto:
            route: Route = "loop" if is_coroutine else "thread"
            reason = (
                "coroutine function" if is_coroutine else "learning: first calls run on threads"
            )
        else:
            route = _ROUTE_OF_KIND[kind]
            reason = f"kind={kind!r}"
        picklable: bool | None = None
        if route != "loop" and kind in ("auto", "cpu"):
            why = _unpicklable_reason(fn)
            picklable = why is None
            if why is not None and kind == "cpu":
                raise NotPicklable(
                    f"cannot send {_short(name)}() to a process: it is not picklable ({why}); "
                    "use kind='io' or define it at module level"
                )
        with self._lock:
            stats = self._stats.get(name)
            if stats is None:
                stats = FunctionStats(name, route, auto and not is_coroutine, reason)
                self._stats[name] = stats
                stats.picklable = picklable
        return Spec(raw, fn, name, kind, timeout, retries, is_coroutine, stats)

    def _submit(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle[Any]:
        try:
            spec = self._specs.get(fn)
        except TypeError:  # unhashable callable
            spec = None
        if spec is None:
            spec = self._spec(fn)
        if self._closed:
            raise RuntimeClosed(f"cannot run {_short(spec.name)}(): the runtime is closed")
        stats = spec.stats
        # No lock: in CPython an attribute "+= 1" on an int is not interrupted
        # between threads, and this is the hottest line of the runtime.
        stats.calls += 1
        route = stats.route
        if route == "inline":
            return self._run_inline(spec, args, kwargs)
        loop = asyncio._get_running_loop()
        if route == "loop" and loop is not None:
            if spec.timeout is None and not spec.retries:
                coro = _run_plain_coroutine(stats, spec.fn(*args, **kwargs))
            else:
                coro = self._run_coroutine(spec, args, kwargs)
            # A plain asyncio task: the fastest awaitable there is (a subclass
            # would take asyncio's slow wake-up path). Registered as a Handle.
            task: Any = loop.create_task(coro)
            return task  # type: ignore[no-any-return]
        call = Call(self, spec, args, kwargs)
        if self._gate.try_acquire():
            handle = (
                CallHandle(call) if loop is None else cast(Handle[Any], FutureHandle(call, loop))
            )
            self._accept(call)
            return handle
        if loop is None:
            self._gate.acquire()  # backpressure: the caller waits, not a queue
            self._accept(call)
        # else: called from a loop while full; the call is accepted when awaited.
        return CallHandle(call)

    def _admit(self, call: Call, timeout: float | None) -> None:
        with self._lock:
            if call.admitted or call.admitting or call.done():
                return
            call.admitting = True
        if not self._gate.acquire(timeout):
            call.admitting = False
            raise TimeoutError(f"{_short(call.spec.name)}() was not accepted within {timeout} s")
        self._accept(call)

    async def _admit_async(self, call: Call) -> None:
        with self._lock:
            if call.admitted or call.admitting or call.done():
                return
            call.admitting = True
        try:
            await self._gate.acquire_async()
        except BaseException:
            call.admitting = False
            call.cancel()
            raise
        self._accept(call)

    def _accept(self, call: Call) -> None:
        """Take an admitted call in (it holds a slot of the gate) and send it on its way."""
        # No lock: close() sets _closed first and then reads _live, so a call is
        # either seen here as refused or seen there as live (set.add is atomic).
        call.admitted = True
        self._live[call] = None
        if self._closed:
            name = _short(call.spec.name)
            self._finish(
                call,
                call.attempt,
                False,
                RuntimeClosed(f"cannot run {name}(): the runtime is closed"),
            )
            return
        if call._state == "CANCELLED":  # cancelled while waiting for its slot
            self._settle(call)
            return
        self._route(call)

    def _route(self, call: Call) -> None:
        """Send a call (or a retry of it) to the route its function has now."""
        spec = call.spec
        stats = spec.stats
        route = stats.route
        if stats.auto and stats.samples < MIN_SAMPLES:
            with stats.lock:
                if stats.samples < MIN_SAMPLES:
                    if stats.exploring >= EXPLORERS:
                        spec.backlog.append(call)
                        return
                    stats.exploring += 1
                    call.exploring = True
                    route = "thread"
        if route == "process" and self._dask is not None:
            call.where = "dask"
            self._dask.submit(call, spec.fn, call.args, call.kwargs)
            return
        if route == "process":
            try:
                payload = pickle.dumps((spec.ref, call.args, call.kwargs), 5)
            except Exception as exc:
                if spec.kind == "cpu":
                    self._finish(
                        call,
                        call.attempt,
                        False,
                        NotPicklable(
                            f"cannot send {_short(spec.name)}() to a process: its arguments "
                            f"or keyword arguments are not picklable ({exc})"
                        ),
                        None,
                        None,
                        None,
                    )
                    return
                route = "thread"  # auto: run this call on a thread instead
            else:
                call.where = "process"
                self._process_pool().submit(call, payload)
                return
        if route == "loop":
            call.where = "loop"
            self._bg.call_soon(self._start_coroutine, call)
            return
        call.where = "thread"
        self._thread_route.submit(call)

    def _process_pool(self) -> ProcessPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ProcessPool(
                        self.processes,
                        done=self._process_done,
                        lost=self._process_lost,
                        started=self._process_started,
                        context=self._mp_context,
                        name=f"{self.name}-process",
                    )
                pool = self._pool
        return pool

    # -- running ----------------------------------------------------------

    def _run_on_thread(self, call: Call) -> None:
        spec = call.spec
        if call._state == "CANCELLED":  # cancelled while queued
            if call.exploring:
                call.exploring = False
                self._explored(spec)
            self._settle(call)
            return
        call.started = True
        attempt = call.attempt
        if spec.timeout is not None:
            self._deadlines.at(spec.timeout, functools.partial(self._expire, call, attempt))
        learn = spec.stats.auto
        r0 = runqueue_ns() if learn else 0
        c0 = thread_cpu_ns()
        w0 = wall_ns()
        ok = True
        try:
            value = spec.fn(*call.args, **call.kwargs)
        except BaseException as exc:
            ok, value = False, exc
        wall = wall_ns() - w0
        cpu = thread_cpu_ns() - c0
        ready = runqueue_ns() - r0 if learn else 0
        self._finish(call, attempt, ok, value, None, cpu, wall, ready)

    def _run_inline(self, spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle[Any]:
        call = Call(self, spec, args, kwargs)
        call.where = "inline"
        while True:
            c0 = thread_cpu_ns()
            w0 = wall_ns()
            try:
                value = spec.fn(*args, **kwargs)
            except Exception as exc:
                spec.stats.record(thread_cpu_ns() - c0, wall_ns() - w0, "inline")
                with spec.stats.lock:
                    spec.stats.errors += 1
                    retry = call.attempt < spec.retries
                    if retry:
                        spec.stats.retries += 1
                if retry:
                    call.attempt += 1
                    continue
                call.set_exception(exc)
                break
            spec.stats.record(thread_cpu_ns() - c0, wall_ns() - w0, "inline")
            call.set_result(value)
            break
        return CallHandle(call)

    async def _run_coroutine(
        self, spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        stats = spec.stats
        attempt = 0
        while True:
            w0 = wall_ns()
            try:
                if spec.timeout is None:
                    value = await spec.fn(*args, **kwargs)
                else:
                    value = await self._with_timeout(spec, spec.fn(*args, **kwargs))
            except asyncio.CancelledError:
                stats.record_wall(wall_ns() - w0)
                raise
            except Exception as exc:
                stats.record_wall(wall_ns() - w0)
                with stats.lock:
                    stats.errors += 1
                    stats.timeouts += isinstance(exc, TaskTimeout)
                    retry = attempt < spec.retries
                    if retry:
                        stats.retries += 1
                if retry:
                    attempt += 1
                    continue
                raise
            stats.record_wall(wall_ns() - w0)
            return value

    @staticmethod
    async def _with_timeout(spec: Spec, coro: Awaitable[Any]) -> Any:
        assert spec.timeout is not None
        cm = asyncio.timeout(spec.timeout)
        try:
            async with cm:
                return await coro
        except TimeoutError:
            if cm.expired():
                raise TaskTimeout(spec.name, spec.timeout, killed=True) from None
            raise

    def _start_coroutine(self, call: Call) -> None:
        # On the background loop: a coroutine task called from sync code.
        if call.done():
            self._settle(call)
            return
        call.task = asyncio.get_running_loop().create_task(self._coroutine_call(call))

    async def _coroutine_call(self, call: Call) -> None:
        try:
            value = await self._run_coroutine(call.spec, call.args, call.kwargs)
        except asyncio.CancelledError:
            self._settle(call)
            call.cancel()
            return
        except BaseException as exc:
            self._settle(call)
            _set(call, exc)
            return
        self._settle(call)
        _set(call, value, ok=True)

    # -- outcomes ---------------------------------------------------------

    def _process_started(self, call: Call) -> None:
        timeout = call.spec.timeout
        if timeout is not None:
            self._deadlines.at(timeout, functools.partial(self._expire, call, call.attempt))

    def _process_done(
        self, call: Call, ok: bool, value: Any, cpu: int, wall: int, ready: int
    ) -> None:
        if ok:
            self._finish(call, call.attempt, True, value, None, cpu, wall, ready)
        else:
            exc, tb = value
            self._finish(call, call.attempt, False, exc, tb or None, cpu, wall or None, ready)

    def _process_lost(self, call: Call, exitcode: int | None, pid: int | None) -> None:
        crash = WorkerCrashed(_short(call.spec.name), exitcode, pid)
        self._finish(call, call.attempt, False, crash, None, None, None)

    def _expire(self, call: Call, attempt: int) -> None:
        # On the deadline thread.
        if call.done() or call.attempt != attempt:
            return
        spec = call.spec
        assert spec.timeout is not None
        killed = call.where == "process"
        if killed and (self._pool is None or not self._pool.abort(call)):
            return  # finished just now
        if call.where == "dask" and self._dask is not None and not self._dask.abort(call):
            return
        self._finish(
            call,
            attempt,
            False,
            TaskTimeout(_short(spec.name), spec.timeout, killed, call.where),
            None,
            None,
            None,
        )

    def _finish(
        self,
        call: Call,
        attempt: int,
        ok: bool,
        value: Any,
        remote_tb: str | None = None,
        cpu: int | None = None,
        wall: int | None = None,
        ready: int = 0,
    ) -> None:
        """Take the outcome of one attempt: learn from it, retry it, or settle the call."""
        spec = call.spec
        stats = spec.stats
        if wall is not None and cpu is not None:
            where = "process" if call.where == "dask" else call.where or "thread"
            stats.record(cpu, wall, cast(Route, where), ready)
        if call.exploring:
            call.exploring = False
            self._explored(spec)
        if spec.timeout is not None:
            # A deadline and the work itself may both report: the first one wins,
            # and a thread that overran its timeout reports a stale attempt.
            with call._condition:
                if attempt != call.attempt or call.claimed == attempt:
                    return
                call.claimed = attempt
        if ok:
            self._settle(call)
            _set(call, value, True)
            return
        if remote_tb:
            with contextlib.suppress(Exception):
                value.__cause__ = RemoteTraceback(remote_tb)
        with stats.lock:
            stats.errors += 1
            stats.crashes += isinstance(value, WorkerCrashed)
            stats.timeouts += isinstance(value, TaskTimeout)
            retry = (
                attempt < spec.retries and not call.done() and not isinstance(value, NotPicklable)
            )
            if retry:
                stats.retries += 1
        if retry:
            call.attempt = attempt + 1
            call.started = False
            self._route(call)
            return
        self._settle(call)
        _set(call, value)

    def _explored(self, spec: Spec) -> None:
        """A learning call ended: let the next one explore, or release the backlog."""
        stats = spec.stats
        with stats.lock:
            stats.exploring -= 1
            if not spec.backlog:
                return
            if stats.samples < MIN_SAMPLES:
                ready = [spec.backlog.popleft()]
            else:
                ready = list(spec.backlog)
                spec.backlog.clear()
        for call in ready:
            if call.done():
                self._settle(call)
            else:
                self._route(call)

    def _settle(self, call: Call) -> None:
        """Give back the call's slot, once."""
        if self._live.pop(call, _GONE) is not _GONE:
            self._gate.release()

    def _cancelled(self, call: Call) -> None:
        """A call was cancelled: stop its work where it runs."""
        where = call.where
        if where == "process" and self._pool is not None:
            self._pool.abort(call)
        elif where == "dask" and self._dask is not None:
            self._dask.abort(call)
        elif where == "loop" and call.task is not None:
            with contextlib.suppress(RuntimeError):
                self._bg.call_soon(call.task.cancel)
        if call.admitted:
            self._settle(call)


async def _run_plain_coroutine(stats: FunctionStats, coro: Awaitable[Any]) -> Any:
    # The loop route's hot path: no timeout, no retries, just the measurement.
    w0 = wall_ns()
    try:
        return await coro
    except Exception:
        stats.errors += 1
        raise
    finally:
        stats.record_wall(wall_ns() - w0)


_GONE = object()


def _set(call: Call, value: Any, ok: bool = False) -> None:
    if ok:
        call.settle_result(value)
    else:
        call.settle_exception(value)


# -- the default runtime and module-level helpers -------------------------

_default: Runtime | None = None
_default_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The runtime tasks use outside any ``with Runtime()``; made on first use, closed at exit."""
    global _default
    rt = _default
    if rt is not None and not rt._closed:
        return rt
    with _default_lock:
        if _default is None or _default._closed:
            _default = Runtime(name="boundwise")
            atexit.register(_default.close)
        return _default


def _current_runtime() -> Runtime:
    return _current.get() or default_runtime()


def map(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    concurrency: int = 8,
    runtime: Runtime | None = None,
) -> MapResults[Any]:
    """``fn(item)`` for each item on the current runtime: lazy, ordered, bounded."""
    rt = runtime or (fn.runtime if isinstance(fn, Task) else None) or _current_runtime()
    return MapResults(rt, fn, items, concurrency)
