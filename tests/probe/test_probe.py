"""The probe against real threads, sockets, locks, event loops and processes."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import boundwise


def spin(seconds: float) -> int:
    """Pure-Python CPU for about ``seconds`` of CPU time."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        for i in range(2000):
            n += i
    return n


@pytest.fixture
def slow_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers each line after 20 ms, in another process."""
    code = (
        "import socket, sys, time\n"
        "srv = socket.create_server(('127.0.0.1', 0))\n"
        "print(srv.getsockname()[1], flush=True)\n"
        "conn, _ = srv.accept()\n"
        "f = conn.makefile('rwb')\n"
        "for line in f:\n"
        "    time.sleep(0.02)\n"
        "    f.write(line); f.flush()\n"
    )
    import sys

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield port
    proc.kill()
    proc.wait(timeout=10)


def test_network_wait_in_a_thread(slow_server):
    def client() -> None:
        with socket.create_connection(("127.0.0.1", slow_server)) as s:
            f = s.makefile("rwb")
            for _ in range(25):
                f.write(b"ping\n")
                f.flush()
                assert f.readline() == b"ping\n"

    with boundwise.profile() as p:
        t = threading.Thread(target=client, name="client")
        t.start()
        t.join()
    assert p.breakdown["network"] > 0.8, p.breakdown
    assert p.verdict == "io-bound"
    assert p.recommendation is not None and p.recommendation.model == "asyncio"
    client_thread = next(t for t in p.threads if t.name == "client")
    assert client_thread.breakdown["network"] > 0.8
    main = next(t for t in p.threads if t.name == "MainThread")
    assert main.seconds["idle"] > 0.3  # join: waiting for work measured elsewhere
    assert p.sites_for("network")[0].function == "client"


def test_gil_contention_among_python_threads():
    with boundwise.profile() as p:
        threads = [threading.Thread(target=spin, args=(0.3,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert p.breakdown["gil"] > 0.4, p.breakdown
    assert p.breakdown["cpu"] > 0.2
    assert p.verdict == "cpu-bound"
    assert p.recommendation is not None and p.recommendation.model == "processes"


def test_native_code_that_releases_the_gil_is_not_contention():
    data = b"x" * (32 << 20)

    def digest() -> None:
        for _ in range(16):
            hashlib.sha256(data).digest()

    with boundwise.profile() as p:
        threads = [threading.Thread(target=digest) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert p.breakdown["gil"] < 0.1, p.breakdown
    assert p.breakdown["cpu"] > 0.85
    assert p.native_cpu_s > 0.6 * p.seconds["cpu"]
    assert p.recommendation is not None and p.recommendation.model == "threads"


def test_single_thread_cpu_is_not_gil_wait_for_the_sampler():
    with boundwise.profile() as p:
        spin(0.6)
    assert p.breakdown["cpu"] > 0.95, p.breakdown
    assert p.breakdown["gil"] < 0.03
    assert p.observer_s > 0  # measured and taken out, not hidden
    assert p.recommendation is not None and p.recommendation.model == "processes"


def test_waiting_for_a_busy_core_is_left_out():
    # Two busy programs share one core with the measured thread: it runs a third
    # of the time and waits in the run queue the rest, which is not its own wait.
    core = min(os.sched_getaffinity(0))
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile 1: pass"]
        )
        for _ in range(2)
    ]
    try:
        time.sleep(0.2)

        def work() -> None:
            os.sched_setaffinity(0, {core})
            spin(0.15)  # about 0.45 s of wall time
            time.sleep(0.3)

        with boundwise.profile() as p:
            t = threading.Thread(target=work)
            t.start()
            t.join()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    # 0.15 s on a core, 0.3 s asleep; the run queue would make it 60% CPU.
    assert 0.2 < p.breakdown["cpu"] < 0.45, p.breakdown
    assert p.breakdown["sleep"] > 0.5, p.breakdown
    assert p.runqueue_s > 0.15, p.runqueue_s
    assert any("busy" in note for note in p.notes)


def test_cpu_a_thread_used_before_the_profile_is_not_counted():
    # A thread threading does not list (as C libraries start them) that worked
    # before the profile began and is parked during it.
    parked = _thread.allocate_lock()
    parked.acquire()
    busy = threading.Event()

    def work() -> None:
        spin(0.3)
        busy.set()
        parked.acquire()

    _thread.start_new_thread(work, ())
    assert busy.wait(10)
    try:
        with boundwise.profile() as p:
            time.sleep(0.4)
    finally:
        parked.release()
    assert p.breakdown["sleep"] > 0.9, p.breakdown
    assert p.seconds["cpu"] < 0.05, p.seconds


def test_idle_pool_workers_and_waiting_on_futures_are_not_waiting():
    with concurrent.futures.ThreadPoolExecutor(8) as pool, boundwise.profile() as p:
        futures = [pool.submit(time.sleep, 0.05) for _ in range(4)]
        for f in futures:
            f.result()
        time.sleep(0)  # the pool's other workers sit idle for the rest
        spin(0.3)
    assert p.breakdown["sleep"] > 0.25, p.breakdown
    assert p.breakdown["lock"] < 0.02
    assert p.seconds["idle"] > 0.5


def test_lock_contention():
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(12):
            with lock:
                time.sleep(0.01)

    with boundwise.profile() as p:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert p.breakdown["lock"] > 0.5, p.breakdown
    assert p.recommendation is not None and p.recommendation.model == "sync"
    assert p.sites_for("lock")[0].function == "worker"


def test_external_command_is_subprocess_wait():
    with boundwise.profile() as p:
        subprocess.run(["sleep", "0.4"], check=True)
    assert p.breakdown["subprocess"] > 0.9, p.breakdown
    assert len(p.processes) == 1  # an external command is not measured as ours


def test_asyncio_waiting_on_sockets_is_network_and_cpu_in_coroutines_is_cpu(slow_server):
    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", slow_server)
        for _ in range(20):
            writer.write(b"ping\n")
            await writer.drain()
            await reader.readline()
        spin(0.3)  # CPU inside a coroutine
        writer.close()
        await writer.wait_closed()

    with boundwise.profile() as p:
        asyncio.run(main())
    assert p.breakdown["network"] > 0.35, p.breakdown
    assert p.breakdown["cpu"] > 0.35
    assert p.breakdown["subprocess"] < 0.05


def test_asyncio_loop_waiting_for_an_executor_is_idle():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, spin, 0.4)

    with boundwise.profile() as p:
        asyncio.run(main())
    assert p.breakdown["cpu"] > 0.9, p.breakdown
    main = next(t for t in p.threads if t.name == "MainThread")
    assert main.seconds["idle"] > 0.25


def test_worker_processes_are_measured_with_the_program():
    with concurrent.futures.ProcessPoolExecutor(2) as pool, boundwise.profile() as p:
        list(pool.map(spin, [0.3] * 4))
    workers = [proc for proc in p.processes if proc.role == "worker"]
    assert len(workers) == 2, p.processes
    assert sum(w.cpu_s for w in workers) > 0.8
    assert p.breakdown["cpu"] > 0.85, p.breakdown
    main = next(t for t in p.threads if t.name == "MainThread")
    assert main.breakdown["cpu"] + main.seconds["idle"] > 0  # its wait is a join, not work
    assert main.seconds["idle"] > 0.3
    assert p.recommendation is not None and p.recommendation.model == "processes"


def test_many_short_threads_keep_memory_bounded():
    with boundwise.profile() as p:
        for _ in range(40):
            batch = [threading.Thread(target=time.sleep, args=(0.01,)) for _ in range(10)]
            for t in batch:
                t.start()
            for t in batch:
                t.join()
    from boundwise.probe.tally import MAX_THREADS

    assert len(p.threads) <= MAX_THREADS + 1
    assert p.breakdown["sleep"] > 0.5


def test_profile_block_that_raises_is_still_measured():
    with pytest.raises(ZeroDivisionError), boundwise.profile() as p:
        time.sleep(0.2)
        1 / 0  # noqa: B018
    assert p.exit_code == 1
    assert p.breakdown["sleep"] > 0.9
    assert p.verdict == "io-bound"


def test_call_sites_inside_forked_workers():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with (
        concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool,
        boundwise.profile() as p,
    ):
        list(pool.map(spin, [0.3] * 4))
    top = p.sites_for("cpu")[0]
    assert top.function == "spin", p.sites[:3]
    assert top.fraction > 0.5
    assert all(s.fraction <= 1.0 for s in p.sites)
    workers = [proc for proc in p.processes if proc.role == "worker"]
    # the workers' own samplers are not part of what they did
    assert all(w.breakdown["sleep"] < 0.05 for w in workers), workers
