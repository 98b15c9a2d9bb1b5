"""Per-call overhead of each runtime route against the raw primitive and against peers.

Every contender calls the same trivial function (``noop``), so what is timed is
the hand-off itself. Three routes, each against its raw primitive:

    loop route     await rt-task(...)          vs  await asyncio.create_task(...)
    thread route   await rt-task(...)          vs  await loop.run_in_executor(pool, ...)
                   and anyio.to_thread.run_sync, asgiref.sync_to_async, unsync
    process route  rt.submit(...).result()     vs  ProcessPoolExecutor(fork).submit(...).result()
                   and loky, anyio.to_process.run_sync, unsync(cpu_bound=True)

Two figures per contender: sequential latency (one call at a time, us per call;
ratio to the baseline, lower is better) and throughput with many calls in
flight (64 for threads and the loop, a burst of N for processes; ratio to the
baseline, higher is better). Contenders run side by side: every round is cut
in 10 slices and the contenders take turns slice by slice (the order rotating),
and each ratio is the median of the per-round ratios, so drift on a noisy
machine hits all of them alike. Goal: every boundwise route
within 1.25x of its raw primitive, and ahead of anyio, asgiref and unsync.

    python benchmarks/runtime_overhead.py            # 5 rounds, about a minute
    python benchmarks/runtime_overhead.py --quick    # 3 short rounds
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runtime_common as common

import boundwise as bw
from boundwise.runtime.api import Runtime

IN_FLIGHT = 64
SLICES = 10
GOAL = 1.25

io_noop = bw.task(kind="io")(common.noop)
cpu_noop = bw.task(kind="cpu")(common.noop)
loop_noop = bw.task(common.anoop)

Runner = Callable[[int], Awaitable[None]]


async def _run(fn: Callable[[int], Any], n: int) -> float:
    """Seconds ``fn(n)`` takes; a sync ``fn`` runs on a helper thread, off the loop."""
    if asyncio.iscoroutinefunction(fn):
        t0 = time.perf_counter()
        await fn(n)
        return time.perf_counter() - t0
    return await asyncio.get_running_loop().run_in_executor(None, _timed_call, fn, n)


def _timed_call(fn: Callable[[int], Any], n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    return time.perf_counter() - t0


# -- contenders: each is (sequential(n), burst(n)), async or sync -------------


def thread_contenders(rt: Runtime, pool: concurrent.futures.ThreadPoolExecutor) -> dict[str, Any]:
    import anyio.to_thread
    from asgiref.sync import sync_to_async
    from unsync import unsync

    noop = common.noop
    s2a = sync_to_async(noop, thread_sensitive=False)
    unsync_noop = unsync(noop)

    async def raw_seq(n: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n):
            await loop.run_in_executor(pool, noop, 1)

    async def raw_burst(n: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[loop.run_in_executor(pool, noop, 1) for _ in range(IN_FLIGHT)])

    async def bw_seq(n: int) -> None:
        for _ in range(n):
            await io_noop(1)

    async def bw_burst(n: int) -> None:
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[io_noop(1) for _ in range(IN_FLIGHT)])

    async def anyio_seq(n: int) -> None:
        for _ in range(n):
            await anyio.to_thread.run_sync(noop, 1)

    async def anyio_burst(n: int) -> None:
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[anyio.to_thread.run_sync(noop, 1) for _ in range(IN_FLIGHT)])

    async def asgiref_seq(n: int) -> None:
        for _ in range(n):
            await s2a(1)

    async def asgiref_burst(n: int) -> None:
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[s2a(1) for _ in range(IN_FLIGHT)])

    # unsync runs coroutines on its own loop thread: drive it from there.
    @unsync
    async def unsync_seq_driver(n: int) -> None:
        for _ in range(n):
            await unsync_noop(1)

    @unsync
    async def unsync_burst_driver(n: int) -> None:
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[unsync_noop(1) for _ in range(IN_FLIGHT)])

    def unsync_seq(n: int) -> None:
        unsync_seq_driver(n).result()

    def unsync_burst(n: int) -> None:
        unsync_burst_driver(n).result()

    return {
        "loop.run_in_executor (baseline)": (raw_seq, raw_burst),
        "boundwise thread route": (bw_seq, bw_burst),
        "anyio.to_thread.run_sync": (anyio_seq, anyio_burst),
        "asgiref.sync_to_async": (asgiref_seq, asgiref_burst),
        "unsync": (unsync_seq, unsync_burst),
    }


def loop_contenders() -> dict[str, Any]:
    anoop = common.anoop

    async def raw_seq(n: int) -> None:
        for _ in range(n):
            await asyncio.create_task(anoop(1))

    async def raw_burst(n: int) -> None:
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[asyncio.create_task(anoop(1)) for _ in range(IN_FLIGHT)])

    async def bw_seq(n: int) -> None:
        for _ in range(n):
            await loop_noop(1)

    async def bw_burst(n: int) -> None:
        for _ in range(n // IN_FLIGHT):
            await asyncio.gather(*[loop_noop(1) for _ in range(IN_FLIGHT)])

    return {
        "asyncio.create_task (baseline)": (raw_seq, raw_burst),
        "boundwise loop route": (bw_seq, bw_burst),
    }


def process_contenders(rt: Runtime, workers: int) -> tuple[dict[str, Any], Callable[[], None]]:
    import anyio.to_process
    import loky
    from unsync import unsync

    noop = common.noop
    ppe = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork")
    )
    lk = loky.get_reusable_executor(max_workers=workers)
    unsync_cpu = unsync(cpu_bound=True)(noop)
    unsync._process_executor = concurrent.futures.ProcessPoolExecutor(  # its default, sized
        workers, mp_context=multiprocessing.get_context("fork")
    )

    # Sync runners (they block): measure() runs them on a thread, off the loop.
    def executor_pair(ex: Any) -> tuple[Any, Any]:
        def seq(n: int) -> None:
            for _ in range(n):
                ex.submit(noop, 1).result()

        def burst(n: int) -> None:
            for f in [ex.submit(noop, 1) for _ in range(n)]:
                f.result()

        return seq, burst

    def bw_seq(n: int) -> None:
        for _ in range(n):
            rt.submit(cpu_noop, 1).result()

    def bw_burst(n: int) -> None:
        for h in [rt.submit(cpu_noop, 1) for _ in range(n)]:
            h.result()

    async def anyio_seq(n: int) -> None:
        for _ in range(n):
            await anyio.to_process.run_sync(noop, 1)

    async def anyio_burst(n: int) -> None:
        limiter = anyio.CapacityLimiter(workers)
        await asyncio.gather(
            *[anyio.to_process.run_sync(noop, 1, limiter=limiter) for _ in range(n)]
        )

    def unsync_seq(n: int) -> None:
        for _ in range(n):
            unsync_cpu(1).result()

    def unsync_burst(n: int) -> None:
        for f in [unsync_cpu(1) for _ in range(n)]:
            f.result()

    def close() -> None:
        ppe.shutdown()
        lk.shutdown()
        unsync.process_executor.shutdown()

    return {
        "ProcessPoolExecutor fork (baseline)": executor_pair(ppe),
        "boundwise process route": (bw_seq, bw_burst),
        "loky": executor_pair(lk),
        "anyio.to_process.run_sync": (anyio_seq, anyio_burst),
        "unsync(cpu_bound=True)": (unsync_seq, unsync_burst),
    }, close


# -- measuring --------------------------------------------------------------


async def measure(
    title: str, contenders: dict[str, Any], n_seq: int, n_burst: int, rounds: int, burst_label: str
) -> str:
    names = list(contenders)
    baseline = names[0]
    for name in names:  # warm up: threads and processes started, imports done
        seq, burst = contenders[name]
        await _run(seq, min(20, n_seq))
        await _run(burst, min(IN_FLIGHT, n_burst))
    seq_t: dict[str, list[float]] = {n: [] for n in names}
    burst_t: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        # Each round is cut in slices, the contenders taking turns slice by slice,
        # so a burst of load from other programs hits all of them alike.
        for name in names:
            seq_t[name].append(0.0)
            burst_t[name].append(0.0)
        for i in range(SLICES):
            k = (r * SLICES + i) % len(names)
            for name in names[k:] + names[:k]:
                seq, burst = contenders[name]
                seq_t[name][-1] += await _run(seq, n_seq // SLICES)
                burst_t[name][-1] += await _run(burst, n_burst // SLICES)
        common.progress(f"  {title}: round {r + 1}/{rounds}")
    rows = []
    for name in names:
        seq_ratio = common.median(
            [a / b for a, b in zip(seq_t[name], seq_t[baseline], strict=True)]
        )
        thr_ratio = common.median(
            [b / a for a, b in zip(burst_t[name], burst_t[baseline], strict=True)]
        )
        rows.append(
            [
                name,
                f"{common.median(seq_t[name]) / n_seq * 1e6:.1f}",
                f"{seq_ratio:.2f}x",
                f"{n_burst / common.median(burst_t[name]):,.0f}",
                f"{thr_ratio:.2f}x",
            ]
        )
    headers = [
        title,
        "us/call (sequential)",
        "time vs baseline",
        f"calls/s ({burst_label})",
        "throughput vs baseline",
    ]
    return common.table(headers, rows)


async def main_async(args: argparse.Namespace) -> None:
    q = args.quick
    rounds = args.rounds or (3 if q else 5)
    workers = os.cpu_count() or 2
    common.say("## boundwise runtime: per-call overhead\n")
    common.say(common.machine() + f"; {rounds} rounds; ratios are medians of per-round ratios\n")

    sections = set(args.section or ["thread", "loop", "process"])
    with Runtime(threads=IN_FLIGHT, processes=workers, max_pending=100_000) as rt:
        if "thread" in sections:
            await thread_section(rt, q, rounds)
        if "loop" in sections:
            await loop_section(q, rounds)
        if "process" in sections:
            await process_section(rt, q, rounds, workers)
    common.say(
        f"Goal: each boundwise route within {GOAL}x of its baseline's time per call "
        "(and at least 1/1.25 of its throughput), and faster than anyio, asgiref and unsync."
    )


async def thread_section(rt: Runtime, q: bool, rounds: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        text = await measure(
            "thread route (from async code)",
            thread_contenders(rt, pool),
            n_seq=500 if q else 2000,
            n_burst=IN_FLIGHT * (20 if q else 60),
            rounds=rounds,
            burst_label=f"{IN_FLIGHT} in flight",
        )
    common.say(text + "\n")


async def loop_section(q: bool, rounds: int) -> None:
    text = await measure(
        "loop route",
        loop_contenders(),
        n_seq=5000 if q else 20000,
        n_burst=IN_FLIGHT * (100 if q else 300),
        rounds=rounds,
        burst_label=f"{IN_FLIGHT} in flight",
    )
    common.say(text + "\n")


async def process_section(rt: Runtime, q: bool, rounds: int, workers: int) -> None:
    contenders, close = process_contenders(rt, workers)
    try:
        n_burst = 1000 if q else 5000
        text = await measure(
            f"process route ({workers} workers)",
            contenders,
            n_seq=300 if q else 1000,
            n_burst=n_burst,
            rounds=rounds,
            burst_label=f"burst of {n_burst}",
        )
    finally:
        close()
    common.say(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (fewer calls, 3 rounds)")
    parser.add_argument("--rounds", type=int, default=0, help="rounds (default 5, quick 3)")
    parser.add_argument(
        "--section",
        action="append",
        choices=["thread", "loop", "process"],
        help="run only this section (repeatable); default: all three",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
