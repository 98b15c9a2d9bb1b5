"""WSGI middleware: per-route CPU time against waiting, with advice, for sync views.

    app.wsgi_app = boundwise.wsgi.WatchMiddleware(app.wsgi_app)   # any WSGI app
    boundwise.wsgi.flask.watch(app)                               # Flask, by URL rule
    MIDDLEWARE += ["boundwise.wsgi.django.WatchMiddleware"]       # Django, by URL route

A WSGI request runs in one thread from start to end: its CPU time is read from that
thread's clock, and its waiting is split by kind by sampling the thread's kernel state
and stack while it runs (see :mod:`boundwise.watch.threads`).
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from boundwise.probe.clock import thread_cpu_ns, wall_ns

from .endpoints import Collector, EndpointReport
from .threads import shared_sampler

__all__ = ["ROUTE_KEY", "WatchMiddleware", "report"]

logger = logging.getLogger("boundwise.watch")

ROUTE_KEY = "boundwise.route"
"""An environ key a framework integration sets to the request's route template."""

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_last: Collector | None = None


class Timer:
    """Times one request in the calling thread: wall, thread CPU, sampled waits."""

    def __init__(self) -> None:
        self._track = shared_sampler().track()
        self.waits = self._track.__enter__()
        self.wall0 = wall_ns()
        self.cpu0 = thread_cpu_ns()

    def stop(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds); stops sampling."""
        wall, cpu = (wall_ns() - self.wall0) / 1e9, (thread_cpu_ns() - self.cpu0) / 1e9
        self._track.__exit__(None, None, None)
        return wall, cpu

    def record(self, collector: Collector, route: str, error: bool) -> None:
        """Stop, and add the request to ``route``'s figures."""
        wall, cpu = self.stop()
        collector.add_request(
            route,
            kind="wsgi",
            wall_s=wall,
            thread_wall_s=wall,
            thread_cpu_s=cpu,
            waits=self.waits,
            error=error,
        )


class WatchMiddleware:
    """WSGI middleware collecting per-route thread CPU time, waits and advice."""

    def __init__(self, app: WSGIApp, *, log_report: bool = True) -> None:
        global _last
        self.app = app
        self.collector = Collector()
        _last = self.collector
        if log_report:
            atexit.register(log_report_now, self.collector)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        timer = Timer()
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._record(environ, timer, error=True)
            raise
        return _Body(body, lambda error: self._record(environ, timer, error))

    def _record(self, environ: dict[str, Any], timer: Timer, error: bool) -> None:
        route = environ.get(ROUTE_KEY) or f"{environ.get('REQUEST_METHOD', 'GET')} " + (
            environ.get("PATH_INFO") or "/"
        )
        timer.record(self.collector, route, error)

    def report(self) -> EndpointReport:
        return self.collector.report()


class _Body:
    """The response body, passed through; the request ends when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[bool], None]) -> None:
        self._body = body
        self._done: Callable[[bool], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException:
            self._finish(True)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(False)

    def _finish(self, error: bool) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(error)


def report(app: Any = None) -> EndpointReport:
    """The per-route report of a :class:`WatchMiddleware` (or of the last one made)."""
    if isinstance(app, WatchMiddleware):
        return app.report()
    mw = getattr(app, "wsgi_app", None)
    if isinstance(mw, WatchMiddleware):
        return mw.report()
    return _last.report() if _last is not None else EndpointReport([])


def log_report_now(collector: Collector) -> None:
    rep = collector.report()
    if rep.endpoints:
        logger.warning("%s", rep)
