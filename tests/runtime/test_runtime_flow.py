"""Cancellation, backpressure and closing: nothing queued without limit, nothing left behind."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import psutil
import pytest
import runtime_work as w

import boundwise as bw
from boundwise.runtime.api import Runtime

pytestmark = pytest.mark.timeout(60)

cpu = bw.task(kind="cpu")
io = bw.task(kind="io")


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def _running_pid(rt: Runtime, before: set[int]) -> int:
    """The pid of the worker that picked up the hanging call (the one still busy)."""
    for _ in range(200):
        busy = [p for p in rt.worker_pids if p in before]
        if busy:
            return busy[0]
        time.sleep(0.01)
    raise AssertionError("no worker")


def test_cancel_running_process_work_kills_its_worker() -> None:
    with Runtime(threads=1, processes=1) as rt:
        (pid,) = {rt.submit(cpu(w.pid)).result(timeout=10)}
        handle = rt.submit(cpu(w.hang))
        time.sleep(0.2)  # let it start
        assert handle.cancel()
        assert handle.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            handle.result(timeout=5)
        assert _wait_gone(pid)
        assert rt.submit(cpu(w.add), 1, 1).result(timeout=10) == 2
        assert pid not in rt.worker_pids


def test_cancel_queued_process_work_never_runs_it() -> None:
    with Runtime(threads=1, processes=1) as rt:
        blocker = rt.submit(cpu(w.nap), 0.3)
        queued = rt.submit(cpu(w.exit_now))  # would crash the worker if it ran
        assert queued.cancel()
        assert blocker.result(timeout=10) == 0.3
        assert rt.stats()[w.exit_now]["crashes"] == 0
        assert rt._pool is not None and rt._pool.replaced == 0


def test_cancelling_the_awaiting_asyncio_task_kills_process_work() -> None:
    async def main(rt: Runtime) -> int:
        pid = await rt.submit(cpu(w.pid))
        waiter = asyncio.ensure_future(rt.submit(cpu(w.hang)))
        await asyncio.sleep(0.2)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return pid

    with Runtime(threads=1, processes=1) as rt:
        pid = asyncio.run(main(rt))
        assert _wait_gone(pid)
        assert rt.submit(cpu(w.add), 2, 3).result(timeout=10) == 5


def test_cancel_queued_thread_work() -> None:
    with Runtime(threads=1, processes=1) as rt:
        first = rt.submit(io(w.nap), 0.2)
        second = rt.submit(io(w.nap), 5)
        assert second.cancel()
        assert first.result(timeout=10) == 0.2
        assert rt.stats()[w.nap]["calls"] == 2
    assert rt.stats()[w.nap]["p99_s"] < 5  # the cancelled call never ran


def test_running_thread_work_cannot_be_cancelled_and_says_so() -> None:
    with Runtime(threads=1, processes=1) as rt:
        handle = rt.submit(io(w.nap), 0.3)
        time.sleep(0.1)
        assert not handle.cancel()
        assert handle.result(timeout=10) == 0.3


def test_submit_blocks_when_the_runtime_is_full() -> None:
    with Runtime(threads=4, processes=1, max_pending=2) as rt:
        gate = threading.Event()
        h1 = rt.submit(io(gate.wait), 10)
        h2 = rt.submit(io(gate.wait), 10)
        accepted = threading.Event()

        def third() -> None:
            rt.submit(io(w.add), 1, 1)
            accepted.set()

        submitter = threading.Thread(target=third)
        submitter.start()
        assert not accepted.wait(0.3)  # held back: no third slot
        gate.set()
        assert accepted.wait(10)
        submitter.join(10)
        assert h1.result(timeout=10) and h2.result(timeout=10)


def test_async_callers_wait_for_a_slot_at_await() -> None:
    async def main(rt: Runtime) -> list[float]:
        handles = [rt.submit(io(w.nap), 0.05) for _ in range(6)]
        assert rt._gate.in_use == 2  # only two accepted; the rest wait at their await
        return list(await asyncio.gather(*handles))

    with Runtime(threads=4, processes=1, max_pending=2) as rt:
        assert asyncio.run(main(rt)) == [0.05] * 6


def test_map_keeps_at_most_concurrency_calls_in_flight() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def tracked(x: int) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return x

    with Runtime(threads=16, processes=1):
        out = list(bw.map(io(tracked), range(40), concurrency=3))
    assert out == list(range(40))
    assert state["peak"] <= 3


def test_close_waits_for_accepted_work() -> None:
    rt = Runtime(threads=2, processes=1)
    handles = [rt.submit(io(w.nap), 0.05) for _ in range(4)] + [rt.submit(cpu(w.add), 1, 2)]
    rt.close()
    assert all(h.done() for h in handles)
    assert [h.result() for h in handles] == [0.05] * 4 + [3]


def test_close_with_cancel_drops_queued_and_kills_running_process_work() -> None:
    rt = Runtime(threads=1, processes=1)
    running = rt.submit(cpu(w.hang))
    time.sleep(0.2)
    queued = [rt.submit(cpu(w.hang)) for _ in range(3)]
    rt.close(cancel=True)
    assert running.cancelled()
    assert all(h.cancelled() for h in queued)


def test_leaving_the_block_on_an_error_cancels_the_work() -> None:
    with pytest.raises(ZeroDivisionError), Runtime(threads=1, processes=1) as rt:
        handle = rt.submit(cpu(w.hang))
        time.sleep(0.1)
        1 / 0  # noqa: B018
    assert handle.cancelled()


def test_close_timeout_cancels_what_overruns() -> None:
    rt = Runtime(threads=1, processes=1)
    handle = rt.submit(cpu(w.hang))
    rt.close(timeout=0.3)
    assert handle.cancelled()


def test_close_timeout_does_not_wait_for_a_stuck_thread() -> None:
    rt = Runtime(threads=1, processes=1)
    handle = rt.submit(io(w.nap), 1.0)  # cannot be stopped once running
    time.sleep(0.1)
    rt.close(timeout=0.1)  # returns: the thread is left to finish on its own
    assert handle.cancelled()
