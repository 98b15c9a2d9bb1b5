"""ASGI middleware: which endpoints block the event loop, and how much.

    app.add_middleware(boundwise.asgi.WatchMiddleware, threshold=0.05)
    print(boundwise.asgi.report(app))
"""

from __future__ import annotations

from boundwise.watch.asgi import WatchMiddleware, report, report_endpoint
from boundwise.watch.endpoints import EndpointReport, EndpointStats

__all__ = ["EndpointReport", "EndpointStats", "WatchMiddleware", "report", "report_endpoint"]
