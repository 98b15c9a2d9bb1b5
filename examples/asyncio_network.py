"""An asyncio client that awaits a slow service 80 times, one request after another.

Each request is a minimal HTTP request sent with asyncio.open_connection to a local server
(examples/_server.py, a separate process) that answers after 20 ms. The event loop
just waits on its socket: asyncio is the right model, and gather() would overlap them.
expect: verdict=io-bound model=asyncio dominant=network
"""

from __future__ import annotations

import asyncio
import time

from _server import local_server

REQUESTS = 80
SERVER_DELAY_S = 0.02


async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")  # waits ~20 ms for the reply
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


async def client(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = 0
    try:
        for i in range(REQUESTS):
            body = await asyncio.wait_for(fetch(reader, writer, f"/item/{i}"), timeout=10)
            received += len(body)
    finally:
        writer.close()
        await writer.wait_closed()
    return received


def main() -> None:
    with local_server(delay=SERVER_DELAY_S) as port:
        started = time.perf_counter()
        received = asyncio.run(client(port))
        elapsed = time.perf_counter() - started
    print(f"{REQUESTS} requests, {received} bytes in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
