"""The WSGI middleware: Flask and Django apps behind a real WSGI server (wsgiref),
with real HTTP requests."""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .servers import slow_upstream, wsgi_server


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(i * i for i in range(500))
    return total


def hit(url: str, paths: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=20) as client, ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda p: client.get(p).status_code, paths))
    assert codes == [200] * len(paths)


def test_flask_views_get_cpu_and_wait_profiles() -> None:
    flask = pytest.importorskip("flask")
    from boundwise.wsgi import flask as bw_flask

    with slow_upstream() as upstream:
        app = flask.Flask(__name__)

        @app.get("/items/<int:item>")
        def fetch(item: int) -> dict[str, Any]:
            return {"body": urllib.request.urlopen(upstream, timeout=10).read().decode()}

        @app.get("/crunch")
        def crunch() -> dict[str, Any]:
            return {"total": burn(0.06)}

        bw_flask.watch(app, log_report=False)
        with wsgi_server(app) as url:
            hit(url, ["/items/1", "/items/2", "/crunch"] * 4)
    rep = bw_flask.report(app)
    fetch_stats = rep["GET /items/<int:item>"]
    assert fetch_stats.requests == 8 and fetch_stats.kind == "wsgi"
    assert fetch_stats.thread_cpu_s < fetch_stats.thread_wall_s / 2
    assert fetch_stats.main_wait is not None and fetch_stats.main_wait.value == "network"
    advice = fetch_stats.advice()
    assert "view spends" in advice and "waiting on the network" in advice
    crunch_stats = rep["GET /crunch"]
    assert crunch_stats.requests == 4
    assert "CPU-bound" in crunch_stats.advice()
    assert "GET /crunch" in str(rep)


def test_django_views_get_cpu_and_wait_profiles() -> None:
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="test",
            MIDDLEWARE=["boundwise.wsgi.django.WatchMiddleware"], INSTALLED_APPS=[],
            BOUNDWISE_LOG_REPORT=False,
        )
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    from boundwise.wsgi import django as bw_django

    bw_django.reset()
    with slow_upstream() as upstream:
        _VIEWS["upstream"] = upstream
        with wsgi_server(get_wsgi_application()) as url:
            hit(url, ["/orders/7/", "/orders/8/", "/report/"] * 3)
    rep = bw_django.report()
    orders = rep["GET /orders/<int:pk>/"]
    assert orders.requests == 6
    assert orders.main_wait is not None and orders.main_wait.value == "network"
    assert "waiting on the network" in orders.advice()
    assert "CPU-bound" in rep["GET /report/"].advice()


_VIEWS: dict[str, str] = {}


def _order_view(request: Any, pk: int) -> Any:
    from django.http import JsonResponse

    body = urllib.request.urlopen(_VIEWS["upstream"], timeout=10).read().decode()
    return JsonResponse({"pk": pk, "body": body})


def _report_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"total": burn(0.06)})


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("orders/<int:pk>/", _order_view), path("report/", _report_view)]


def __getattr__(name: str) -> Any:  # Django reads ``urlpatterns`` from ROOT_URLCONF
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)
