"""The hybrid runtime: every call runs on the model that fits.

``@task`` functions run on the event loop (coroutines), on threads, in worker
processes or inline, as learned from what each function was measured doing
(``kind="auto"``) or as hinted (``kind="cpu" | "io" | "async" | "inline"``).

Modules, one concept each:

``api``       ``task``, ``Runtime``, ``map``, the default runtime
``handles``   the pending result of a call, for sync and async callers
``calls``     one accepted call (a future) and the per-function spec
``learning``  per-function figures and the routing rule
``sched``     run-queue wait of a thread (CPU demand on a crowded machine)
``threads``   the thread route
``pool``      the process route: crash-tolerant, kill on timeout and cancel
``dask``      the CPU route on a Dask cluster (``Runtime(cluster=...)``)
``bridge``    a background event loop for coroutines called from sync code
``gate``      bounded admission shared by threads and event loops
``timer``     one thread for every deadline
``errors``    ``WorkerCrashed``, ``TaskTimeout``, ``RemoteTraceback``
"""

from boundwise.runtime.api import Handle, Runtime, Task, default_runtime, map, task
from boundwise.runtime.errors import RemoteTraceback, TaskTimeout, WorkerCrashed

__all__ = [
    "Handle",
    "RemoteTraceback",
    "Runtime",
    "Task",
    "TaskTimeout",
    "WorkerCrashed",
    "default_runtime",
    "map",
    "task",
]
