"""A probing session: sample from start to stop, then summarize into a Profile."""

from __future__ import annotations

import os
import time

from . import workers
from .clock import process_cpu
from .profile import Profile, summarize
from .sampler import DEFAULT_INTERVAL, Sampler


class ProbeSession:
    """Measures this process (all threads, and its worker processes) between
    :meth:`start` and :meth:`stop`."""

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._sampler: Sampler | None = None
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def start(self) -> None:
        self._sampler = Sampler(self.interval)
        self._wall0 = time.perf_counter()
        self._cpu0 = process_cpu()
        workers.begin(self.interval)
        self._sampler.start()

    def stop(self, target: str = "", exit_code: int = 0) -> Profile:
        if self._sampler is None:
            raise RuntimeError("the probe session was not started")
        tally = self._sampler.stop()
        workers.end(tally)
        wall = time.perf_counter() - self._wall0
        cpu = process_cpu() - self._cpu0
        profile = summarize(
            tally,
            target=target,
            exit_code=exit_code,
            wall_s=wall,
            cpu_s=cpu,
            cores=os.cpu_count() or 1,
            interval_s=self.interval,
            source=self._sampler.source,
            main_pid=os.getpid(),
        )
        if self._sampler.error is not None:
            profile.notes.append(f"the sampler stopped early: {self._sampler.error!r}")
        self._sampler = None
        return profile
