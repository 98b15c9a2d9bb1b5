"""The clocks every part of boundwise measures with."""

from __future__ import annotations

import os
import time

wall_ns = time.perf_counter_ns
"""Monotonic wall clock, in nanoseconds."""

thread_cpu_ns = time.thread_time_ns
"""CPU time (user + system) of the calling thread, in nanoseconds."""


def wall() -> float:
    """Monotonic wall clock, in seconds."""
    return time.perf_counter()


def thread_cpu() -> float:
    """CPU time (user + system) of the calling thread, in seconds."""
    return time.thread_time()


def process_cpu() -> float:
    """CPU time (user + system) of this process, all threads, in seconds."""
    t = os.times()
    return t.user + t.system
