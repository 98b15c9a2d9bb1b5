"""``boundwise watch``: run a program and report every stall of its event loops.

The program runs in this process, exactly as ``python`` would run it. Every asyncio
or uvloop event loop it runs is watched from the moment it starts running: the hook
is asyncio's own ``_set_running_loop``, which every loop calls when it starts and
stops running (uvloop too, when imported after the hook is in place). The time a
loop spends stopped, between two ``run_until_complete`` calls, is not a stall.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextlib
import json
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from rich.console import Console

from boundwise.probe.target import Kind, Target, TargetError

from .stall import Stall, to_json_doc
from .watchdog import Watchdog

__all__ = ["LoopHook", "run_watch"]


class LoopHook:
    """Watches every event loop that starts running while installed."""

    def __init__(self, threshold: float, on_stall: Callable[[Stall], object] | None = None):
        self.threshold = threshold
        self.on_stall = on_stall
        self.stalls: list[Stall] = []
        self.loops = 0
        self._dogs: weakref.WeakKeyDictionary[Any, Watchdog] = weakref.WeakKeyDictionary()
        self._all: list[Watchdog] = []
        self._local = threading.local()
        self._original: Callable[[Any], None] | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        original = asyncio.events._set_running_loop
        self._original = original

        def set_running_loop(loop: Any) -> None:
            original(loop)
            with contextlib.suppress(Exception):  # watching must never break the loop
                self._running(loop)

        asyncio.events._set_running_loop = set_running_loop
        asyncio._set_running_loop = set_running_loop

    def uninstall(self) -> list[Stall]:
        """Restore asyncio and stop every watchdog; returns all stalls seen."""
        if self._original is not None:
            asyncio.events._set_running_loop = self._original
            asyncio._set_running_loop = self._original
            self._original = None
        for dog in self._all:
            dog.stop()
        return self.stalls

    def _running(self, loop: Any) -> None:
        if loop is None:
            dog = getattr(self._local, "dog", None)
            if dog is not None:
                dog.pause()
            self._local.dog = None
            return
        dog = self._dogs.get(loop)
        if dog is None:
            dog = Watchdog(self.threshold, loop=loop, on_stall=self._record, log=False)
            self._dogs[loop] = dog
            self._all.append(dog)
            self.loops += 1
            dog.start()
        else:
            dog.resume()
        self._local.dog = dog

    def _record(self, stall: Stall) -> None:
        with self._lock:
            self.stalls.append(stall)
        if self.on_stall is not None:
            self.on_stall(stall)


@contextlib.contextmanager
def _stdout_to(stream: TextIO) -> Iterator[None]:
    saved = sys.stdout
    sys.stdout = stream
    try:
        yield
    finally:
        sys.stdout = saved


def run_watch(
    target_kind: str,
    target: str,
    args: list[str],
    threshold_s: float,
    json_out: bool,
    output: str | None,
) -> int:
    """Run ``target`` (``target_kind``: ``script``, ``module`` or ``code``) and report
    each event-loop stall longer than ``threshold_s``.

    Stalls are printed to stderr as they happen (a traceback-like report), then a
    summary. With ``json_out``, the ``boundwise.watch/1`` document goes to stdout and
    the program's own stdout to stderr; with ``output``, the document is written to
    that file instead. Returns the exit code: 0, 1 when the program failed, 2 for bad
    usage.
    """
    err = Console(stderr=True, highlight=False)
    if target_kind not in ("script", "module", "code"):
        err.print(f"boundwise: error: unknown target kind {target_kind!r}")
        return 2
    if threshold_s <= 0:
        err.print("boundwise: error: the threshold must be positive")
        return 2
    kind: Kind = target_kind  # type: ignore[assignment]
    program = Target(kind, target, list(args))
    try:
        program.prepare()
    except TargetError as exc:
        err.print(f"boundwise: error: {exc}")
        return 2
    quiet = json_out and output is None

    def show(stall: Stall) -> None:
        if not quiet:
            err.print(stall, soft_wrap=True)

    hook = LoopHook(threshold_s, on_stall=show)
    hook.install()
    try:
        if json_out and output is None:
            with _stdout_to(sys.stderr):
                status = program.run()
        else:
            status = program.run()
    finally:
        stalls = hook.uninstall()
    doc = to_json_doc(
        stalls,
        target=str(program),
        exit_code=status,
        threshold_s=threshold_s,
        loops=hook.loops,
    )
    if output is not None:
        try:
            with open(output, "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
        except OSError as exc:
            err.print(f"boundwise: error: cannot write {output!r}: {exc.strerror}")
            return 2
    if json_out and output is None:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        sys.stdout.flush()
    elif not json_out:
        total = sum(s.duration_s for s in stalls) * 1000
        if stalls:
            err.print(
                f"boundwise watch: {len(stalls)} event-loop stall(s) over "
                f"{threshold_s * 1000:g} ms, {total:.0f} ms blocked in all "
                f"({hook.loops} loop(s) watched)",
                soft_wrap=True,
            )
        else:
            err.print(
                f"boundwise watch: no event-loop stall over {threshold_s * 1000:g} ms "
                f"({hook.loops} loop(s) watched)",
                soft_wrap=True,
            )
    return 0 if status == 0 else 1
