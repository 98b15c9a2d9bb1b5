"""A tiny local HTTP server that answers every request after a fixed delay.

The network examples start it as a *separate process* (see ``local_server``), so
its own threads and event loop stay outside the profile: what the example sees is
a socket that answers after ``--delay`` seconds, like a slow remote service.

Run it by hand:  python examples/_server.py --delay 0.02   (prints "PORT <n>")
It speaks just enough HTTP/1.1 (keep-alive, Content-Length) for http.client,
urllib and hand-written asyncio clients. Not an example to profile.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# Only the helper below runs inside the examples; keep their imports light and
# import asyncio in the server process only.


@contextlib.contextmanager
def local_server(delay: float, body_size: int = 64) -> Iterator[int]:
    """Start the server in a child process; yield its port; stop it on exit (even Ctrl-C)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--delay",
            str(delay),
            "--body-size",
            str(body_size),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "PORT 12345", printed once it listens
        if not line.startswith("PORT "):
            raise RuntimeError(f"local server did not start (said {line!r})")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _serve(delay: float, body_size: int, max_seconds: float) -> None:
    import asyncio

    body = (b"0123456789abcdef" * (body_size // 16 + 1))[:body_size]
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # one request per iteration on a kept-alive connection
                request = await reader.readuntil(b"\r\n\r\n")
                if not request:
                    break
                await asyncio.sleep(delay)  # the "slow service"
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        async with server:
            # Bounded life: a forgotten server never outlives its example for long.
            await asyncio.sleep(max_seconds)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02, help="seconds before each reply")
    parser.add_argument("--body-size", type=int, default=64, help="bytes in each reply body")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop after this long")
    args = parser.parse_args()
    _serve(args.delay, args.body_size, args.max_seconds)
