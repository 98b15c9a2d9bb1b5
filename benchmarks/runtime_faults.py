"""Faults: what a worker pool does after a crash, a timeout and a cancellation.

For each contender, with a pool of one worker process (so a hung or dead
worker is the whole pool):

    crash    a task calls os._exit(13) with 5 tasks queued behind it: what does
             it raise, do the queued tasks complete (time from the crash to
             the first of them), and do later tasks on the same pool object run?
    timeout  a task sleeps 30 s under a 0.5 s timeout (each tool's own way):
             is the hung work killed, and does the next task run within 3 s?
    cancel   a running 30 s task is cancelled: is its worker process killed?

Contenders: ProcessPoolExecutor (fork), loky, unsync(cpu_bound=True),
anyio.to_process.run_sync (cancellable=True), boundwise (kind="cpu"). The
figures are behaviours plus the time the pool took to serve again, measured
in this run; the goal is that boundwise does better than every one of them.

    python benchmarks/runtime_faults.py            # every scenario, 3 later tasks each
    python benchmarks/runtime_faults.py --quick    # same scenarios, 1 later task
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_process
import anyio.to_thread
import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runtime_common as common

import boundwise as bw
from boundwise.runtime.api import Runtime

TIMEOUT = 0.5
QUEUED = 5
NEXT_WAIT = 3.0

bw_die = bw.task(kind="cpu")(common.die)
bw_noop = bw.task(kind="cpu")(common.noop)
bw_pid = bw.task(kind="cpu")(common.pid)
bw_hang = bw.task(kind="cpu", timeout=TIMEOUT)(common.hang)
bw_hang_free = bw.task(kind="cpu")(common.hang)


class Outcome:
    def __init__(self) -> None:
        self.crash_error = "-"
        self.queued = "-"
        self.after_crash = "-"
        self.recovery = "-"
        self.timeout_error = "-"
        self.hung_killed = "-"
        self.after_timeout = "-"
        self.cancel_killed = "-"


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _settle(pid: int | None) -> str:
    """'yes' if the process running the hung work is gone within a second."""
    deadline = time.monotonic() + 1.0
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "no (still running)" if _alive(pid) else "yes"


def _kill(pid: int | None) -> None:
    """Clean up after a contender that left its hung worker running."""
    if pid is None or not _alive(pid):
        return
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        proc.kill()
        proc.wait(3)


def _count(futures: list[Any], crashed_at: float) -> tuple[str, str]:
    """How many queued tasks succeed, and how long after the crash the first one did."""
    ok = 0
    first: float | None = None
    for f in futures:
        with contextlib.suppress(BaseException):
            f.result(timeout=30)
            ok += 1
            first = first or time.perf_counter() - crashed_at
    return f"{ok}/{len(futures)}", "-" if first is None else f"{first * 1e3:.1f} ms"


def _later(submit: Callable[[], Any], n: int) -> tuple[str, str]:
    """Run ``n`` later tasks: how many succeed, and the time to the first success."""
    ok = 0
    first: float | None = None
    t0 = time.perf_counter()
    errors: set[str] = set()
    for _ in range(n):
        try:
            submit()
            ok += 1
            if first is None:
                first = time.perf_counter() - t0
        except BaseException as exc:
            errors.add(_name(exc))
    text = f"{ok}/{n}" + (f" ({', '.join(sorted(errors))})" if errors else "")
    return text, "-" if first is None else f"{first * 1e3:.0f} ms"


# -- executors (ProcessPoolExecutor, loky, unsync) ----------------------------


def executor_case(make: Callable[[], Any], n: int, submit_name: str = "submit") -> Outcome:
    out = Outcome()
    ex = make()
    submit = getattr(ex, submit_name)
    pid = submit(common.pid).result(timeout=30)
    dying = submit(common.die)
    queued = [submit(common.noop, 1) for _ in range(QUEUED)]
    try:
        dying.result(timeout=30)
    except BaseException as exc:
        out.crash_error = _name(exc)
    out.queued, out.recovery = _count(queued, time.perf_counter())
    out.after_crash, _ = _later(lambda: submit(common.noop, 1).result(timeout=30), n)
    with contextlib.suppress(BaseException):
        ex.shutdown(wait=False, cancel_futures=True)

    ex = make()
    submit = getattr(ex, submit_name)
    pid = submit(common.pid).result(timeout=30)
    future = submit(common.hang)
    try:
        future.result(timeout=TIMEOUT)
    except BaseException as exc:
        out.timeout_error = _name(exc)
    future.cancel()
    out.hung_killed = _settle(pid)
    try:
        submit(common.noop, 1).result(timeout=NEXT_WAIT)
        out.after_timeout = "runs"
    except BaseException as exc:
        out.after_timeout = f"blocked ({_name(exc)} after {NEXT_WAIT:g} s)"
    _kill(pid)
    with contextlib.suppress(BaseException):
        ex.shutdown(wait=False, cancel_futures=True)

    ex = make()
    submit = getattr(ex, submit_name)
    pid = submit(common.pid).result(timeout=30)
    future = submit(common.hang)
    time.sleep(0.2)
    cancelled = future.cancel()
    out.cancel_killed = _settle(pid) + ("" if cancelled else " (cancel() returned False)")
    _kill(pid)
    with contextlib.suppress(BaseException):
        ex.shutdown(wait=False, cancel_futures=True)
    return out


def ppe() -> Any:
    return concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))


def loky_executor() -> Any:
    import loky

    return loky.get_reusable_executor(max_workers=1, reuse=False, kill_workers=True)


class _Unsync:
    """unsync(cpu_bound=True) behind the executor interface used above."""

    def __init__(self) -> None:
        from unsync import unsync

        unsync._process_executor = concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("fork")
        )
        self._unsync = unsync
        self._fns = {
            f.__name__: unsync(cpu_bound=True)(f)
            for f in (common.pid, common.die, common.noop, common.hang)
        }

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return _UnsyncFuture(self._fns[fn.__name__](*args))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._unsync._process_executor.shutdown(wait=wait, cancel_futures=cancel_futures)


class _UnsyncFuture:
    def __init__(self, unfuture: Any) -> None:
        self._u = unfuture

    def result(self, timeout: float | None = None) -> Any:
        return self._u.result(timeout=timeout)

    def cancel(self) -> bool:
        return bool(self._u.concurrent_future.cancel())


# -- anyio ------------------------------------------------------------------------


def anyio_case(n: int) -> Outcome:
    out = Outcome()
    limiter = anyio.CapacityLimiter(1)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_process.run_sync(fn, *args, cancellable=True, limiter=limiter)

    async def main() -> None:
        await run(common.pid)
        results: list[bool] = []

        times: dict[str, float] = {}

        async def queued_noop() -> None:
            try:
                await run(common.noop, 1)
                results.append(True)
                times.setdefault("first", time.perf_counter())
            except Exception:
                results.append(False)

        async def dying() -> None:
            try:
                await run(common.die)
            except BaseException as exc:
                times["crash"] = time.perf_counter()
                out.crash_error = _name(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(dying)
            await anyio.sleep(0)
            for _ in range(QUEUED):
                tg.start_soon(queued_noop)
        out.queued = f"{sum(results)}/{QUEUED}"
        if "first" in times and "crash" in times:
            out.recovery = f"{(times['first'] - times['crash']) * 1e3:.1f} ms"
        ok = 0
        first: float | None = None
        t0 = time.perf_counter()
        for _ in range(n):
            with contextlib.suppress(Exception):
                await run(common.noop, 1)
                ok += 1
                first = first or time.perf_counter() - t0
        out.after_crash = f"{ok}/{n}"

        pid = await run(common.pid)
        try:
            with anyio.fail_after(TIMEOUT):
                await run(common.hang)
        except BaseException as exc:
            out.timeout_error = _name(exc)
        out.hung_killed = await anyio.to_thread.run_sync(_settle, pid)
        try:
            with anyio.fail_after(NEXT_WAIT):
                await run(common.noop, 1)
            out.after_timeout = "runs"
        except BaseException as exc:
            out.after_timeout = f"blocked ({_name(exc)})"

        pid = await run(common.pid)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, common.hang)
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
        out.cancel_killed = await anyio.to_thread.run_sync(_settle, pid)

    asyncio.run(main())
    return out


# -- boundwise --------------------------------------------------------------------


def boundwise_case(n: int) -> Outcome:
    out = Outcome()
    with Runtime(threads=4, processes=1) as rt:
        rt.submit(bw_pid).result(timeout=30)
        dying = rt.submit(bw_die)
        queued = [rt.submit(bw_noop, 1) for _ in range(QUEUED)]
        try:
            dying.result(timeout=30)
        except BaseException as exc:
            out.crash_error = _name(exc)
        out.queued, out.recovery = _count(queued, time.perf_counter())
        out.after_crash, _ = _later(lambda: rt.submit(bw_noop, 1).result(timeout=30), n)

        pid = rt.submit(bw_pid).result(timeout=30)
        try:
            rt.submit(bw_hang).result(timeout=30)
        except BaseException as exc:
            out.timeout_error = _name(exc)
        out.hung_killed = _settle(pid)
        try:
            rt.submit(bw_noop, 1).result(timeout=NEXT_WAIT)
            out.after_timeout = "runs"
        except BaseException as exc:
            out.after_timeout = f"blocked ({_name(exc)})"

        pid = rt.submit(bw_pid).result(timeout=30)
        handle = rt.submit(bw_hang_free)
        time.sleep(0.2)
        cancelled = handle.cancel()
        out.cancel_killed = _settle(pid) + ("" if cancelled else " (cancel() returned False)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one later task per scenario")
    args = parser.parse_args()
    n = 1 if args.quick else 3

    cases: dict[str, Callable[[], Outcome]] = {
        "ProcessPoolExecutor (fork)": lambda: executor_case(ppe, n),
        "loky": lambda: executor_case(loky_executor, n),
        "unsync(cpu_bound=True)": lambda: executor_case(_Unsync, n),
        "anyio.to_process (cancellable)": lambda: anyio_case(n),
        "boundwise (kind='cpu')": lambda: boundwise_case(n),
    }
    common.say("## boundwise runtime: faults\n")
    common.say(common.machine() + "; one worker process per pool\n")
    rows = []
    for name, case in cases.items():
        common.progress(f"  {name} ...")
        o = case()
        rows.append(
            [
                name,
                o.crash_error,
                o.queued,
                o.after_crash,
                o.recovery,
                o.timeout_error,
                o.hung_killed,
                o.after_timeout,
                o.cancel_killed,
            ]
        )
    headers = [
        "contender",
        "crashed task raises",
        "tasks queued behind it ok",
        "later tasks ok (same pool)",
        "crash to next result",
        f"timeout ({TIMEOUT:g} s) raises",
        "hung work killed",
        "next task after timeout",
        "cancel kills running work",
    ]
    common.say(common.table(headers, rows))
    common.say(
        "\nGoal: boundwise fails only the crashed task, kills hung and cancelled work, "
        "and keeps serving, where each other contender falls short on at least one."
    )


if __name__ == "__main__":
    main()
