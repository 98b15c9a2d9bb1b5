"""The ASGI middleware in a real app (FastAPI, Starlette) under uvicorn, with real HTTP
load from this (another) process."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .servers import uvicorn_server

ROUTES = ["/cpu", "/blocking", "/good", "/sync", "/sync-cpu"]
PER_ROUTE = 6


def load(url: str) -> None:
    """Bounded load: each route PER_ROUTE times, four requests at a time."""
    with httpx.Client(base_url=url, timeout=20) as client:
        def get(path: str) -> int:
            return client.get(path).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(get, ROUTES * PER_ROUTE))
    assert codes == [200] * len(codes)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("framework", "loop"), [("fastapi", "asyncio"), ("starlette", "uvloop")]
)
def test_per_endpoint_report_under_uvicorn(framework: str, loop: str) -> None:
    env = {"WEB_APP_FRAMEWORK": framework, "WEB_APP_THRESHOLD": "0.03"}
    with uvicorn_server("apps.web_app:app", env, loop=loop) as server:
        load(server.url)
        doc = httpx.get(server.url + "/_boundwise/", timeout=10).json()
        text = httpx.get(server.url + "/_boundwise/?format=text", timeout=10).text
    assert doc["schema"] == "boundwise.endpoints/1"
    by_route: dict[str, Any] = {e["route"]: e for e in doc["endpoints"]}
    assert {f"GET {r}" for r in ROUTES} <= set(by_route), by_route.keys()
    assert set(by_route) - {f"GET {r}" for r in ROUTES} <= {
        "(loop waiting for the GIL held by threads)"}
    for e in by_route.values():
        if e["route"].startswith("GET "):
            assert e["requests"] == PER_ROUTE + (1 if e["route"] == "GET /good" else 0)

    cpu = by_route["GET /cpu"]
    assert cpu["kind"] == "async" and cpu["stalls"] >= 1
    assert cpu["blocked_ms_per_call"] > 30
    assert cpu["block_site"]["category"] == "cpu"
    assert cpu["block_site"]["call"] == "json.loads"
    assert cpu["block_site"]["file"].endswith("web_app.py")
    assert cpu["loop_cpu_ms_per_call"] > 20
    assert cpu["advice"].startswith("`async def` endpoint blocks the loop")
    assert "in json.loads — make it `def` or offload it" in cpu["advice"]

    blocking = by_route["GET /blocking"]
    assert blocking["kind"] == "async" and blocking["stalls"] >= 1
    assert blocking["blocked_ms_per_call"] > 30
    assert blocking["block_site"]["category"] == "network"
    assert blocking["block_site"]["call"] == "urllib.request.urlopen"
    assert blocking["loop_cpu_ms_per_call"] < blocking["blocked_ms_per_call"] / 2
    assert "async HTTP client" in blocking["advice"]

    good = by_route["GET /good"]
    assert good["stalls"] == 0 and good["blocked_ms_per_call"] < 15, json.dumps(doc, indent=1)
    assert good["advice"].startswith("ok")

    sync = by_route["GET /sync"]
    assert sync["kind"] == "sync"
    assert sync["thread_wall_s"] > 0.05 * PER_ROUTE
    assert sync["thread_cpu_s"] < sync["thread_wall_s"] / 2
    assert sync["waits"]["network"] > sum(sync["waits"].values()) / 2
    assert "waiting on the network — it would serve more as `async def`" in sync["advice"]

    sync_cpu = by_route["GET /sync-cpu"]
    assert sync_cpu["kind"] == "sync"
    assert "CPU-bound" in sync_cpu["advice"]

    assert "GET /cpu" in text and "blocks the loop" in text
    # The log: each stall as it happened, the per-endpoint report at shutdown.
    assert "Event loop blocked" in server.log and "[GET /cpu #" in server.log
    assert "per-endpoint loop and thread time" in server.log
