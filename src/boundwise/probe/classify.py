"""Put one reading of a thread (kernel state + Python stack) in one category."""

from __future__ import annotations

import sys
import weakref
from types import FrameType
from typing import Any, Final

from .frames import callee_name, module_of
from .kernel import KernelState, fd_kind
from .taxonomy import Category

_SLEEP_CALLS: Final = frozenset({"nanosleep", "clock_nanosleep"})
_CHILD_CALLS: Final = frozenset({"wait4", "waitid"})
_MULTIPLEX_CALLS: Final = frozenset(
    {"poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2"}
)
_DISK_CALLS: Final = frozenset(
    {
        "fsync",
        "fdatasync",
        "sync",
        "syncfs",
        "sync_file_range",
        "msync",
        "fallocate",
        "ftruncate",
        "truncate",
        "open",
        "openat",
        "stat",
        "lstat",
        "newfstatat",
        "statx",
        "getdents64",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "mkdir",
        "mkdirat",
        "rmdir",
        "io_getevents",
        "copy_file_range",
        "fault",
    }
)
_LOCK_CALLS: Final = frozenset({"flock", "semtimedop"})
_FD_KIND_CATEGORY: Final = {
    "socket": Category.NETWORK,
    "pipe": Category.SUBPROCESS,
    "file": Category.DISK,
}

# Kernel functions a thread sleeps in (``wchan``), by prefix.
_WCHAN_PREFIXES: Final[tuple[tuple[str, str], ...]] = (
    ("sk_wait", "network"),
    ("unix_stream", "network"),
    ("unix_dgram", "network"),
    ("inet_csk_accept", "network"),
    ("tcp_", "network"),
    ("sock_", "network"),
    ("wait_woken", "network"),
    ("udp_", "network"),
    ("do_epoll_wait", "multiplex"),
    ("ep_poll", "multiplex"),
    ("do_select", "multiplex"),
    ("do_sys_poll", "multiplex"),
    ("core_sys_select", "multiplex"),
    ("io_schedule", "disk"),
    ("folio_wait", "disk"),
    ("wait_on_page", "disk"),
    ("jbd2", "disk"),
    ("blk", "disk"),
    ("ext4", "disk"),
    ("xfs", "disk"),
    ("btrfs", "disk"),
    ("nfs", "disk"),
    ("bit_wait_io", "disk"),
    ("hrtimer_nanosleep", "sleep"),
    ("do_nanosleep", "sleep"),
    ("do_wait", "subprocess"),
    ("kernel_wait4", "subprocess"),
    ("pipe_", "pipe"),
    ("anon_pipe", "pipe"),
    ("futex", "futex"),
)

# Library modules whose blocked threads only wait for work that runs, and is
# measured, elsewhere: idle executor workers, joins, Future.result, pool plumbing.
_PARKED_MODULES: Final = (
    "concurrent.futures",
    "multiprocessing",
    "asyncio",
    "boundwise",
    "loky",
    "distributed",
    "dask",
    "joblib",
)
_SYNC_MODULES: Final = frozenset({"threading", "queue"})
_JOIN_FUNCTIONS: Final = frozenset({"join", "_wait_for_tstate_lock", "_shutdown", "start"})

# The call a frame is in, when no kernel evidence is available (last name component).
_STACK_CALLS: Final[dict[str, Category]] = {
    "sleep": Category.SLEEP,
    **dict.fromkeys(
        (
            "recv",
            "recv_into",
            "recvfrom",
            "recvfrom_into",
            "recvmsg",
            "send",
            "sendall",
            "sendto",
            "sendmsg",
            "connect",
            "connect_ex",
            "accept",
            "getaddrinfo",
            "gethostbyname",
            "create_connection",
            "urlopen",
            "getresponse",
            "request",
            "select",
            "poll",
        ),
        Category.NETWORK,
    ),
    **dict.fromkeys(("fsync", "fdatasync", "sync", "flush"), Category.DISK),
    **dict.fromkeys(("waitpid", "communicate", "check_output", "check_call"), Category.SUBPROCESS),
    **dict.fromkeys(("acquire", "wait", "get", "put", "join"), Category.LOCK),
}


