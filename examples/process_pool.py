"""Pure-Python CPU tasks (longest Collatz chains) mapped over a 2-worker ProcessPoolExecutor.

The workers compute, each on its own core with its own GIL; the parent only hands
out tasks and waits for the results. Processes are already the right model here.
expect: verdict=cpu-bound model=processes dominant=cpu
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

WORKERS = 2
TASKS = 8
NUMBERS_PER_TASK = 75_000  # about 0.5 s of pure Python per task


def longest_chain(start: int) -> tuple[int, int]:
    """The number in [start, start + NUMBERS_PER_TASK) with the longest Collatz chain."""
    best, best_len = start, 0
    for n in range(max(start, 1), start + NUMBERS_PER_TASK):
        length, x = 1, n
        while x != 1:
            x = x // 2 if x % 2 == 0 else 3 * x + 1
            length += 1
        if length > best_len:
            best, best_len = n, length
    return best, best_len


def main() -> None:
    started = time.perf_counter()
    starts = [i * NUMBERS_PER_TASK for i in range(TASKS)]
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(longest_chain, starts, timeout=60))
    n, length = max(results, key=lambda r: r[1])
    print(
        f"longest chain below {TASKS * NUMBERS_PER_TASK}: {n} ({length} steps), "
        f"{time.perf_counter() - started:.2f} s with {WORKERS} processes"
    )


if __name__ == "__main__":
    main()
