"""An asyncio service loop that fetches a record (10 ms away) and then scores it in Python.

Scoring is ~30 ms of pure-Python CPU run right on the event loop, so about 75% of
the time the loop is busy computing, not waiting. Keep asyncio for the I/O and send
the scoring to a process pool (loop.run_in_executor): a hybrid model.
expect: verdict=cpu-bound model=hybrid dominant=cpu
"""

from __future__ import annotations

import asyncio
import time

from _server import local_server

RECORDS = 50
SERVER_DELAY_S = 0.01
SCORE_ROUNDS = 260_000  # about 30 ms of pure Python per record


async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: int) -> bytes:
    writer.write(f"GET /record/{key} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")  # a short network wait (~10 ms)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


def score(record: bytes) -> int:
    """CPU-heavy pure Python: a rolling hash over the record, many times."""
    h = 0
    for i in range(SCORE_ROUNDS):
        h = (h * 31 + record[i % len(record)] + i) % 1_000_000_007
    return h


async def pipeline(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    total = 0
    try:
        for key in range(RECORDS):
            record = await asyncio.wait_for(fetch(reader, writer, key), timeout=10)
            total += score(record)  # blocks the event loop for ~30 ms
    finally:
        writer.close()
        await writer.wait_closed()
    return total


def main() -> None:
    with local_server(delay=SERVER_DELAY_S, body_size=256) as port:
        started = time.perf_counter()
        checksum = asyncio.run(pipeline(port))
        elapsed = time.perf_counter() - started
    print(f"{RECORDS} records scored (checksum {checksum}) in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
