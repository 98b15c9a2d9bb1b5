"""The process route: a crash-tolerant pool of worker processes over pipes.

Each worker owns one duplex pipe and runs one task at a time, so a crash, a
timeout or a cancellation kills exactly one task: the worker is replaced and
every other task goes on. Unlike :class:`concurrent.futures.ProcessPoolExecutor`
the pool never turns "broken".

Hops are kept to the minimum: the submitting thread pickles the task (pickle
protocol 5) and writes it straight to an idle worker's pipe; one collector
thread waits on every pipe and every process sentinel, hands results back and
gives the next queued task to the worker that just became free.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection as mpc
import os
import pickle
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.context import BaseContext
from typing import Any

from boundwise.probe.clock import thread_cpu_ns, wall_ns
from boundwise.runtime.errors import UnpicklableError
from boundwise.runtime.sched import forget_thread, runqueue_ns

PROTOCOL = 5

#: ``done(job, ok, value, cpu_ns, wall_ns, ready_ns)``: ``value`` is the result, or
#: ``(exception, remote traceback text)`` when ``ok`` is False; ``ready_ns`` is the
#: time the call waited for a core.
DoneCallback = Callable[[Any, bool, Any, int, int, int], None]
#: ``lost(job, exitcode, pid)``: the worker died while running ``job``.
LostCallback = Callable[[Any, "int | None", "int | None"], None]
StartCallback = Callable[[Any], None]


def default_context() -> BaseContext:
    """'fork' where it exists (fast start, functions of ``__main__`` work), else 'spawn'."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class _Worker:
    __slots__ = ("conn", "job", "killed", "process", "sentinel")

    def __init__(self, process: Any, conn: mpc.Connection) -> None:
        self.process = process
        self.conn = conn
        self.sentinel: int = process.sentinel
        self.job: Any = None
        self.killed = False


