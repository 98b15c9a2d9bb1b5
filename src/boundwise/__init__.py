"""boundwise: should this code be sync or async? Measured, not guessed.

>>> import boundwise
>>> with boundwise.profile() as p:
...     run_my_job()
>>> print(p.verdict, p.recommendation.model)

Names are imported on first use, so ``import boundwise`` stays cheap: the
profiler starts before the program it measures and must not slow it down.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # probe and advice
    "profile": "boundwise.profiling",
    "Profile": "boundwise.probe.profile",
    "Category": "boundwise.probe.taxonomy",
    "Recommendation": "boundwise.probe.profile",
    "advise": "boundwise.advise",
    # runtime
    "task": "boundwise.runtime.api",
    "Task": "boundwise.runtime.api",
    "map": "boundwise.runtime.api",
    "Runtime": "boundwise.runtime.api",
    "Handle": "boundwise.runtime.api",
    "default_runtime": "boundwise.runtime.api",
    "WorkerCrashed": "boundwise.runtime.errors",
    "TaskTimeout": "boundwise.runtime.errors",
    "RemoteTraceback": "boundwise.runtime.errors",
    # watch
    "watch": "boundwise.watch.watchdog",
    "Watchdog": "boundwise.watch.watchdog",
    "Stall": "boundwise.watch.watchdog",
}

__all__ = [
    "Category",
    "Handle",
    "Profile",
    "Recommendation",
    "RemoteTraceback",
    "Runtime",
    "Stall",
    "Task",
    "TaskTimeout",
    "Watchdog",
    "WorkerCrashed",
    "advise",
    "default_runtime",
    "map",
    "profile",
    "task",
    "watch",
]

if TYPE_CHECKING:
    from boundwise.advise import advise
    from boundwise.probe.profile import Profile, Recommendation
    from boundwise.probe.taxonomy import Category
    from boundwise.profiling import profile
    from boundwise.runtime.api import Handle, Runtime, Task, default_runtime, map, task
    from boundwise.runtime.errors import RemoteTraceback, TaskTimeout, WorkerCrashed
    from boundwise.watch.watchdog import Stall, Watchdog, watch


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'boundwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
