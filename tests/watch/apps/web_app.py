"""A web app with one endpoint of each kind, served by uvicorn in the tests.

``/cpu``: async, CPU-heavy (blocks the loop on CPU). ``/blocking``: async, calls an
upstream with a blocking HTTP client (blocks the loop on the network). ``/good``: async,
awaits. ``/sync``: a ``def`` endpoint calling the upstream (runs in a thread).
``/sync-cpu``: a ``def`` endpoint burning CPU. Set ``WEB_APP_FRAMEWORK=starlette`` for
a plain Starlette app; FastAPI otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.request
from typing import Any

from servers import slow_upstream

import boundwise.asgi

UPSTREAM_DELAY = 0.08
PAYLOAD = json.dumps([{"id": i, "tags": ["a", "b", "c"], "v": i * 0.5} for i in range(60_000)])


# The upstream lives as long as the server process (uvicorn runs us from tests/watch).
_upstream = contextlib.ExitStack()
UPSTREAM = _upstream.enter_context(slow_upstream(UPSTREAM_DELAY))


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(i * i for i in range(500))
    return total


async def cpu() -> dict[str, Any]:
    items = json.loads(PAYLOAD)  # CPU-ON-LOOP
    return {"n": len(items)}


async def blocking() -> dict[str, Any]:
    body = urllib.request.urlopen(UPSTREAM, timeout=10).read()  # BLOCKING-ON-LOOP
    return {"upstream": body.decode()}


async def good() -> dict[str, Any]:
    await asyncio.sleep(UPSTREAM_DELAY)
    return {"ok": True}


def sync() -> dict[str, Any]:
    body = urllib.request.urlopen(UPSTREAM, timeout=10).read()
    return {"upstream": body.decode()}


def sync_cpu() -> dict[str, Any]:
    return {"total": burn(0.05)}


THRESHOLD = float(os.environ.get("WEB_APP_THRESHOLD", "0.03"))


def _fastapi() -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    for path, func in (
        ("/cpu", cpu),
        ("/blocking", blocking),
        ("/good", good),
        ("/sync", sync),
        ("/sync-cpu", sync_cpu),
    ):
        app.get(path)(func)
    return app


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def cpu_endpoint(request: Request) -> JSONResponse:
        items = json.loads(PAYLOAD)  # CPU-ON-LOOP
        return JSONResponse({"n": len(items)})

    async def blocking_endpoint(request: Request) -> JSONResponse:
        body = urllib.request.urlopen(UPSTREAM, timeout=10).read()  # BLOCKING-ON-LOOP
        return JSONResponse({"upstream": body.decode()})

    async def good_endpoint(request: Request) -> JSONResponse:
        return JSONResponse(await good())

    def sync_endpoint(request: Request) -> JSONResponse:
        return JSONResponse(sync())

    def sync_cpu_endpoint(request: Request) -> JSONResponse:
        return JSONResponse(sync_cpu())

    return Starlette(
        routes=[
            Route("/cpu", cpu_endpoint),
            Route("/blocking", blocking_endpoint),
            Route("/good", good_endpoint),
            Route("/sync", sync_endpoint),
            Route("/sync-cpu", sync_cpu_endpoint),
        ]
    )


app = _starlette() if os.environ.get("WEB_APP_FRAMEWORK") == "starlette" else _fastapi()
app.add_middleware(boundwise.asgi.WatchMiddleware, threshold=THRESHOLD)
# The report over HTTP exists only because the app mounts it, here.
app.mount("/_boundwise", boundwise.asgi.report_endpoint(app))
