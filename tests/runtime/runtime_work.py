"""Module-level functions the tests send to threads and processes (they must pickle)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from pathlib import Path

import boundwise as bw


def spin(ms: float) -> int:
    """Pure-Python CPU work for about ``ms`` milliseconds."""
    end = time.thread_time() + ms / 1000
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


def add(a: int, b: int = 0) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail(message: str) -> None:
    raise KeyError(message)


def hang() -> None:
    time.sleep(120)


def exit_now(code: int = 7) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    ctypes.string_at(0)


def crash_first_time(marker: str) -> str:
    """Dies the first time it runs (leaving ``marker``), succeeds the next time."""
    path = Path(marker)
    if not path.exists():
        path.write_text("crashed once")
        os._exit(3)
    return "second try"


def fail_first_time(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise ValueError("first try fails")
    return "second try"


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}-{b}")
        self.lock = __import__("threading").Lock()


def raise_unpicklable() -> None:
    raise Unpicklable(1, 2)


@bw.task
def t_spin(ms: float) -> int:
    return spin(ms)


@bw.task
def t_nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@bw.task
async def t_lookup(key: str) -> str:
    await asyncio.sleep(0.01)
    return key.upper()


@bw.task(kind="cpu")
def t_cpu_pid() -> int:
    return os.getpid()


@bw.task(kind="cpu")
def t_cpu_fail(message: str) -> None:
    raise KeyError(message)


@bw.task(kind="cpu", timeout=0.5)
def t_cpu_hang() -> None:
    time.sleep(120)


@bw.task(kind="io", timeout=0.3)
def t_io_slow() -> str:
    time.sleep(1.0)
    return "late"


@bw.task(kind="async", timeout=0.2)
async def t_async_hang() -> None:
    await asyncio.sleep(60)


@bw.task(kind="cpu", retries=1)
def t_crash_once(marker: str) -> str:
    return crash_first_time(marker)


@bw.task(kind="io", retries=2)
def t_fail_once(marker: str) -> str:
    return fail_first_time(marker)


@bw.task(kind="cpu", retries=1, timeout=0.5)
def t_hang_then_ok(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("hung once")
        time.sleep(120)
    return "second try"


@bw.task
def t_tiny(x: int) -> int:
    return x + 1


def cpu_then_pid(ms: float) -> tuple[int, int]:
    """Spin for ``ms`` ms of CPU; return (pid, iterations)."""
    return os.getpid(), spin(ms)


def spin_or_sleep(mode: str, ms: float) -> int:
    if mode == "cpu":
        return spin(ms)
    time.sleep(ms / 1000)
    return 0


def fetch(port: int, payload: bytes) -> bytes:
    """Blocking request/response over a real TCP socket."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.strip()


async def afetch(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload + b"\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return line.strip()


def spin_with(obj: object, ms: float) -> int:
    """CPU work that takes an extra argument (which may not pickle); returns the pid."""
    spin(ms)
    return os.getpid()


_flaky_calls: dict[str, int] = {}


@bw.task(retries=2)
async def t_flaky_coroutine(key: str) -> str:
    _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
    if _flaky_calls[key] < 3:
        raise ConnectionError("try again")
    return "ok"


@bw.task(kind="inline")
def t_inline_fail() -> None:
    raise LookupError("inline")


class Shop:
    """A task defined in a class body binds like a method."""

    def __init__(self, name: str) -> None:
        self.name = name

    @bw.task(kind="io")
    def greet(self, who: str) -> str:
        return f"{self.name} greets {who}"
