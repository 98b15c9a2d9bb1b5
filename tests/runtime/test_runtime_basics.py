"""Calling tasks from sync and async code, map, stats."""

from __future__ import annotations

import asyncio
import os

import pytest
import runtime_work as w

import boundwise as bw
from boundwise.runtime.api import Handle, Runtime

pytestmark = pytest.mark.timeout(60)


def test_sync_call_returns_a_handle_with_the_result() -> None:
    with Runtime(threads=4, processes=1) as rt:
        handle = w.t_nap(0.01)
        assert isinstance(handle, Handle)
        assert handle.result(timeout=10) == 0.01
        assert handle.done()
        assert rt.stats()["t_nap"]["calls"] == 1


def test_same_task_awaited_from_async_code() -> None:
    async def main() -> list[object]:
        return list(await asyncio.gather(w.t_nap(0.01), w.t_lookup("k"), w.t_cpu_pid()))

    with Runtime(threads=4, processes=1):
        nap, key, child = asyncio.run(main())
    assert nap == 0.01
    assert key == "K"
    assert child != os.getpid()


def test_coroutine_task_from_sync_code_runs_on_a_background_loop() -> None:
    with Runtime(threads=2, processes=1) as rt:
        assert w.t_lookup("abc").result(timeout=10) == "ABC"
        assert rt.stats()["t_lookup"]["route"] == "loop"


def test_handles_made_in_async_code_are_asyncio_futures() -> None:
    async def main() -> None:
        coroutine_call = w.t_lookup("x")
        assert isinstance(coroutine_call, asyncio.Task)  # runs on this very loop
        assert isinstance(coroutine_call, Handle)
        thread_call = w.t_nap(0.05)
        assert asyncio.isfuture(thread_call)
        assert isinstance(thread_call, Handle)
        with pytest.raises(RuntimeError, match="await"):
            thread_call.result()  # would block the loop
        assert await coroutine_call == "X"
        assert await thread_call == 0.05
        assert thread_call.result() == 0.05  # once done, result() is fine

    with Runtime(threads=2, processes=1):
        asyncio.run(main())


def test_submit_plain_functions_and_keyword_arguments() -> None:
    with Runtime(threads=2, processes=1) as rt:
        assert rt.submit(w.add, 1, b=2).result(timeout=10) == 3
        assert "add" in rt.stats()
        assert rt.stats()[w.add]["calls"] == 1


def test_map_is_ordered_lazy_and_bounded() -> None:
    consumed: list[int] = []

    def items() -> object:
        for i in range(20):
            consumed.append(i)
            yield i

    with Runtime(threads=8, processes=1):
        results = bw.map(w.add, items(), concurrency=3)
        assert consumed == []  # lazy: nothing read before iteration
        first = next(iter(results))
        assert first == 0
        assert len(consumed) <= 4  # at most the window plus the refill
        rest = list(results)
    assert [first, *rest] == list(range(20))


def test_map_async_iteration() -> None:
    async def main() -> list[int]:
        return [x async for x in bw.map(w.add, range(10), concurrency=4)]

    with Runtime(threads=4, processes=1):
        assert asyncio.run(main()) == list(range(10))


def test_runtime_map_raises_the_first_failure_and_cancels_the_rest() -> None:
    with Runtime(threads=2, processes=1) as rt:
        results = rt.map(w.fail, ["a", "b", "c"], concurrency=2)
        with pytest.raises(KeyError, match="a"):
            list(results)


def test_stats_report_route_ratio_and_percentiles() -> None:
    with Runtime(threads=4, processes=2) as rt:
        for _ in range(3):
            w.t_nap(0.02).result(timeout=10)
        figures = rt.stats()["t_nap"]
    assert figures["route"] == "thread"
    assert figures["calls"] == 3
    assert figures["cpu_ratio"] < 0.3
    assert figures["p50_s"] >= 0.02
    assert figures["p99_s"] >= figures["p50_s"]
    assert figures["errors"] == 0


def test_default_runtime_is_used_outside_a_with_block() -> None:
    assert w.t_tiny(1).result(timeout=10) == 2
    assert bw.default_runtime().stats()["t_tiny"]["calls"] == 1


def test_bad_options_explain_themselves() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        bw.task(kind="gpu")(w.add)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        bw.task(timeout=0)(w.add)
    with pytest.raises(TypeError, match="coroutine"):
        bw.task(kind="async")(w.add)


def test_closed_runtime_refuses_new_calls() -> None:
    rt = Runtime(threads=1, processes=1)
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.submit(w.add, 1)


def test_coroutine_retries_and_errors_are_counted() -> None:
    async def main() -> str:
        return await w.t_flaky_coroutine("a")

    with Runtime(threads=1, processes=1) as rt:
        assert asyncio.run(main()) == "ok"
        figures = rt.stats()["t_flaky_coroutine"]
    assert figures["retries"] == 2
    assert figures["errors"] == 2


def test_inline_task_raises_in_the_caller() -> None:
    with Runtime(threads=1, processes=1):
        handle = w.t_inline_fail()
        assert handle.done()  # ran in the caller, already finished
        with pytest.raises(LookupError, match="inline"):
            handle.result()


def test_async_with_runtime_and_process_map() -> None:
    async def main() -> list[int]:
        async with Runtime(threads=2, processes=2) as rt:
            cpu_add = bw.task(kind="cpu")(w.add)
            return [x async for x in rt.map(cpu_add, range(12), concurrency=4)]

    assert asyncio.run(main()) == list(range(12))


def test_exports_from_the_package() -> None:
    names = ["task", "map", "Runtime", "Handle", "default_runtime"]
    names += ["WorkerCrashed", "TaskTimeout", "RemoteTraceback"]
    for name in names:
        assert getattr(bw, name) is not None
    assert issubclass(bw.TaskTimeout, TimeoutError)


def test_task_in_a_class_binds_like_a_method() -> None:
    with Runtime(threads=1, processes=1):
        assert w.Shop("bob").greet("ann").result(timeout=10) == "bob greets ann"
