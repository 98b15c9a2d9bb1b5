"""A write-ahead log: append 4 KiB records to a file, os.fsync after each one.

Each fsync waits until the disk has the data, so the thread mostly waits on the
file system. asyncio has no non-blocking file I/O; threads can overlap such waits.
The log is a temporary file, removed at the end.
expect: verdict=io-bound model=threads dominant=disk
"""

from __future__ import annotations

import os
import tempfile
import time

RECORDS = 8_000  # about 2 s where an fsync takes ~0.25 ms
RECORD = b"x" * 4095 + b"\n"
DEADLINE_S = 10.0  # guard: stop early on a very slow disk


def main() -> None:
    started = time.perf_counter()
    fd, path = tempfile.mkstemp(prefix="boundwise-disk-example-", suffix=".log")
    written = 0
    try:
        for _ in range(RECORDS):
            os.write(fd, RECORD)
            os.fsync(fd)  # durable before the next record: a wait on the disk
            written += 1
            if written % 100 == 0 and time.perf_counter() - started > DEADLINE_S:
                break
    finally:
        os.close(fd)
        os.unlink(path)
    elapsed = time.perf_counter() - started
    print(f"{written} records fsynced in {elapsed:.2f} s ({1000 * elapsed / written:.2f} ms each)")


if __name__ == "__main__":
    main()
