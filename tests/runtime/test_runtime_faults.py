"""Exceptions, crashes, timeouts and retries, with real worker processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from pathlib import Path

import psutil
import pytest
import runtime_work as w

import boundwise as bw
from boundwise.runtime.api import Runtime
from boundwise.runtime.errors import RemoteTraceback, TaskTimeout, UnpicklableError, WorkerCrashed

pytestmark = pytest.mark.timeout(60)


def test_exception_keeps_its_type_and_remote_traceback() -> None:
    with Runtime(threads=2, processes=1), pytest.raises(KeyError, match="missing") as info:
        w.t_cpu_fail("missing").result(timeout=10)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "t_cpu_fail" in cause.tb
    assert "raise KeyError(message)" in cause.tb


def test_exception_from_a_thread_keeps_its_frames() -> None:
    with Runtime(threads=2, processes=1) as rt, pytest.raises(KeyError) as info:
        rt.submit(w.fail, "x").result(timeout=10)
    frames = [f.name for f in info.traceback]
    assert "fail" in frames


def test_unpicklable_remote_exception_is_still_reported() -> None:
    with Runtime(threads=2, processes=1) as rt:
        task = bw.task(kind="cpu")(w.raise_unpicklable)
        with pytest.raises(UnpicklableError, match="Unpicklable: 1-2") as info:
            rt.submit(task).result(timeout=10)
    assert isinstance(info.value.__cause__, RemoteTraceback)


@pytest.mark.parametrize("crash", [w.exit_now, w.kill_self, w.segfault])
def test_dead_worker_fails_only_its_task_and_is_replaced(crash: object) -> None:
    with Runtime(threads=2, processes=2) as rt:
        cpu = bw.task(kind="cpu")
        before = set(rt.worker_pids) or {rt.submit(cpu(w.pid)).result(timeout=10)}
        others = [rt.submit(cpu(w.add), i, 1) for i in range(20)]
        with pytest.raises(WorkerCrashed) as info:
            rt.submit(cpu(crash)).result(timeout=10)  # type: ignore[arg-type]
        assert [h.result(timeout=10) for h in others] == [i + 1 for i in range(20)]
        # The pool healed: later tasks run, on a fresh worker.
        assert rt.submit(cpu(w.add), 2, 2).result(timeout=10) == 4
        assert len(rt.worker_pids) == 2
        assert set(rt.worker_pids) != before
        assert rt.stats()[crash]["crashes"] == 1
    assert "died while running" in str(info.value)


def test_crash_message_names_the_signal() -> None:
    with Runtime(threads=1, processes=1) as rt, pytest.raises(WorkerCrashed, match="SIGKILL"):
        rt.submit(bw.task(kind="cpu")(w.kill_self)).result(timeout=10)


def test_retries_rerun_a_crashed_task(tmp_path: Path) -> None:
    with Runtime(threads=1, processes=1) as rt:
        assert w.t_crash_once(str(tmp_path / "m")).result(timeout=20) == "second try"
        figures = rt.stats()["t_crash_once"]
    assert figures["crashes"] == 1
    assert figures["retries"] == 1


def test_retries_rerun_a_failed_thread_task(tmp_path: Path) -> None:
    with Runtime(threads=1, processes=1) as rt:
        assert w.t_fail_once(str(tmp_path / "m")).result(timeout=20) == "second try"
        assert rt.stats()["t_fail_once"]["retries"] == 1


def test_process_timeout_kills_the_worker_and_replaces_it() -> None:
    with Runtime(threads=1, processes=1) as rt:
        first = rt.submit(w.t_cpu_pid).result(timeout=10)
        with pytest.raises(TaskTimeout) as info:
            w.t_cpu_hang().result(timeout=20)
        assert isinstance(info.value, TimeoutError)
        assert info.value.killed
        deadline = time.monotonic() + 5
        while psutil.pid_exists(first) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
        second = rt.submit(w.t_cpu_pid).result(timeout=10)
        assert second != first
        assert rt.stats()["t_cpu_hang"]["timeouts"] == 1


def test_timeout_then_retry_succeeds(tmp_path: Path) -> None:
    with Runtime(threads=1, processes=1) as rt:
        assert w.t_hang_then_ok(str(tmp_path / "m")).result(timeout=20) == "second try"
        assert rt.stats()["t_hang_then_ok"]["timeouts"] == 1


def test_thread_timeout_raises_in_the_caller() -> None:
    with Runtime(threads=2, processes=1), pytest.raises(TaskTimeout) as info:
        w.t_io_slow().result(timeout=10)
    assert not info.value.killed
    assert "still runs on its thread" in str(info.value)


def test_loop_timeout_raises_in_the_caller() -> None:
    async def main() -> None:
        with pytest.raises(TaskTimeout):
            await w.t_async_hang()

    with Runtime(threads=1, processes=1):
        asyncio.run(main())
        with pytest.raises(TimeoutError):
            w.t_async_hang().result(timeout=10)


def test_result_timeout_bounds_only_the_wait() -> None:
    with Runtime(threads=1, processes=1):
        handle = w.t_nap(0.3)
        with pytest.raises(TimeoutError):
            handle.result(timeout=0.01)
        assert handle.result(timeout=10) == 0.3


def test_worker_runs_in_another_process() -> None:
    with Runtime(threads=1, processes=1):
        assert w.t_cpu_pid().result(timeout=10) != os.getpid()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_other_start_methods_work_too(method: str) -> None:
    context = multiprocessing.get_context(method)
    with Runtime(threads=1, processes=1, mp_context=context) as rt:
        assert w.t_cpu_pid().result(timeout=30) != os.getpid()
        with pytest.raises(KeyError):
            w.t_cpu_fail("x").result(timeout=30)
        with pytest.raises(WorkerCrashed):
            rt.submit(bw.task(kind="cpu")(w.exit_now)).result(timeout=30)
        assert rt.submit(bw.task(kind="cpu")(w.add), 2, 3).result(timeout=30) == 5
