"""The watchdog on real event loops: real blocking calls, real CPU work."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from boundwise.probe.taxonomy import Category
from boundwise.watch import SCHEMA, Stall, Watchdog, watch
from boundwise.watch.stall import to_json_doc

THIS = __file__


def run(body: Callable[[Watchdog], Awaitable[None]], threshold: float = 0.05,
        use_uvloop: bool = False) -> list[Stall]:
    async def main() -> list[Stall]:
        with watch(threshold=threshold, log=False) as w:
            await body(w)
        return w.stalls

    if use_uvloop:
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(main())  # type: ignore[no-any-return]
    return asyncio.run(main())


def line_of(marker: str) -> int:
    with open(THIS) as f:
        return next(i for i, text in enumerate(f, 1) if marker in text and "line_of" not in text)


async def blocking_sleep(_: Watchdog) -> None:
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # BLOCK-SLEEP
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_time_sleep_is_a_sleep_stall_at_the_users_line(use_uvloop: bool) -> None:
    stalls = run(blocking_sleep, use_uvloop=use_uvloop)
    assert len(stalls) == 1
    stall = stalls[0]
    assert stall.category is Category.SLEEP
    assert 0.2 <= stall.duration_s <= 0.6
    assert (stall.file, stall.function) == (THIS, "blocking_sleep")
    assert stall.line == line_of("BLOCK-SLEEP")
    assert stall.call == "time.sleep"
    assert "await asyncio.sleep" in stall.advice
    assert stall.cpu_fraction is not None and stall.cpu_fraction < 0.3
    assert stall.stack[0].function == "blocking_sleep"  # innermost first
    assert "time.sleep(0.3)" in stall.code


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:  # BURN
        n += sum(i * i for i in range(200))
    return n


async def cpu_work(_: Watchdog) -> None:
    await asyncio.sleep(0.02)
    burn(0.3)
    await asyncio.sleep(0.02)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_cpu_work_is_a_cpu_stall(use_uvloop: bool) -> None:
    stalls = run(cpu_work, use_uvloop=use_uvloop)
    assert len(stalls) == 1
    stall = stalls[0]
    assert stall.category is Category.CPU
    assert stall.function in ("burn", "<genexpr>")
    assert stall.cpu_fraction is not None and stall.cpu_fraction > 0.5
    assert "process" in stall.advice


async def json_parse(_: Watchdog) -> None:
    text = json.dumps([{"k": i, "v": [i] * 5} for i in range(150_000)])
    await asyncio.sleep(0.02)
    json.loads(text)  # PARSE
    await asyncio.sleep(0.02)  # AFTER-PARSE
    await asyncio.sleep(0.02)


def test_json_loads_names_the_call() -> None:
    stalls = [s for s in run(json_parse, threshold=0.03) if s.line == line_of("PARSE")]
    if not stalls:
        pytest.skip("json.loads ran faster than the threshold on this machine")
    assert stalls[0].call == "json.loads"
    assert stalls[0].category is Category.CPU


async def only_awaits(_: Watchdog) -> None:
    async def worker(i: int) -> None:
        for _ in range(40):
            await asyncio.sleep(0.005 * (i % 3))

    await asyncio.gather(*(worker(i) for i in range(50)))
    await asyncio.sleep(0.3)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_no_false_alarm_on_a_loop_that_only_awaits(use_uvloop: bool) -> None:
    gc.collect()  # a full collection of earlier tests' garbage is a real (long) stall
    stalls = run(only_awaits, threshold=0.1, use_uvloop=use_uvloop)
    assert stalls == [], "\n".join(str(s) for s in stalls)


async def short_blocks(_: Watchdog) -> None:
    for _ in range(5):
        time.sleep(0.02)
        await asyncio.sleep(0.01)


def test_stalls_shorter_than_the_threshold_are_not_reported() -> None:
    assert run(short_blocks, threshold=0.1) == []


async def three_blocks(_: Watchdog) -> None:
    for _ in range(3):
        time.sleep(0.15)
        await asyncio.sleep(0.03)


def test_stalls_in_a_row_are_reported_separately() -> None:
    stalls = run(three_blocks, threshold=0.05)
    assert len(stalls) == 3
    assert all(s.category is Category.SLEEP for s in stalls)
    assert all(0.1 <= s.duration_s <= 0.4 for s in stalls)


async def ends_blocked(_: Watchdog) -> None:
    await asyncio.sleep(0.02)
    time.sleep(0.2)


def test_a_stall_still_in_progress_at_stop_is_counted() -> None:
    stalls = run(ends_blocked)
    assert len(stalls) == 1 and stalls[0].duration_s >= 0.12


@pytest.fixture
def slow_http() -> Iterator[str]:
    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(0.3)
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_blocking_http_call_is_a_network_stall(slow_http: str) -> None:
    async def fetch(_: Watchdog) -> None:
        await asyncio.sleep(0.02)
        urllib.request.urlopen(slow_http, timeout=5).read()  # FETCH
        await asyncio.sleep(0.02)

    stalls = run(fetch)
    assert len(stalls) == 1
    stall = stalls[0]
    assert stall.category is Category.NETWORK
    assert stall.line == line_of("FETCH")
    assert stall.call.startswith("urllib.request.urlopen")
    assert "async HTTP client" in stall.advice


def test_a_blocking_socket_read_is_a_network_stall() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        time.sleep(0.3)
        conn.sendall(b"x")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()

    async def read(_: Watchdog) -> None:
        sock = socket.create_connection(listener.getsockname())
        await asyncio.sleep(0.02)
        sock.recv(1)  # RECV
        sock.close()

    stalls = run(read)
    listener.close()
    assert [s.category for s in stalls] == [Category.NETWORK]
    assert stalls[0].call == "sock.recv" and stalls[0].line == line_of("RECV")
    assert "open_connection" in stalls[0].advice


def test_a_subprocess_wait_is_a_subprocess_stall() -> None:
    async def child(_: Watchdog) -> None:
        await asyncio.sleep(0.02)
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.4)"], check=True)

    stalls = run(child)
    assert len(stalls) == 1
    assert stalls[0].category is Category.SUBPROCESS
    assert stalls[0].call == "subprocess.run"
    assert "create_subprocess_exec" in stalls[0].advice


def test_waiting_on_a_threading_lock_is_a_lock_stall() -> None:
    lock = threading.Lock()
    held = threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            time.sleep(0.3)

    async def contend(_: Watchdog) -> None:
        threading.Thread(target=holder, daemon=True).start()
        held.wait()
        await asyncio.sleep(0.01)
        lock.acquire()  # ACQUIRE
        lock.release()

    stalls = run(contend)
    assert len(stalls) == 1
    assert stalls[0].category is Category.LOCK
    assert stalls[0].call == "lock.acquire"
    assert "asyncio.Lock" in stalls[0].advice


def test_on_stall_callback_and_json_document() -> None:
    seen: list[Stall] = []

    async def main() -> Watchdog:
        dog = Watchdog(0.05, on_stall=seen.append, log=False)
        async with dog:
            await blocking_sleep(dog)
        return dog

    dog = asyncio.run(main())
    assert seen == dog.stalls and len(seen) == 1
    doc = json.loads(json.dumps(to_json_doc(seen)))
    assert doc["schema"] == SCHEMA == "boundwise.watch/1"
    (stall,) = doc["stalls"]
    for key in ("duration_s", "file", "line", "function", "category", "stack", "advice"):
        assert key in stall
    assert stall["category"] == "sleep" and stall["function"] == "blocking_sleep"
    assert stall["stack"][0] == {"file": stall["file"], "line": stall["line"],
                                 "function": "blocking_sleep"}


def test_rendering_reads_like_a_traceback() -> None:
    (stall,) = run(blocking_sleep)
    text = str(stall)
    assert text.startswith("Event loop blocked ")
    assert "sleep" in text.splitlines()[0]
    assert "time.sleep(0.3)" in text and "fix: use `await asyncio.sleep" in text
    assert "stack (most recent call last)" in text


def test_watching_a_loop_from_another_thread() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    dog = Watchdog(0.05, loop=loop, log=False).start()
    try:
        time.sleep(0.1)
        asyncio.run_coroutine_threadsafe(blocking_sleep(dog), loop).result(5)
        time.sleep(0.1)
    finally:
        stalls = dog.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert [s.category for s in stalls] == [Category.SLEEP]


def test_logs_each_stall(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        with watch(0.05):
            await blocking_sleep(Watchdog())

    with caplog.at_level("WARNING", logger="boundwise.watch"):
        asyncio.run(main())
    assert any("Event loop blocked" in r.getMessage() for r in caplog.records)


def test_blocks_of_two_tasks_in_one_loop_iteration_are_two_stalls() -> None:
    async def sleeper() -> None:
        await asyncio.sleep(0.01)
        time.sleep(0.2)  # TASK-SLEEP

    async def burner() -> None:
        await asyncio.sleep(0.01)
        burn(0.2)

    async def both(_: Watchdog) -> None:
        await asyncio.gather(sleeper(), burner())

    stalls = run(both)
    assert sorted(s.category for s in stalls) == [Category.CPU, Category.SLEEP]
    by_kind = {s.category: s for s in stalls}
    assert by_kind[Category.SLEEP].line == line_of("TASK-SLEEP")
    assert by_kind[Category.SLEEP].context.endswith("sleeper")
    assert by_kind[Category.CPU].context.endswith("burner")
    assert all(0.1 < s.duration_s < 0.35 for s in stalls)
