"""Two threads hashing and compressing large in-memory buffers (hashlib, zlib).

hashlib and zlib release the GIL while they work on big buffers, so both threads
run native code on separate cores at the same time. Threads are enough here: no
need to pay for processes and for copying the data to them.
expect: verdict=cpu-bound model=threads dominant=cpu
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib

THREADS = 2
BUFFER_MB = 16
ROUNDS = 64  # per thread; about 2 s in all with one core per thread
DEADLINE_S = 10.0  # guard: stop early on a very slow machine


def worker(index: int, digests: list[str], started: float) -> None:
    # Random bytes give zlib real work; one 2 MB block repeated keeps start-up short.
    block = os.urandom(BUFFER_MB * 2**20 // 8)
    data = memoryview(block * 8)
    digest = hashlib.sha256()
    for _ in range(ROUNDS):
        digest.update(data)  # GIL released for the whole 16 MB
        digest.update(zlib.compress(data[: 2**20], 1))  # so is zlib's
        if time.perf_counter() - started > DEADLINE_S:
            break
    digests[index] = digest.hexdigest()[:12]


def main() -> None:
    started = time.perf_counter()
    digests = [""] * THREADS
    threads = [
        threading.Thread(target=worker, args=(i, digests, started), name=f"hasher-{i}")
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"digests {digests} in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
