"""Real sockets: blocking I/O tasks overlap on threads, coroutine I/O on the loop."""

from __future__ import annotations

import asyncio
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
import runtime_work as w

from boundwise.runtime.api import Runtime

pytestmark = pytest.mark.timeout(60)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0


class _Echo(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        with self.server.lock:
            self.server.now += 1
            self.server.peak = max(self.server.peak, self.server.now)
        try:
            line = self.rfile.readline()
            time.sleep(0.1)  # a slow backend
            self.wfile.write(line.upper())
        finally:
            with self.server.lock:
                self.server.now -= 1


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, name="echo-server", daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_blocking_socket_calls_from_async_code_overlap_on_threads(server: _Server) -> None:
    port = server.server_address[1]

    async def main(rt: Runtime) -> list[bytes]:
        return list(
            await asyncio.gather(*(rt.submit(w.fetch, port, b"x%d" % i) for i in range(12)))
        )

    with Runtime(threads=16, processes=2) as rt:
        replies = asyncio.run(main(rt))
        figures = rt.stats()["fetch"]
    assert replies == [b"X%d" % i for i in range(12)]
    assert figures["route"] == "thread"
    assert figures["recent_cpu_ratio"] < 0.3
    assert server.peak >= 6  # after learning, the calls waited on the server together


def test_coroutine_socket_calls_run_on_the_loop(server: _Server) -> None:
    port = server.server_address[1]

    async def main(rt: Runtime) -> list[bytes]:
        return list(
            await asyncio.gather(*(rt.submit(w.afetch, port, b"a%d" % i) for i in range(8)))
        )

    with Runtime(threads=2, processes=1) as rt:
        assert asyncio.run(main(rt)) == [b"A%d" % i for i in range(8)]
        assert rt.stats()["afetch"]["route"] == "loop"
    assert server.peak >= 4  # the coroutines waited on the server together


def test_blocking_socket_calls_from_sync_code(server: _Server) -> None:
    port = server.server_address[1]
    with Runtime(threads=16, processes=2) as rt:
        handles = [rt.submit(w.fetch, port, b"s%d" % i) for i in range(10)]
        assert [h.result(timeout=20) for h in handles] == [b"S%d" % i for i in range(10)]
