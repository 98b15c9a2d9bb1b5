"""Django middleware: per-view CPU time against waiting, with advice.

    MIDDLEWARE = ["boundwise.wsgi.django.WatchMiddleware", *MIDDLEWARE]

Each view is keyed by its URL route (``items/<int:pk>``) or its name. The report is
available from :func:`report` and logged when the process exits (unless the setting
``BOUNDWISE_LOG_REPORT = False``).
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import Any

from .endpoints import Collector, EndpointReport
from .wsgi import Timer, log_report_now

__all__ = ["WatchMiddleware", "report"]

_collector = Collector()
_registered = False


class WatchMiddleware:
    """Django middleware (sync) measuring each view's thread CPU time and waits."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        global _registered
        self.get_response = get_response
        if not _registered:
            _registered = True
            from django.conf import settings

            if getattr(settings, "BOUNDWISE_LOG_REPORT", True):
                atexit.register(log_report_now, _collector)

    def __call__(self, request: Any) -> Any:
        timer = Timer()
        error = True
        try:
            response = self.get_response(request)
            error = getattr(response, "status_code", 200) >= 500
            return response
        finally:
            timer.record(_collector, _route(request), error)


def _route(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    name = ""
    if match is not None:
        name = getattr(match, "route", "") or getattr(match, "view_name", "")
        if name and not name.startswith("/"):
            name = "/" + name
    return f"{request.method} {name or request.path}"


def report() -> EndpointReport:
    """The per-view report of this process."""
    return _collector.report()


def reset() -> None:
    _collector.reset()
