"""kind="auto": routes learned from measured CPU/wall per call."""

from __future__ import annotations

import os
import threading

import pytest
import runtime_work as w

import boundwise as bw
from boundwise.runtime.api import Runtime
from boundwise.runtime.errors import NotPicklable
from boundwise.runtime.learning import MIN_SAMPLES

pytestmark = pytest.mark.timeout(60)


def test_cpu_heavy_function_moves_to_processes() -> None:
    with Runtime(threads=4, processes=2) as rt:
        pids = [rt.submit(w.cpu_then_pid, 20).result(timeout=10)[0] for _ in range(6)]
        figures = rt.stats()["cpu_then_pid"]
    assert pids[0] == os.getpid()  # learning: the first call runs on a thread
    assert pids[-1] != os.getpid()  # learned: later calls run in a worker process
    assert figures["route"] == "process"
    assert figures["recent_cpu_ratio"] >= 0.7
    assert "CPU-bound" in figures["reason"]


def test_waiting_function_stays_on_threads() -> None:
    with Runtime(threads=4, processes=2) as rt:
        for _ in range(4):
            rt.submit(w.nap, 0.02).result(timeout=10)
        figures = rt.stats()["nap"]
    assert figures["route"] == "thread"
    assert figures["recent_cpu_ratio"] < 0.3


def test_burst_of_unknown_calls_waits_for_the_verdict() -> None:
    with Runtime(threads=8, processes=2) as rt:
        handles = [rt.submit(w.cpu_then_pid, 15) for _ in range(12)]
        pids = [h.result(timeout=30)[0] for h in handles]
    in_parent = sum(p == os.getpid() for p in pids)
    assert in_parent == MIN_SAMPLES  # only the learning calls ran on threads
    assert rt.stats()["cpu_then_pid"]["route"] == "process"


def test_unpicklable_cpu_heavy_function_never_goes_to_a_process() -> None:
    def local_spin(ms: float) -> int:  # defined in a function: cannot be pickled
        return os.getpid()

    def heavy(ms: float) -> int:
        w.spin(ms)
        return local_spin(ms)

    with Runtime(threads=4, processes=2) as rt:
        pids = [rt.submit(heavy, 20).result(timeout=10) for _ in range(6)]
        figures = rt.stats()["heavy"]
    assert set(pids) == {os.getpid()}
    assert figures["route"] == "thread"
    assert figures["picklable"] is False
    assert "not picklable" in figures["reason"]


def test_kind_cpu_refuses_an_unpicklable_function_with_advice() -> None:
    with Runtime(threads=1, processes=1) as rt:
        render = bw.task(kind="cpu")(lambda scene: scene)
        with pytest.raises(NotPicklable) as info:
            rt.submit(render, 1)
    message = str(info.value)
    assert "not picklable (a lambda)" in message
    assert "kind='io'" in message


def test_unpicklable_arguments_fall_back_to_a_thread_under_auto() -> None:
    with Runtime(threads=2, processes=2) as rt:
        for _ in range(4):
            rt.submit(w.spin_with, None, 10).result(timeout=10)
        assert rt.stats()["spin_with"]["route"] == "process"
        assert rt.submit(w.spin_with, None, 10).result(timeout=10) != os.getpid()
        # A lock does not pickle: this call runs on a thread instead of failing.
        lock = threading.Lock()
        assert rt.submit(w.spin_with, lock, 10).result(timeout=10) == os.getpid()


def test_function_that_stops_being_cpu_heavy_moves_back() -> None:
    with Runtime(threads=4, processes=2) as rt:
        for _ in range(5):
            rt.submit(w.spin_or_sleep, "cpu", 15).result(timeout=10)
        assert rt.stats()["spin_or_sleep"]["route"] == "process"
        for _ in range(8):
            rt.submit(w.spin_or_sleep, "sleep", 15).result(timeout=10)
        figures = rt.stats()["spin_or_sleep"]
    assert figures["route"] == "thread"
    assert "mostly waits" in figures["reason"]


def test_tiny_function_runs_inline() -> None:
    with Runtime(threads=2, processes=1) as rt:
        for i in range(40):
            assert w.t_tiny(i).result(timeout=10) == i + 1
        figures = rt.stats()["t_tiny"]
    assert figures["route"] == "inline"


def test_routes_are_reported_for_every_kind() -> None:
    with Runtime(threads=2, processes=1) as rt:
        w.t_lookup("a").result(timeout=10)
        w.t_cpu_pid().result(timeout=10)
        rt.submit(bw.task(kind="io")(w.add), 1).result(timeout=10)
        rt.submit(bw.task(kind="inline")(w.pid)).result(timeout=10)
        routes = {name.rsplit(".", 1)[-1]: f["route"] for name, f in rt.stats().items()}
    assert routes == {"t_lookup": "loop", "t_cpu_pid": "process", "add": "thread", "pid": "inline"}