class ProcessPool:
    """``size`` worker processes, each running one task at a time."""

    def __init__(
        self,
        size: int,
        done: DoneCallback,
        lost: LostCallback,
        started: StartCallback,
        context: BaseContext | None = None,
        name: str = "boundwise-process",
    ) -> None:
        if size < 1:
            raise ValueError(f"the process route needs at least one process, not {size}")
        self.size = size
        self._done = done
        self._lost = lost
        self._started = started
        self._ctx = context or default_context()
        self._name = name
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._pending: deque[tuple[Any, bytes]] = deque()
        self._by_handle: dict[Any, _Worker] = {}
        self._waitables: list[Any] = []
        self._collector: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._closing = False
        self.replaced = 0

    # -- submitting -------------------------------------------------------

    def submit(self, job: Any, payload: bytes) -> None:
        """Run the pickled ``(function, args, kwargs)`` in ``payload`` for ``job``."""
        if self._collector is None:
            self._start()
        with self._lock:
            if self._closing:
                raise RuntimeError("the process pool is closed")
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                self._pending.append((job, payload))
                return
            sent = self._send(worker, job, payload)
        if sent:
            self._started(job)

    def _send(self, worker: _Worker, job: Any, payload: bytes) -> bool:
        # Caller holds self._lock.
        worker.job = job
        try:
            worker.conn.send_bytes(payload)
        except OSError:
            # Died while idle: requeue; the collector replaces the worker.
            worker.job = None
            self._pending.appendleft((job, payload))
            return False
        return True

    def abort(self, job: Any) -> bool:
        """Drop ``job`` if it is queued, kill its worker if it runs; False if not here."""
        with self._lock:
            for i, (queued, _) in enumerate(self._pending):
                if queued is job:
                    del self._pending[i]
                    return True
            for worker in self._workers:
                if worker.job is job and not worker.killed:
                    worker.job = None
                    worker.killed = True
                    with contextlib.suppress(OSError):
                        worker.process.kill()
                    return True
        return False

    # -- workers ----------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._collector is not None or self._closing:
                return
            for _ in range(self.size):
                self._add_worker()
            self._collector = threading.Thread(
                target=self._collect, name=f"{self._name}-collector", daemon=True
            )
            self._collector.start()

    def _add_worker(self) -> _Worker:
        # Caller holds self._lock. Children inherit our fds: tell them which to close,
        # so a worker never keeps a sibling's pipe open.
        inherited: list[int] = []
        if self._ctx.get_start_method() == "fork":
            inherited = [self._wake_r, self._wake_w, *(w.conn.fileno() for w in self._workers)]
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=_worker_main,
            args=(child_end, inherited),
            name=f"{self._name}-{len(self._workers)}",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        self._workers.append(worker)
        self._idle.append(worker)
        self._rebuild_waitables()
        return worker

    def _rebuild_waitables(self) -> None:
        self._by_handle = {}
        for w in self._workers:
            self._by_handle[w.conn] = w
            self._by_handle[w.sentinel] = w
        self._waitables = [self._wake_r, *self._by_handle]

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers]

    # -- collecting -------------------------------------------------------

    def _collect(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
                waitables = self._waitables
                by_handle = self._by_handle
            for obj in mpc.wait(waitables):
                if obj == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                worker = by_handle.get(obj)
                if worker is None or worker not in self._workers:
                    continue
                if obj is worker.conn:
                    self._receive(worker)
                else:
                    self._bury(worker)

    def _receive(self, worker: _Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._bury(worker)
            return
        with self._lock:
            job = worker.job
            worker.job = None
            if worker.killed:
                return  # its task was aborted; the sentinel will fire next
            nxt = self._pending.popleft() if self._pending else None
            sent = nxt is not None and self._send(worker, nxt[0], nxt[1])
            if nxt is None:
                self._idle.append(worker)
        if sent:
            assert nxt is not None
            self._started(nxt[0])
        if job is None:
            return
        try:
            ok, value, cpu, wall, ready = pickle.loads(data)
        except BaseException as exc:
            ok, value, cpu, wall, ready = False, (exc, ""), 0, 0, 0
        self._done(job, ok, value, cpu, wall, ready)

    def _bury(self, worker: _Worker) -> None:
        """A worker died (or was killed): fail its task, reap it, start a new one."""
        # A result written just before dying still counts.
        late: bytes | None = None
        with contextlib.suppress(OSError, EOFError):
            if not worker.killed and worker.job is not None and worker.conn.poll():
                late = worker.conn.recv_bytes()
        pid = worker.process.pid
        worker.process.join(1.0)
        exitcode = worker.process.exitcode
        with self._lock:
            job = None if worker.killed else worker.job
            worker.job = None
            if worker in self._workers:
                self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            with contextlib.suppress(OSError):
                worker.conn.close()
            with contextlib.suppress(ValueError, AttributeError):
                worker.process.close()
            if not self._closing:
                fresh = self._add_worker()
                self.replaced += 1
                self._idle.remove(fresh)
                nxt = self._pending.popleft() if self._pending else None
                sent = nxt is not None and self._send(fresh, nxt[0], nxt[1])
                if nxt is None:
                    self._idle.append(fresh)
            else:
                nxt, sent = None, False
                self._rebuild_waitables()
        if sent:
            assert nxt is not None
            self._started(nxt[0])
        if job is None:
            return
        if late is not None:
            try:
                ok, value, cpu, wall, ready = pickle.loads(late)
            except BaseException as exc:
                ok, value, cpu, wall, ready = False, (exc, ""), 0, 0, 0
            self._done(job, ok, value, cpu, wall, ready)
        else:
            self._lost(job, exitcode, pid)

    # -- closing ----------------------------------------------------------

    def queued(self) -> list[Any]:
        with self._lock:
            return [job for job, _ in self._pending]

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker (killing those that do not stop) and the collector."""
        with self._lock:
            self._closing = True
            self._pending.clear()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._collector is not None and self._collector is not threading.current_thread():
            self._collector.join(timeout)
        with self._lock:
            workers = list(self._workers)
            for w in workers:
                with contextlib.suppress(OSError):
                    w.conn.send_bytes(b"")
        for w in workers:
            w.process.join(timeout / max(len(workers), 1))
            if w.process.exitcode is None:
                with contextlib.suppress(OSError):
                    w.process.kill()
                w.process.join(1.0)
            with contextlib.suppress(OSError):
                w.conn.close()
            with contextlib.suppress(ValueError, AttributeError):
                w.process.close()
        with self._lock:
            self._workers.clear()
            self._idle.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _worker_main(conn: mpc.Connection, inherited: list[int]) -> None:
    """The loop of a worker process: receive a task, run it, send back the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    forget_thread()  # a forked copy of the parent thread's schedstat file
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    recv, send = conn.recv_bytes, conn.send_bytes
    while True:
        try:
            data = recv()
        except (EOFError, OSError):
            return
        if not data:
            return
        c0 = thread_cpu_ns()
        r0 = runqueue_ns()
        w0 = wall_ns()
        try:
            fn, args, kwargs = pickle.loads(data)
            del data
            out = (True, fn(*args, **kwargs))
        except BaseException as exc:
            out = (False, (exc, "".join(traceback.format_exception(exc))))
        wall = wall_ns() - w0
        cpu = thread_cpu_ns() - c0
        ready = runqueue_ns() - r0
        try:
            reply = pickle.dumps((*out, cpu, wall, ready), PROTOCOL)
        except BaseException as exc:
            reply = pickle.dumps((False, _portable(exc, out), cpu, wall, ready), PROTOCOL)
        else:
            if not out[0]:
                # An exception that pickles may still fail to unpickle (custom __init__).
                try:
                    pickle.loads(reply)
                except BaseException:
                    reply = pickle.dumps((False, _portable(None, out), cpu, wall, ready), PROTOCOL)
        del out
        send(reply)


def _portable(error: BaseException | None, out: tuple[bool, Any]) -> tuple[BaseException, str]:
    ok, value = out
    if ok:
        assert error is not None
        text = "".join(traceback.format_exception(error))
        return UnpicklableError(f"the result could not be pickled: {error!r}"), text
    exc, text = value
    return UnpicklableError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"), text
