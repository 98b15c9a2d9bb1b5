"""Overhead of the event-loop watchdog on a busy asyncio server.

A Starlette app under uvicorn serves a trivial endpoint (the worst case: any overhead
per request or per loop iteration shows the most). Three servers run side by side:

* ``baseline``: the plain app;
* ``watchdog``: the same app with a :class:`boundwise.Watchdog` on its loop;
* ``middleware``: the same app behind ``boundwise.asgi.WatchMiddleware`` (watchdog +
  per-request step timing).

A load generator in another process drives each server in turn, alternating, for the
same time, over keep-alive connections, and counts responses. The result is a markdown
table of requests per second and the ratio to the baseline measured in the same run.

    python benchmarks/watch_overhead.py            # 10 rounds of 2 s per server
    python benchmarks/watch_overhead.py --quick    # 4 rounds of 1 s
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

VARIANTS = ("baseline", "watchdog", "middleware")
THRESHOLD = 0.1


def build_app(variant: str) -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    import boundwise.asgi
    from boundwise.watch import Watchdog

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello, world")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if variant == "watchdog":
            with Watchdog(THRESHOLD):
                yield
        else:
            yield

    app = Starlette(routes=[Route("/", hello)], lifespan=lifespan)
    if variant == "middleware":
        app.add_middleware(boundwise.asgi.WatchMiddleware, threshold=THRESHOLD)
    return app


def _pin(cpu: int) -> None:
    """Servers on one core, the load generator on another: less noise between them."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        os.sched_setaffinity(0, {cores[cpu % len(cores)]})


def serve(variant: str, port: int) -> None:
    import uvicorn

    _pin(0)
    uvicorn.run(build_app(variant), host="127.0.0.1", port=port, log_level="error",
                access_log=False, loop="asyncio", lifespan="on")


async def _client(port: int, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    done = 0
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            done += 1
    finally:
        counts.append(done)
        writer.close()


async def _load(port: int, seconds: float, connections: int) -> float:
    counts: list[int] = []
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(_client(port, until, counts) for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - start)


def load(port: int, seconds: float, connections: int) -> None:
    _pin(1)
    print(f"{asyncio.run(_load(port, seconds, connections)):.1f}")


async def _busy_loop(watch: bool) -> float:
    """A loop with nothing but scheduling to do: 100 000 task steps. Returns the CPU
    time they took (all threads), the watchdog's start and stop left out."""
    from boundwise.watch import Watchdog

    async def step() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    dog = Watchdog(THRESHOLD, log=False).start() if watch else None
    await asyncio.sleep(0.01)
    t0 = time.process_time()
    for _ in range(50):
        await asyncio.gather(*(step() for _ in range(1000)))
    spent = time.process_time() - t0
    if dog is not None:
        dog.stop()
    return spent


async def _asgi_calls(variant: str, n: int) -> None:
    app: Any = build_app(variant)
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "root_path": "",
             "query_string": b"", "headers": [], "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for _ in range(n):
        await app(dict(scope), receive, send)


def in_process(rounds: int) -> None:
    """CPU time (all threads, so the watchdog's own included) for the same work with and
    without watching: a figure the machine's noise moves far less than throughput."""
    def cpu_of(run: Callable[[], object]) -> float:
        t0 = time.process_time()
        run()
        return time.process_time() - t0

    loop_runs: dict[str, list[float]] = {"baseline": [], "watchdog": []}
    asgi_runs: dict[str, list[float]] = {"baseline": [], "middleware": []}
    n = 5000
    asyncio.run(_asgi_calls("baseline", 500))
    asyncio.run(_asgi_calls("middleware", 500))
    for r in range(rounds):
        for variant in (("baseline", "watchdog") if r % 2 == 0 else ("watchdog", "baseline")):
            loop_runs[variant].append(asyncio.run(_busy_loop(variant == "watchdog")))
        for variant in (("baseline", "middleware") if r % 2 == 0 else ("middleware", "baseline")):
            asgi_runs[variant].append(
                cpu_of(lambda v=variant: asyncio.run(_asgi_calls(v, n))) / n * 1e6)
    base = statistics.median(loop_runs["baseline"])
    watched = statistics.median(loop_runs["watchdog"])
    print(f"\nin-process CPU time, median of {rounds} alternating runs\n")
    print("| work | baseline | watched | overhead |")
    print("|---|---:|---:|---:|")
    print(f"| 100 000 task steps on a busy loop (s) | {base:.3f} | {watched:.3f} | "
          f"{(watched / base - 1) * 100:+.1f}% |")
    b = statistics.median(asgi_runs["baseline"])
    m = statistics.median(asgi_runs["middleware"])
    print(f"| one ASGI request through Starlette, no network (µs) | {b:.1f} | {m:.1f} | "
          f"{m - b:+.1f} µs ({(m / b - 1) * 100:+.0f}%) |")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 rounds of 1 s")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-server", action="store_true",
                        help="only the in-process CPU-time measurements")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rounds = args.rounds or (4 if args.quick else 10)
    seconds = args.seconds or (1.0 if args.quick else 2.0)
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.load:
        load(args.load, seconds, args.connections)
        return

    if args.no_server:
        in_process(rounds)
        return
    me = os.path.abspath(__file__)
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for variant in VARIANTS:
            port = _free_port()
            proc = subprocess.Popen([sys.executable, me, "--serve", variant, "--port", str(port)])
            servers[variant] = (proc, port)
        for _, port in servers.values():
            _wait_ready(port)
        results: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(rounds + 1):  # round 0 warms up, not counted
            order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]  # alternate the order
            for variant in order:
                port = servers[variant][1]
                out = subprocess.run(
                    [sys.executable, me, "--load", str(port), "--seconds",
                     str(seconds if r else min(seconds, 1.0)),
                     "--connections", str(args.connections)],
                    capture_output=True, text=True, timeout=seconds * 10 + 30, check=True,
                )
                if r:
                    results[variant].append(float(out.stdout.strip()))
                print(f"round {r} {variant}: {out.stdout.strip()} req/s", file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGINT)
        for proc, _ in servers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    base = statistics.median(results["baseline"])
    # Each round measures every server within seconds of the others: the ratio within a
    # round cancels the machine's slow drifts, so the median of those ratios is the figure.
    paired = {
        v: statistics.median(x / b for x, b in zip(results[v], results["baseline"], strict=True))
        for v in VARIANTS
    }
    print(f"\nwatch overhead: uvicorn + Starlette, {args.connections} keep-alive connections, "
          f"{rounds} alternating rounds of {seconds:g} s, threshold {THRESHOLD * 1000:g} ms, "
          f"{os.cpu_count()} cores\n")
    print("| server | req/s per round | median req/s | ratio of medians | "
          "median of per-round ratios |")
    print("|---|---|---:|---:|---:|")
    for variant in VARIANTS:
        runs = results[variant]
        med = statistics.median(runs)
        print(f"| {variant} | {', '.join(f'{x:.0f}' for x in runs)} | {med:.0f} | "
              f"{med / base:.3f} | {paired[variant]:.3f} "
              f"({(paired[variant] - 1) * 100:+.1f}%) |")
    in_process(rounds)


if __name__ == "__main__":
    main()
