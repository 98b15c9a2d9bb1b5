"""Errors the runtime raises in the caller.

A task's own exception is raised with its own type. When it ran in another
process its traceback there is attached as ``__cause__`` (a
:class:`RemoteTraceback`), the way :mod:`concurrent.futures` does, so the
remote frames are shown instead of lost.
"""

from __future__ import annotations

import signal


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker process."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class WorkerCrashed(RuntimeError):
    """The worker process running the task died (``os._exit``, a signal, a segfault).

    Only the task it ran fails with this error; the pool replaces the worker.
    """

    def __init__(self, function: str, exitcode: int | None, pid: int | None = None) -> None:
        self.function = function
        self.exitcode = exitcode
        self.pid = pid
        super().__init__(
            f"worker process {pid} died while running {function}(): {_describe(exitcode)}"
        )


class TaskTimeout(TimeoutError):
    """The task ran longer than its ``timeout=``.

    A process task that overruns is killed and its worker replaced; a thread
    task cannot be killed, so its thread finishes the call in the background.
    """

    def __init__(self, function: str, timeout: float, killed: bool, where: str = "thread") -> None:
        self.function = function
        self.timeout = timeout
        self.killed = killed
        if killed:
            how = "its worker process was killed"
        elif where == "dask":
            how = "it was released on the Dask cluster"
        else:
            how = "it still runs on its thread"
        super().__init__(f"{function}() ran longer than its timeout of {timeout:g} s; {how}")


class NotPicklable(TypeError):
    """A function was sent to a process but cannot be pickled."""


class RuntimeClosed(RuntimeError):
    """A task was submitted to a runtime that is closed."""


class UnpicklableError(Exception):
    """Stands in for a remote exception that could not be pickled back."""


def _describe(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exited with status {exitcode}"
