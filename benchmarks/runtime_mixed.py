"""A mixed workload under kind="auto" against everything-on-threads and everything-on-processes.

Many pure-Python CPU calls (20-50 ms of CPU each) and many blocking I/O waits
(20-100 ms each), in a shuffled order, all submitted at once:

    boundwise        Runtime(threads=64, processes=cores), both functions kind="auto":
                     a fresh runtime every round, so learning and worker start-up count
    all threads      ThreadPoolExecutor(64)
    all processes    ProcessPoolExecutor(cores, fork)
    floor            only the CPU calls, on ProcessPoolExecutor(cores): what the cores
                     available in this run can do at best

The makespan (submit to last result) is compared with the ideal
``max(total CPU / cores, longest call)``. Goal: boundwise within 15% of the
ideal (on a shared machine, of the floor measured in the same run), and at
least 1.5x faster than all-threads and than all-processes.
Each figure is the median over the rounds, the variants taking turns.

    python benchmarks/runtime_mixed.py            # 80 CPU + 200 I/O calls, 3 rounds
    python benchmarks/runtime_mixed.py --quick    # 40 CPU + 100 I/O calls, 2 rounds
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runtime_common as common

import boundwise as bw
from boundwise.runtime.api import Runtime

GOAL_IDEAL = 1.15
GOAL_SPEEDUP = 1.5
THREADS = 64

crunch = bw.task(common.spin)  # kind="auto"
fetch = bw.task(common.wait)  # kind="auto"

Job = tuple[str, float]


def workload(n_cpu: int, n_io: int, seed: int = 7) -> list[Job]:
    rng = random.Random(seed)
    jobs = [("cpu", rng.uniform(20, 50)) for _ in range(n_cpu)]
    jobs += [("io", rng.uniform(20, 100)) for _ in range(n_io)]
    rng.shuffle(jobs)
    return jobs


def run_boundwise(jobs: list[Job], cores: int) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    with Runtime(threads=THREADS, processes=cores) as rt:
        handles = [rt.submit(crunch if kind == "cpu" else fetch, ms) for kind, ms in jobs]
        for h in handles:
            h.result(timeout=300)
        elapsed = time.perf_counter() - t0
        stats = rt.stats()
    return elapsed, stats


def run_executor(make: Callable[[], concurrent.futures.Executor], jobs: list[Job]) -> float:
    t0 = time.perf_counter()
    with make() as ex:
        futures = [ex.submit(common.spin if k == "cpu" else common.wait, ms) for k, ms in jobs]
        for f in futures:
            f.result(timeout=300)
        elapsed = time.perf_counter() - t0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 CPU + 100 I/O calls, 2 rounds")
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args()
    n_cpu, n_io = (40, 100) if args.quick else (80, 200)
    rounds = args.rounds or (2 if args.quick else 3)
    cores = os.cpu_count() or 1
    jobs = workload(n_cpu, n_io)
    total_cpu = sum(ms for k, ms in jobs if k == "cpu") / 1000
    longest = max(ms for _, ms in jobs) / 1000
    ideal = max(total_cpu / cores, longest)

    fork = multiprocessing.get_context("fork")
    variants: dict[str, Callable[[], float]] = {
        "boundwise (kind='auto')": lambda: 0.0,  # replaced below
        "all threads (ThreadPoolExecutor(64))": lambda: run_executor(
            lambda: concurrent.futures.ThreadPoolExecutor(THREADS), jobs
        ),
        f"all processes (ProcessPoolExecutor({cores}))": lambda: run_executor(
            lambda: concurrent.futures.ProcessPoolExecutor(cores, mp_context=fork), jobs
        ),
    }
    last_stats: dict[str, Any] = {}

    def bw_variant() -> float:
        elapsed, stats = run_boundwise(jobs, cores)
        last_stats.update(stats)
        return elapsed

    variants["boundwise (kind='auto')"] = bw_variant
    cpu_jobs = [job for job in jobs if job[0] == "cpu"]
    variants[f"floor: the CPU calls alone on ProcessPoolExecutor({cores})"] = lambda: run_executor(
        lambda: concurrent.futures.ProcessPoolExecutor(cores, mp_context=fork), cpu_jobs
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(variants[name]())
        common.progress(f"  round {r + 1}/{rounds}")

    bw_name = names[0]
    bw_time = common.median(times[bw_name])
    common.say("## boundwise runtime: mixed workload\n")
    common.say(
        common.machine()
        + f"; {n_cpu} CPU calls (20-50 ms CPU) + {n_io} I/O waits (20-100 ms), shuffled, "
        f"submitted at once; median of {rounds} rounds\n"
    )
    common.say(
        f"Ideal makespan: max(total CPU {total_cpu:.2f} s / {cores} cores, "
        f"longest call {longest * 1e3:.0f} ms) = {ideal:.2f} s\n"
    )
    floor_name = names[-1]
    floor = max(common.median(times[floor_name]), longest)
    rows = []
    for name in names:
        t = common.median(times[name])
        speedup = "-" if name in (bw_name, floor_name) else f"{t / bw_time:.2f}x"
        rows.append([name, f"{t:.2f}", f"{t / ideal:.2f}x", f"{t / floor:.2f}x", speedup])
    headers = ["variant", "makespan (s)", "vs ideal", "vs floor", "boundwise speedup"]
    common.say(common.table(headers, rows) + "\n")
    common.say(
        "The floor is what the CPU calls alone take on a raw process pool in this run: "
        "on a shared machine it is above the ideal when other programs hold cores.\n"
    )
    routes = [
        [name.rsplit(".", 1)[-1], f["calls"], f["route"], f["recent_cpu_ratio"], f["reason"]]
        for name, f in last_stats.items()
    ]
    common.say(common.table(["function", "calls", "route", "cpu/wall", "why"], routes) + "\n")
    common.say(
        f"Goal: boundwise within {GOAL_IDEAL}x of the ideal, and at least {GOAL_SPEEDUP}x "
        "faster than all threads and than all processes."
    )


if __name__ == "__main__":
    main()
