"""The CPU route on a Dask cluster: ``Runtime(cluster=...)``.

Calls that would go to local worker processes go to the cluster instead. Each
call runs inside :func:`_measured` on a Dask worker, which times it with the
same clocks as the local pool and catches its exception with the traceback
text, so learning, errors and remote tracebacks work as on local processes.

Dask cannot kill a task that already runs on a worker: a timeout or a
cancellation releases the call (the caller gets its answer at once) and Dask
drops the result when it comes.
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Any

from boundwise.probe.clock import thread_cpu_ns, wall_ns
from boundwise.runtime.pool import DoneCallback, StartCallback
from boundwise.runtime.sched import runqueue_ns


def _measured(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Run on a Dask worker: the outcome of ``fn`` and how long it took."""
    c0 = thread_cpu_ns()
    r0 = runqueue_ns()
    w0 = wall_ns()
    try:
        out: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except Exception as exc:
        out = (False, (exc, "".join(traceback.format_exception(exc))))
    wall = wall_ns() - w0
    return (*out, thread_cpu_ns() - c0, wall, runqueue_ns() - r0)


class DaskRoute:
    """Send calls to a Dask cluster: a ``distributed.Client``, a cluster object or an address."""

    def __init__(self, cluster: Any, done: DoneCallback, started: StartCallback) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "Runtime(cluster=...) needs Dask's distributed: pip install 'boundwise[dask]'"
            ) from exc
        self.client: Any
        if isinstance(cluster, Client):
            self.client = cluster
            self._own = False
        else:
            make_client: Any = Client
            self.client = make_client(cluster, set_as_default=False)
            self._own = True
        self._done = done
        self._started = started
        self._futures: dict[int, Any] = {}

    def submit(self, job: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        future: Any = self.client.submit(_measured, fn, args, kwargs, pure=False)
        self._futures[id(job)] = future
        self._started(job)
        future.add_done_callback(lambda f: self._finished(job, f))

    def _finished(self, job: Any, future: Any) -> None:
        # On Dask's callback thread.
        self._futures.pop(id(job), None)
        status = future.status
        if status == "cancelled":
            return
        if status == "finished":
            ok, value, cpu, wall, ready = future.result()
            self._done(job, ok, value, cpu, wall, ready)
            return
        exc = future.exception()
        text = "".join(traceback.format_exception(exc))
        self._done(job, False, (exc, text), 0, 0, 0)

    def abort(self, job: Any) -> bool:
        """Release ``job`` on the cluster; False if it is not there (already done)."""
        future = self._futures.pop(id(job), None)
        if future is None:
            return False
        with contextlib.suppress(Exception):
            future.cancel()
        return True

    def close(self) -> None:
        for future in list(self._futures.values()):
            with contextlib.suppress(Exception):
                future.cancel()
        self._futures.clear()
        if self._own:
            with contextlib.suppress(Exception):
                self.client.close()
