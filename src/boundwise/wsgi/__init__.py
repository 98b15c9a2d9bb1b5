"""WSGI middleware: per-route CPU time against waiting, with advice, for sync views.

    app.wsgi_app = boundwise.wsgi.WatchMiddleware(app.wsgi_app)
    print(boundwise.wsgi.report(app))

Flask: :func:`boundwise.wsgi.flask.watch`; Django: ``boundwise.wsgi.django.WatchMiddleware``.
"""

from __future__ import annotations

from boundwise.watch.wsgi import ROUTE_KEY, WatchMiddleware, report

__all__ = ["ROUTE_KEY", "WatchMiddleware", "report"]