# Calls in which the kernel does file-system work on the thread's behalf: time a
# thread is found *running* in one is disk time (on virtual machines, even the
# device's latency shows up as CPU time of the caller).
_DISK_IO_CALLEES: Final = frozenset(
    {
        "fsync",
        "fdatasync",
        "pwrite",
        "pread",
        "preadv",
        "pwritev",
        "posix_fallocate",
        "copyfile",
        "copyfileobj",
        "copy2",
        "copytree",
        "rmtree",
        "os.sync",
        "os.truncate",
        "os.ftruncate",
    }
)
# (os.read and os.write are left out: they serve pipes and sockets as often as files.)


def running_category(frame: FrameType | None) -> Category:
    """What a thread on a CPU is doing: ``disk`` inside a file-system call, else ``cpu``."""
    if frame is None:
        return Category.CPU
    callee = callee_name(frame)
    if callee and (callee in _DISK_IO_CALLEES or callee.rpartition(".")[2] in _DISK_IO_CALLEES):
        return Category.DISK
    return Category.CPU


class Classifier:
    """Classifies readings of threads, remembering each thread's event loop."""

    def __init__(self, gil_region: tuple[int, int] | None) -> None:
        self.gil_region = gil_region
        self._loops: dict[int, weakref.ref[Any]] = {}

    def classify(
        self, state: KernelState | None, frame: FrameType | None, thread_key: int = 0
    ) -> tuple[Category, str]:
        """The category of a thread that is *not* running, and what it is blocked in.

        ``state`` is None where the kernel gives no evidence: the stack decides.
        A running thread is ``cpu``; the caller knows that without asking.
        """
        if state is None:
            return self.classify_stack(frame, thread_key)
        if state.running:
            return Category.CPU, ""
        call = state.syscall
        if not call:
            return self._classify_wchan(state, frame, thread_key)
        if call == "futex":
            lo, hi = self.gil_region or (0, 0)
            if lo <= state.arg0 < hi:
                return Category.GIL, "GIL"
            return _sync_wait(frame), "futex"
        if call in _SLEEP_CALLS:
            # subprocess.run(timeout=...) polls the child with short sleeps.
            if _in_modules(frame, ("subprocess",)):
                return Category.SUBPROCESS, call
            return Category.SLEEP, call
        if call in _CHILD_CALLS:
            return Category.SUBPROCESS, call
        if call in _MULTIPLEX_CALLS:
            return self._multiplex(frame, thread_key), call
        if state.fd_kind:
            detail = f"{call} on {state.fd_kind}"
            if state.arg0 <= 2 and state.fd_kind in ("pipe", "tty"):
                # Standard input or output: the program waits on whoever is at the
                # other end of its pipeline or terminal, not on a child of its own.
                return (
                    Category.OTHER,
                    f"{call} on standard {'input' if state.arg0 == 0 else 'output'}",
                )
            if state.fd_kind == "pipe" and _in_modules(
                frame, ("multiprocessing", "concurrent.futures")
            ):
                return Category.IDLE, detail
            return _FD_KIND_CATEGORY.get(state.fd_kind, Category.OTHER), detail
        if call in _DISK_CALLS or state.disk_sleep:
            return Category.DISK, call
        if call in _LOCK_CALLS:
            return Category.LOCK, call
        if state.wchan:
            return self._classify_wchan(state, frame, thread_key)
        return Category.OTHER, call

    def _classify_wchan(
        self, state: KernelState, frame: FrameType | None, thread_key: int
    ) -> tuple[Category, str]:
        wchan = state.wchan
        kind = next((k for prefix, k in _WCHAN_PREFIXES if wchan.startswith(prefix)), "")
        if state.disk_sleep:
            return Category.DISK, wchan or "D"
        if kind == "futex":
            cat = _sync_wait(frame) if _in_sync_call(frame) else Category.GIL
            return cat, wchan
        if kind == "multiplex":
            return self._multiplex(frame, thread_key), wchan
        if kind == "pipe":
            if _in_modules(frame, ("multiprocessing", "concurrent.futures")):
                return Category.IDLE, wchan
            return Category.SUBPROCESS, wchan
        if kind:
            return Category(kind), wchan
        if not wchan or wchan == "0":
            return self.classify_stack(frame, thread_key)
        return Category.OTHER, wchan

    def classify_stack(self, frame: FrameType | None, thread_key: int = 0) -> tuple[Category, str]:
        """Classify an off-CPU thread from its Python stack alone."""
        if frame is None:
            return Category.OTHER, "no Python frame"
        if _in_sync_call(frame):
            return _sync_wait(frame), "synchronization"
        if module_of(frame.f_code) == "selectors":
            return self._multiplex(frame, thread_key), "select"
        if _in_modules(frame, ("subprocess",)):
            return Category.SUBPROCESS, "subprocess"
        callee = callee_name(frame)
        if not callee:
            return Category.GIL, "Python code"
        category = _STACK_CALLS.get(callee.rpartition(".")[2])
        if category is Category.LOCK:
            return _sync_wait(frame), callee
        return category or Category.OTHER, callee

    def _multiplex(self, frame: FrameType | None, thread_key: int) -> Category:
        if frame is None:
            return Category.IDLE
        loop = self._event_loop(frame, thread_key)
        if loop is not None:
            return loop_wait_category(loop)
        if _in_modules(frame, ("subprocess",)):
            return Category.SUBPROCESS
        if _in_modules(frame, ("multiprocessing", "concurrent.futures")):
            return Category.IDLE
        return Category.NETWORK

    def _event_loop(self, frame: FrameType, thread_key: int) -> Any:
        ref = self._loops.get(thread_key)
        loop = ref() if ref is not None else None
        if (
            loop is not None
            and not loop.is_closed()
            and _in_modules(frame, ("selectors",), depth=2)
        ):
            return loop
        f: FrameType | None = frame
        for _ in range(4):
            if f is None:
                return None
            if f.f_code.co_name == "_run_once" and module_of(f.f_code) == "asyncio.base_events":
                loop = f.f_locals.get("self")
                if loop is not None:
                    self._loops[thread_key] = weakref.ref(loop)
                return loop
            f = f.f_back
        return None


