"""Django middleware: per-view CPU time against waiting, with advice.

    MIDDLEWARE = ["boundwise.wsgi.django.WatchMiddleware", *MIDDLEWARE]
"""

from __future__ import annotations

from boundwise.watch.django import WatchMiddleware, report, reset

__all__ = ["WatchMiddleware", "report", "reset"]
