"""ASGI middleware: which endpoints block the event loop, and how much.

    app.add_middleware(boundwise.asgi.WatchMiddleware, threshold=0.05)
    ...
    print(boundwise.asgi.report(app))

Per route (the route's path template when the framework routed the request, else the
path) it measures requests, wall time, the CPU time of the request's own steps on the
loop thread, the loop time lost to stalls that happened while the request was running
(each stall named by line and call), and for sync (``def``) endpoints that the framework
runs in worker threads, their CPU time against the kinds of waiting. Stalls are logged
as they happen; the per-endpoint report is logged when the app shuts down. No HTTP
endpoint is added unless you mount :func:`report_endpoint` yourself.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import json
import logging
import threading
import types
import weakref
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any

from boundwise.probe.clock import thread_cpu_ns, wall_ns
from boundwise.probe.taxonomy import Category

from .endpoints import Collector, EndpointReport, EndpointStats
from .stall import Stall
from .threads import shared_sampler
from .watchdog import Watchdog

__all__ = ["WatchMiddleware", "report", "report_endpoint"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("boundwise.watch")

NO_REQUEST = "(outside requests)"
GIL_STARVED = "(loop waiting for the GIL held by threads)"
_SKIP = "boundwise.skip"

_ids = itertools.count(1)
_registry: weakref.WeakKeyDictionary[Any, WatchMiddleware] = weakref.WeakKeyDictionary()
_instances: weakref.WeakSet[WatchMiddleware] = weakref.WeakSet()
_current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "boundwise_request", default=None
)


class _Route:
    """A route's name and kind, its figures, and the loop CPU and loop time of its
    requests whose CPU was measured."""

    __slots__ = ("cpu_ns", "generation", "held_ns", "kind", "name", "route", "stats")

    def __init__(
        self, route: object, name: str, kind: str, stats: EndpointStats, generation: int
    ) -> None:
        self.route = route
        self.generation = generation
        self.name = name
        self.kind = kind
        self.stats = stats
        self.cpu_ns = 0
        self.held_ns = 0


# Reading a thread's CPU clock is a system call (about 0.6 µs here, two per step):
# it is read on every step of the first _CPU_SAMPLE requests of each path and then of
# one request in _CPU_SAMPLE; a route's other requests are given the CPU share of
# loop time that its measured requests had.
_CPU_SAMPLE = 8


class _Path:
    """What earlier requests to a path showed."""

    __slots__ = ("measured", "threads")

    def __init__(self) -> None:
        self.measured = 0
        """Requests whose loop CPU was measured."""
        self.threads = True
        """Whether its work may go to threads (until a request shows otherwise)."""


class _Request:
    """Figures of one request in flight."""

    __slots__ = (
        "blocked_ns",
        "cpu_sampled",
        "done",
        "id",
        "loop_cpu_ns",
        "loop_held_ns",
        "path",
        "scope",
        "stalls",
        "thread_cpu_ns",
        "thread_wall_ns",
        "waits",
    )

    def __init__(self, scope: Scope, path: _Path) -> None:
        self.id = next(_ids)
        self.scope = scope
        self.path = path
        self.cpu_sampled = path.measured < _CPU_SAMPLE or self.id % _CPU_SAMPLE == 0
        if self.cpu_sampled:
            path.measured += 1
        self.loop_cpu_ns = 0
        self.loop_held_ns = 0
        self.blocked_ns = 0
        """Time in this request's steps that held the loop longer than the threshold."""
        self.thread_cpu_ns = 0
        self.thread_wall_ns = 0
        self.waits: Counter[Category] | None = None  # only for work sent to threads
        self.stalls: list[Stall] = []
        self.done = False

    @property
    def label(self) -> str:
        return f"{self.scope.get('method', 'WS')} {self.scope.get('path', '')}"

    def run_in_thread(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap sync work sent to a worker thread so it is timed and sampled there."""

        def timed(*args: Any) -> Any:
            w0, c0 = wall_ns(), thread_cpu_ns()
            with shared_sampler().track() as waits:
                try:
                    return func(*args)
                finally:
                    self.thread_cpu_ns += thread_cpu_ns() - c0
                    self.thread_wall_ns += wall_ns() - w0
                    if self.waits is None:
                        self.waits = Counter()
                    self.waits.update(waits)

        return timed


@types.coroutine
def _timed_steps(
    coro: Coroutine[Any, Any, Any], request: _Request, owner: WatchMiddleware
) -> Generator[Any, Any, Any]:
    """Drive a request's coroutine, timing each step it takes on the loop thread.

    A step is one ``send``/``throw`` into the coroutine: the time between two of its
    awaits, when it holds the loop.
    """
    value: Any = None
    error: BaseException | None = None
    cpu = request.cpu_sampled
    c0 = 0
    while True:
        owner.running = request
        w0 = wall_ns()
        if cpu:
            c0 = thread_cpu_ns()
        try:
            yielded = coro.send(value) if error is None else coro.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            held = wall_ns() - w0
            if cpu:
                request.loop_cpu_ns += thread_cpu_ns() - c0
            request.loop_held_ns += held
            owner.running = None
            if held > owner.threshold_ns:
                request.blocked_ns += held
                owner.last_blocker = request
        try:
            value, error = (yield yielded), None
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation and errors go to the request
            value, error = None, exc


_original_run_sync: Callable[..., Awaitable[Any]] | None = None
_patch_lock = threading.Lock()


def _install_thread_timing() -> None:
    """Time the sync work that Starlette/FastAPI send to worker threads.

    They run ``def`` endpoints with ``anyio.to_thread.run_sync``; the replacement
    only acts inside a watched request (it finds the request in a context variable)
    and otherwise is the original.
    """
    global _original_run_sync
    try:
        import anyio.to_thread
    except ImportError:
        return
    with _patch_lock:
        if _original_run_sync is not None:
            return
        original = anyio.to_thread.run_sync
        _original_run_sync = original

        async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            request = _current.get()
            if request is not None:
                func = request.run_in_thread(func)
            return await original(func, *args, **kwargs)

        run_sync.__wrapped__ = original  # type: ignore[attr-defined]
        anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]


class WatchMiddleware:
    """ASGI middleware measuring each route's use of the event loop and threads.

    ``threshold``: a loop stall longer than this (seconds) is reported and attributed
    to the request that was running. ``log_stalls``: log each stall as it happens.
    ``log_report``: log the per-endpoint report when the app shuts down.
    """

    def __init__(
        self,
        app: ASGIApp,
        threshold: float = 0.1,
        *,
        log_stalls: bool = True,
        log_report: bool = True,
        time_threads: bool = True,
    ) -> None:
        self.app = app
        self.threshold = threshold
        self.log_stalls = log_stalls
        self.log_report = log_report
        self.collector = Collector(threshold)
        self.threshold_ns = int(threshold * 1e9)
        self.running: _Request | None = None
        self.last_blocker: _Request | None = None
        """The last request with a step longer than the threshold: a stall sampled
        just after that step (native code kept the sampler from the GIL) is its."""
        self._watchdog: Watchdog | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_ident = 0
        self._recent: OrderedDict[int, tuple[_Request, str]] = OrderedDict()
        self._inflight: dict[int, _Request] = {}
        self._routes: dict[object, _Route] = {}
        self._paths: dict[Any, _Path] = {}
        self._lock = threading.Lock()
        self._seen_app = False
        _registry[app] = self
        _instances.add(self)
        if time_threads:
            _install_thread_timing()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not self._seen_app and "app" in scope:
            self._seen_app = True
            _registry.setdefault(scope["app"], self)
        # Cheaper than asking asyncio for the running loop: the loop watched runs in
        # this thread and is running, or the request runs on a new loop.
        loop = self._loop
        if loop is None or threading.get_ident() != self._loop_ident or not loop.is_running():
            self._start_watchdog()
        path = scope.get("path")
        seen = self._paths.get(path)
        if seen is None:
            seen = _Path()
            if len(self._paths) < 4096:  # paths are unbounded (/items/1, /items/2...)
                self._paths[path] = seen
        request = _Request(scope, seen)
        # Setting a context variable makes every context-variable read that follows
        # slower (the caches are per context): only where work may go to threads.
        token = _current.set(request) if seen.threads or request.cpu_sampled else None
        self._inflight[request.id] = request
        started = wall_ns()
        error = False
        try:
            await _timed_steps(self.app(scope, receive, send), request, self)  # type: ignore[arg-type]
        except BaseException:
            error = True
            raise
        finally:
            if token is not None:
                _current.reset(token)
            self._inflight.pop(request.id, None)
            self._finish(scope, request, wall_ns() - started, error)

    def _finish(self, scope: Scope, request: _Request, wall: int, error: bool) -> None:
        if _SKIP in scope:
            return  # the report endpoint's own requests
        entry = self._entry(scope)
        request.path.threads = entry.kind == "sync" or request.thread_wall_ns > 0
        held = request.loop_held_ns
        if request.cpu_sampled:
            entry.cpu_ns += request.loop_cpu_ns
            entry.held_ns += held
            cpu = request.loop_cpu_ns
        else:
            # Until a request of this route is measured, its loop time counts as CPU.
            cpu = held * entry.cpu_ns // entry.held_ns if entry.held_ns else held
        with self._lock:
            request.done = True
            stalls, request.stalls = request.stalls, []
            if request.blocked_ns:  # only a request that held the loop can own a stall
                self._recent[request.id] = (request, entry.name)
                while len(self._recent) > 256:
                    self._recent.popitem(last=False)
        if not (stalls or request.blocked_ns or request.thread_wall_ns):
            self.collector.add_loop_request(entry.stats, wall, cpu, held, error)
            return
        kind = entry.kind
        if kind == "async" and request.thread_wall_ns and "endpoint" not in scope:
            kind = "sync"
        self.collector.add_request(
            entry.name,
            kind=kind,
            wall_s=wall / 1e9,
            loop_cpu_s=cpu / 1e9,
            loop_held_s=held / 1e9,
            blocked_s=request.blocked_ns / 1e9,
            thread_wall_s=request.thread_wall_ns / 1e9,
            thread_cpu_s=request.thread_cpu_ns / 1e9,
            waits=request.waits,
            error=error,
            stalls=stalls,
        )

    def _entry(self, scope: Scope) -> _Route:
        """The route a request took, remembered per routed route object (the same for
        every call) and else per name."""
        route = scope.get("route")
        generation = self.collector.generation
        key: object = (scope.get("method"), id(route))
        if route is not None:
            entry = self._routes.get(key)
            if entry is not None and entry.route is route and entry.generation == generation:
                return entry
        name, kind = route_of(scope)
        if route is None:
            key = name
            entry = self._routes.get(key)
            if entry is not None and entry.generation == generation:
                return entry
        entry = _Route(route, name, kind, self.collector.stats(name, kind), generation)
        if len(self._routes) < 4096:  # unrouted paths are unbounded: stop there
            self._routes[key] = entry
        return entry

    # -- the watchdog ---------------------------------------------------------------

    def _start_watchdog(self) -> None:
        """Watch the running loop (the first request, or a new loop)."""
        loop = asyncio.get_running_loop()
        dog = self._watchdog
        if dog is not None and dog.loop is loop and dog.running:
            return
        if dog is not None:
            dog.stop()
        self._loop, self._loop_ident = loop, threading.get_ident()
        self._watchdog = Watchdog(
            self.threshold,
            loop=loop,
            on_stall=self._on_stall,
            log=self.log_stalls,
            context=self._context,
            split_contexts=True,
        ).start()

    def _context(self) -> str:
        request = self.running
        return f"{request.label} #{request.id}" if request is not None else ""

    def _on_stall(self, stall: Stall) -> None:
        """Called on the watchdog thread: give the stall to the request it happened in."""
        if stall.category is Category.GIL:
            # Not the running request's doing: threads (sync endpoints) held the GIL.
            # Its step was long only because it waited: that time is not its block.
            self.collector.add_stall(GIL_STARVED, stall, kind="-")
            gil_id = int(stall.context.rpartition("#")[2]) if "#" in stall.context else 0
            with self._lock:
                found = self._inflight_or_recent(gil_id)
                if found is not None and not found[0].done:
                    found[0].blocked_ns = max(0, found[0].blocked_ns - int(stall.duration_s * 1e9))
                    return
            if found is not None:
                self.collector.discount_blocked(found[1], stall.duration_s)
            return
        if not stall.context and self.last_blocker is not None:
            blocker = self.last_blocker
            stall.context = f"{blocker.label} #{blocker.id}"
        request_id = int(stall.context.rpartition("#")[2]) if "#" in stall.context else 0
        with self._lock:
            request = self._inflight_or_recent(request_id)
            if request is not None and not request[0].done:
                request[0].stalls.append(stall)
                return
        if request is not None:
            self.collector.add_stall(request[1], stall, count_time=False)
        else:
            self.collector.add_stall(NO_REQUEST, stall, kind="-")

    def _inflight_or_recent(self, request_id: int) -> tuple[_Request, str] | None:
        if not request_id:
            return None
        found = self._recent.get(request_id)
        if found is not None:
            return found
        running = self.running
        if running is not None and running.id == request_id:
            return running, ""
        inflight = self._inflight.get(request_id)  # in flight, not running right now
        return (inflight, "") if inflight is not None else None

    # -- lifespan -------------------------------------------------------------------

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                self._shutdown()
            return message

        return wrapped

    def _shutdown(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
            self._loop = None
        if self.log_report:
            rep = self.report()
            if rep.endpoints:
                logger.warning("%s", rep)

    def report(self) -> EndpointReport:
        """The per-endpoint report so far."""
        return self.collector.report()


def route_of(scope: Scope) -> tuple[str, str]:
    """(``"GET /items/{id}"``, ``"async"`` or ``"sync"``) for a routed request."""
    method = scope.get("method", "WS")
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
    endpoint = scope.get("endpoint")
    kind = "async"
    if endpoint is not None:
        call = endpoint if inspect.isfunction(endpoint) else getattr(endpoint, "__call__", None)  # noqa: B004
        if call is not None and not inspect.isclass(endpoint):
            kind = "async" if inspect.iscoroutinefunction(call) else "sync"
    return f"{method} {path}", kind


def report(app: Any = None) -> EndpointReport:
    """The per-endpoint report of ``app`` (the app you added the middleware to, or the
    middleware itself); without an app, of the last middleware created."""
    if isinstance(app, WatchMiddleware):
        return app.report()
    if app is not None:
        mw = _registry.get(app)
        if mw is None:
            mw = _find_in_stack(app)
        return mw.report() if mw is not None else EndpointReport([])
    instances = list(_instances)
    return instances[-1].report() if instances else EndpointReport([])


def _find_in_stack(app: Any, depth: int = 32) -> WatchMiddleware | None:
    node = getattr(app, "middleware_stack", None) or app
    for _ in range(depth):
        if node is None:
            return None
        if isinstance(node, WatchMiddleware):
            return node
        node = getattr(node, "app", None)
    return None


def report_endpoint(app: Any = None) -> ASGIApp:
    """An ASGI app serving :func:`report` as JSON (``?format=text`` for a table).

    Nothing is exposed unless you mount it, e.g.
    ``app.mount("/_boundwise", boundwise.asgi.report_endpoint(app))``.
    """

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        scope[_SKIP] = True
        rep = report(app)
        if b"format=text" in scope.get("query_string", b""):
            body, ctype = str(rep).encode(), b"text/plain; charset=utf-8"
        else:
            body, ctype = json.dumps(rep.to_dict(), indent=2).encode(), b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return endpoint
