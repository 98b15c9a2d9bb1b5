"""What the kernel says a thread is doing: on a CPU, or blocked in which call.

Linux exposes, per thread, ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds on a CPU
and waiting for one), ``syscall`` (the system call it is blocked in, with arguments)
and ``wchan`` (the kernel function it sleeps in). Reading them costs a few
microseconds and needs no cooperation from the thread.

The reads go through ``ctypes.PyDLL``, which keeps the GIL held: a sampler that let
go of the GIL in the middle of a sample would let the threads it measures run and
change state under it, and would pay a GIL hand-off on every read.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from dataclasses import dataclass
from typing import Final

_BUF_SIZE: Final = 512
TICK_S: Final = 1 / os.sysconf("SC_CLK_TCK")

# Syscall numbers of the calls a blocked thread is commonly found in.
_X86_64: dict[int, str] = {
    0: "read",
    1: "write",
    2: "open",
    4: "stat",
    5: "fstat",
    6: "lstat",
    7: "poll",
    17: "pread64",
    18: "pwrite64",
    19: "readv",
    20: "writev",
    23: "select",
    26: "msync",
    34: "pause",
    35: "nanosleep",
    40: "sendfile",
    42: "connect",
    43: "accept",
    44: "sendto",
    45: "recvfrom",
    46: "sendmsg",
    47: "recvmsg",
    61: "wait4",
    73: "flock",
    74: "fsync",
    75: "fdatasync",
    76: "truncate",
    77: "ftruncate",
    82: "rename",
    83: "mkdir",
    84: "rmdir",
    87: "unlink",
    128: "rt_sigtimedwait",
    130: "rt_sigsuspend",
    162: "sync",
    202: "futex",
    208: "io_getevents",
    217: "getdents64",
    220: "semtimedop",
    230: "clock_nanosleep",
    232: "epoll_wait",
    247: "waitid",
    257: "openat",
    262: "newfstatat",
    263: "unlinkat",
    264: "renameat",
    270: "pselect6",
    271: "ppoll",
    275: "splice",
    277: "sync_file_range",
    281: "epoll_pwait",
    285: "fallocate",
    288: "accept4",
    295: "preadv",
    296: "pwritev",
    299: "recvmmsg",
    306: "syncfs",
    307: "sendmmsg",
    318: "getrandom",
    326: "copy_file_range",
    332: "statx",
    426: "io_uring_enter",
    441: "epoll_pwait2",
}
_AARCH64: dict[int, str] = {
    4: "io_getevents",
    22: "epoll_pwait",
    32: "flock",
    34: "mkdirat",
    35: "unlinkat",
    38: "renameat",
    46: "ftruncate",
    47: "fallocate",
    56: "openat",
    61: "getdents64",
    63: "read",
    64: "write",
    65: "readv",
    66: "writev",
    67: "pread64",
    68: "pwrite64",
    69: "preadv",
    70: "pwritev",
    71: "sendfile",
    72: "pselect6",
    73: "ppoll",
    76: "splice",
    79: "newfstatat",
    80: "fstat",
    81: "sync",
    82: "fsync",
    83: "fdatasync",
    84: "sync_file_range",
    95: "waitid",
    98: "futex",
    101: "nanosleep",
    115: "clock_nanosleep",
    133: "rt_sigsuspend",
    137: "rt_sigtimedwait",
    192: "semtimedop",
    202: "accept",
    203: "connect",
    206: "sendto",
    207: "recvfrom",
    211: "sendmsg",
    212: "recvmsg",
    227: "msync",
    242: "accept4",
    243: "recvmmsg",
    260: "wait4",
    267: "syncfs",
    269: "sendmmsg",
    278: "getrandom",
    285: "copy_file_range",
    291: "statx",
    426: "io_uring_enter",
    441: "epoll_pwait2",
}
SYSCALL_NAMES: Final[dict[int, str]] = {
    "x86_64": _X86_64,
    "amd64": _X86_64,
    "aarch64": _AARCH64,
    "arm64": _AARCH64,
}.get(os.uname().machine.lower(), {})

#: Syscalls whose first argument is the file descriptor waited on.
FD_SYSCALLS: Final = frozenset(
    {
        "read",
        "write",
        "pread64",
        "pwrite64",
        "readv",
        "writev",
        "preadv",
        "pwritev",
        "sendfile",
        "splice",
        "recvfrom",
        "recvmsg",
        "recvmmsg",
        "sendto",
        "sendmsg",
        "sendmmsg",
        "connect",
        "accept",
        "accept4",
        "fsync",
        "fdatasync",
        "sync_file_range",
        "ftruncate",
        "fallocate",
        "getdents64",
        "fstat",
        "flock",
    }
)


class _Libc:
    """libc entry points called with the GIL held (see module docstring)."""

    def __init__(self) -> None:
        lib = ctypes.PyDLL(None, use_errno=True)
        self.open = lib.open
        self.open.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.open.restype = ctypes.c_int
        self.pread = lib.pread
        self.pread.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
        self.pread.restype = ctypes.c_ssize_t
        self.close = lib.close
        self.close.argtypes = [ctypes.c_int]
        self.readlink = lib.readlink
        self.readlink.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        self.readlink.restype = ctypes.c_ssize_t
        self.buf = ctypes.create_string_buffer(_BUF_SIZE)


_libc: _Libc | None = None


def _lib() -> _Libc:
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def open_proc(path: str) -> int:
    """Open a /proc file for repeated reads; -1 when it cannot be opened."""
    return int(_lib().open(path.encode(), os.O_RDONLY | os.O_CLOEXEC))


def read_proc(fd: int) -> bytes | None:
    """Read an opened /proc file from its start; None once the task is gone."""
    lib = _lib()
    n = lib.pread(fd, lib.buf, _BUF_SIZE, 0)
    return None if n < 0 else lib.buf.raw[:n]


def close_proc(fd: int) -> None:
    if fd >= 0:
        _lib().close(fd)


def fd_kind(pid: int | str, fd: int) -> str:
    """What a file descriptor is: ``socket``, ``pipe``, ``file``, ``tty`` or ``other``."""
    lib = _lib()
    n = lib.readlink(f"/proc/{pid}/fd/{fd}".encode(), lib.buf, _BUF_SIZE)
    if n <= 0:
        return "other"
    target = lib.buf.raw[:n]
    if target.startswith(b"socket:"):
        return "socket"
    if target.startswith(b"pipe:"):
        return "pipe"
    if target.startswith((b"/dev/pts", b"/dev/tty", b"/dev/console")):
        return "tty"
    if target.startswith(b"/"):
        return "file"
    return "other"


@dataclass(slots=True)
class KernelState:
    """One reading of a thread: on a CPU, or blocked in ``syscall``."""

    running: bool
    syscall: str = ""
    """Name of the blocking system call (``futex``, ``epoll_wait``...), or ``""``."""
    arg0: int = 0
    fd_kind: str = ""
    """For calls on a file descriptor: ``socket``, ``pipe``, ``file``, ``tty``, ``other``."""
    wchan: str = ""
    disk_sleep: bool = False
    """State ``D``: uninterruptible sleep, almost always the file system."""


def parse_syscall(raw: bytes) -> tuple[bool, str, int]:
    """Parse a ``syscall`` file: (running, syscall name, first argument)."""
    if raw.startswith(b"running") or not raw:
        return True, "", 0
    parts = raw.split(None, 2)
    try:
        nr = int(parts[0])
    except ValueError:
        return False, "", 0
    if nr < 0:  # blocked outside a syscall (a page fault)
        return False, "fault", 0
    arg0 = int(parts[1], 16) if len(parts) > 1 else 0
    return False, SYSCALL_NAMES.get(nr, f"syscall_{nr}"), arg0


def parse_schedstat(raw: bytes) -> tuple[int, int]:
    """Parse a ``schedstat`` file: (ns on a CPU, ns runnable but waiting for a CPU)."""
    parts = raw.split()
    return int(parts[0]), int(parts[1])


def parse_stat_state(raw: bytes) -> str:
    """The state letter of a ``stat`` file (after the parenthesised command name)."""
    end = raw.rfind(b")")
    return raw[end + 2 : end + 3].decode() if end > 0 else ""


def parse_stat_comm(raw: bytes) -> str:
    start, end = raw.find(b"("), raw.rfind(b")")
    return raw[start + 1 : end].decode(errors="replace") if 0 <= start < end else ""


class TaskFiles:
    """The /proc files of one thread, opened once and re-read every sample."""

    __slots__ = ("_schedstat", "_stat", "_syscall", "_wchan", "pid", "tid", "use_syscall")

    def __init__(self, pid: int | str, tid: int, use_syscall: bool = True) -> None:
        base = f"/proc/{pid}/task/{tid}/"
        self.pid = pid
        self.tid = tid
        self.use_syscall = use_syscall
        self._schedstat = open_proc(base + "schedstat")
        self._syscall = open_proc(base + "syscall") if use_syscall else -1
        self._wchan = open_proc(base + "wchan")
        self._stat = open_proc(base + "stat")

    @property
    def alive(self) -> bool:
        return self._schedstat >= 0 or self._stat >= 0

    def cpu_ns(self) -> tuple[int, int] | None:
        """(ns on a CPU, ns waiting for a CPU) so far; None once the thread is gone."""
        raw = read_proc(self._schedstat)
        if not raw:
            return None
        return parse_schedstat(raw)

    def system_ticks(self) -> int | None:
        """Clock ticks this thread spent in the kernel (``stime``); None once gone."""
        raw = read_proc(self._stat)
        if not raw:
            return None
        fields = raw[raw.rfind(b")") + 2 :].split()
        return int(fields[12])  # stat field 15, counted after the command name

    def comm(self) -> str:
        raw = read_proc(self._stat)
        return parse_stat_comm(raw) if raw else ""

    def wchan(self) -> str:
        raw = read_proc(self._wchan)
        return raw.decode(errors="replace").strip() if raw else ""

    def state(self) -> KernelState | None:
        """What the thread is doing now; None once it is gone."""
        if self._syscall >= 0:
            raw = read_proc(self._syscall)
            if raw is None:
                return None
            running, name, arg0 = parse_syscall(raw)
            if running:
                return KernelState(running=True)
            st = KernelState(running=False, syscall=name, arg0=arg0)
            if name in FD_SYSCALLS:
                st.fd_kind = fd_kind(self.pid, arg0)
            elif name not in _NAMED_ENOUGH:
                st.wchan = self.wchan()
                st.disk_sleep = self._state_letter() == "D"
            return st
        letter = self._state_letter()
        if not letter:
            return None
        if letter == "R":
            return KernelState(running=True)
        return KernelState(running=False, wchan=self.wchan(), disk_sleep=letter == "D")

    def _state_letter(self) -> str:
        raw = read_proc(self._stat)
        return parse_stat_state(raw) if raw else ""

    def close(self) -> None:
        for fd in (self._stat, self._syscall, self._wchan, self._schedstat):
            close_proc(fd)
        self._stat = self._syscall = self._wchan = self._schedstat = -1


_NAMED_ENOUGH: Final = frozenset(
    {
        "futex",
        "nanosleep",
        "clock_nanosleep",
        "wait4",
        "waitid",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
    }
)


def runtime_region() -> tuple[int, int] | None:
    """Address range of the interpreter's static state, where the GIL lives.

    A thread blocked in ``futex`` on an address in this range waits for the GIL
    (or another interpreter-internal lock); anywhere else, it waits on a lock
    object of the program (``threading.Lock``, a Condition, a Queue...).
    """
    try:
        addr = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
    except (ValueError, AttributeError):
        return None
    return _mapping_containing(addr, "self")


def _mapping_containing(addr: int, pid: int | str) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                lo, _, hi = line.partition(" ")[0].partition("-")
                start, end = int(lo, 16), int(hi, 16)
                if start <= addr < end:
                    return start, end
    except OSError:
        return None
    return None


def mapping_in(pid: int, region: tuple[int, int]) -> tuple[int, int] | None:
    """The same mapping as ``region`` of this process, as seen in process ``pid``.

    Forked workers share our layout; spawned ones load the same file elsewhere.
    """
    try:
        with open("/proc/self/maps") as maps:
            ours = next((line.split() for line in maps if line.startswith(f"{region[0]:x}-")), None)
        if ours is None or len(ours) < 6:
            return region
        offset, path = ours[2], ours[5]
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                f = line.split()
                if len(f) >= 6 and f[2] == offset and f[5] == path:
                    lo, _, hi = f[0].partition("-")
                    return int(lo, 16), int(hi, 16)
    except OSError:
        return None
    return None


def source_available() -> str:
    """Which kernel evidence this machine exposes: ``syscall``, ``wchan`` or ``stack``.

    ``BOUNDWISE_PROBE_SOURCE`` forces a poorer one (to test the fallbacks).
    """
    order = ["stack", "wchan", "syscall"]
    forced = os.environ.get("BOUNDWISE_PROBE_SOURCE", "")
    base = f"/proc/self/task/{threading.get_native_id()}/"
    if not _readable(base + "schedstat"):
        have = "stack"
    elif SYSCALL_NAMES and _readable(base + "syscall"):
        have = "syscall"
    else:
        have = "wchan" if _wchan_names_symbols() else "stack"
    if forced in order and order.index(forced) < order.index(have):
        return forced
    return have


def _wchan_names_symbols() -> bool:
    """Whether ``wchan`` names kernel functions (it reads ``0`` where kallsyms is hidden)."""
    done = threading.Event()
    sleeper = threading.Thread(target=done.wait, args=(1.0,), daemon=True)
    sleeper.start()
    try:
        time.sleep(0.002)
        with open(f"/proc/self/task/{sleeper.native_id}/wchan", "rb") as f:
            return f.read().strip() not in (b"", b"0")
    except OSError:
        return False
    finally:
        done.set()
        sleeper.join()


def _readable(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return bool(f.read())
    except OSError:
        return False
