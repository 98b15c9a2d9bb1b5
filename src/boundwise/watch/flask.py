"""Flask: per-route (URL rule) CPU time against waiting, with advice."""

from __future__ import annotations

from typing import Any

from .endpoints import EndpointReport
from .wsgi import ROUTE_KEY, WatchMiddleware

__all__ = ["report", "watch"]


def watch(app: Any, *, log_report: bool = True) -> WatchMiddleware:
    """Measure every request of a Flask ``app``, keyed by its URL rule (``/items/<id>``)."""
    from flask import request

    middleware = WatchMiddleware(app.wsgi_app, log_report=log_report)
    app.wsgi_app = middleware

    def _route() -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = f"{request.method} {rule.rule}"

    app.before_request(_route)

    return middleware


def report(app: Any) -> EndpointReport:
    """The per-route report of a Flask app passed to :func:`watch`."""
    mw = app.wsgi_app
    return mw.report() if isinstance(mw, WatchMiddleware) else EndpointReport([])
