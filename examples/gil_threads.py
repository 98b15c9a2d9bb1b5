"""Four threads, each running a pure-Python loop (sum of digit squares).

Only the thread holding the GIL runs Python bytecode, so the threads take turns:
most of each thread's time is spent runnable but waiting for the GIL. More
threads do not help; processes (one GIL each) do.
expect: verdict=cpu-bound model=processes dominant=gil
"""

from __future__ import annotations

import threading
import time

THREADS = 4
NUMBERS_PER_THREAD = 1_100_000  # the whole run is about 2 s of CPU, shared by the threads
DEADLINE_S = 10.0  # guard: stop early on a very slow machine


def digit_square_sum(n: int) -> int:
    total = 0
    while n:
        n, digit = divmod(n, 10)
        total += digit * digit
    return total


def worker(index: int, results: list[int], started: float) -> None:
    total = 0
    for n in range(index, index + NUMBERS_PER_THREAD):
        total += digit_square_sum(n)
        if n % 10_000 == 0 and time.perf_counter() - started > DEADLINE_S:
            break
    results[index] = total


def main() -> None:
    started = time.perf_counter()
    results = [0] * THREADS
    threads = [
        threading.Thread(target=worker, args=(i, results, started), name=f"worker-{i}")
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    print(f"checksum {sum(results)} from {THREADS} threads in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