def loop_wait_category(loop: Any) -> Category:
    """What an asyncio event loop blocked in its selector is waiting for."""
    selector = getattr(loop, "_selector", None)
    if selector is None:
        return Category.NETWORK
    self_pipe = getattr(loop, "_ssock", None)
    self_fd = self_pipe.fileno() if self_pipe is not None else -1
    pipes = 0
    try:
        keys = list(selector.get_map().values())
    except (RuntimeError, AttributeError):
        return Category.NETWORK
    for key in keys:
        if key.fd == self_fd:
            continue  # the loop's wake-up pipe
        reader = key.data[0] if isinstance(key.data, tuple) and key.data else None
        callback = getattr(reader, "_callback", None)
        if getattr(callback, "__name__", "") == "_accept_connection":
            continue  # a listening server is ready, not waiting
        fileobj = key.fileobj
        socket = sys.modules.get("socket")  # not imported: the program has no sockets
        if (socket is not None and isinstance(fileobj, socket.socket)) or (
            isinstance(fileobj, int) and fd_kind("self", fileobj) == "socket"
        ):
            return Category.NETWORK
        pipes += 1
    if pipes:
        return Category.SUBPROCESS
    if getattr(loop, "_scheduled", None):
        return Category.SLEEP
    return Category.IDLE


def _in_modules(frame: FrameType | None, prefixes: tuple[str, ...], depth: int = 12) -> bool:
    """Whether one of the innermost frames (before the program's own code) is in one
    of these library modules."""
    f = frame
    for _ in range(depth):
        if f is None:
            return False
        mod = module_of(f.f_code)
        if not mod:
            return False
        if mod.startswith(prefixes):
            return True
        f = f.f_back
    return False


def _in_sync_call(frame: FrameType | None) -> bool:
    if frame is None:
        return False
    if module_of(frame.f_code) in _SYNC_MODULES:
        return True
    callee = callee_name(frame).rpartition(".")[2]
    return callee in ("acquire", "wait", "join", "get", "put", "result")


def _sync_wait(frame: FrameType | None) -> Category:
    """A thread blocked on a synchronization primitive: ``lock`` when it waits on
    another thread's work of the same kind, ``idle`` when it only waits for work
    measured elsewhere (join, Future.result, an executor worker with no task)."""
    f = frame
    while f is not None and module_of(f.f_code) in _SYNC_MODULES:
        if f.f_code.co_name in _JOIN_FUNCTIONS:
            return Category.IDLE
        f = f.f_back
    if f is None:
        return Category.IDLE
    mod = module_of(f.f_code)
    if mod.startswith(_PARKED_MODULES):
        return Category.IDLE
    if not mod and callee_name(f).rpartition(".")[2] in ("join", "result"):
        return Category.IDLE
    return Category.LOCK
