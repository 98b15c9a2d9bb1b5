"""Four threads share one resource guarded by a threading.Lock.

Each thread repeatedly takes the lock and holds it for 10 ms of (simulated, sleeping)
work, so only one thread makes progress at a time and the others queue on the lock.
No execution model speeds this up: the shared resource serializes it.
expect: verdict=io-bound model=sync dominant=lock
"""

from __future__ import annotations

import threading
import time

THREADS = 4
ROUNDS_PER_THREAD = 45  # 4 x 45 x 10 ms = 1.8 s, serialized by the lock
HOLD_S = 0.01


def worker(lock: threading.Lock, counts: list[int], index: int) -> None:
    for _ in range(ROUNDS_PER_THREAD):
        with lock:  # the other threads wait here
            time.sleep(HOLD_S)  # e.g. a slow device that takes one command at a time
            counts[index] += 1


def main() -> None:
    started = time.perf_counter()
    lock = threading.Lock()
    counts = [0] * THREADS
    threads = [
        threading.Thread(target=worker, args=(lock, counts, i), name=f"client-{i}")
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    print(f"{sum(counts)} locked operations in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
