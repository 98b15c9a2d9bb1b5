"""Flask: per-route CPU time against waiting, with advice.

    boundwise.wsgi.flask.watch(app)
"""

from __future__ import annotations

from boundwise.watch.flask import report, watch

__all__ = ["report", "watch"]
