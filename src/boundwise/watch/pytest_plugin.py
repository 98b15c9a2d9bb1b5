"""pytest plugin: fail async tests that block their event loop.

Off by default. Turn it on with ``--boundwise-threshold=50ms`` (or the
``boundwise_threshold`` ini option, or a ``@pytest.mark.boundwise(threshold=0.05)``
marker on a test). Every async test then runs under a :class:`Watchdog`; a test that
blocks its loop longer than the threshold fails with the stall report as its message.

Works with pytest-asyncio and with anyio's plugin on the asyncio backend: both call the
test function the plugin swaps in, which watches the loop it finds running.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import pytest

from ..duration import parse_duration
from .stall import Stall
from .watchdog import Watchdog

_OPTION = "--boundwise-threshold"
_INI = "boundwise_threshold"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("boundwise", "boundwise event-loop watchdog")
    group.addoption(
        _OPTION,
        dest="boundwise_threshold",
        default=None,
        metavar="DURATION",
        help="fail async tests that block their event loop longer than this "
        "(e.g. 50ms); off by default",
    )
    parser.addini(_INI, "default for --boundwise-threshold (off when empty)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "boundwise(threshold=None): watch this async test's event loop for stalls longer "
        "than threshold seconds (None: do not watch it)",
    )
    raw = config.getoption("boundwise_threshold") or config.getini(_INI)
    try:
        threshold = parse_duration(raw) if raw else None
    except ValueError as exc:
        raise pytest.UsageError(f"{_OPTION}: {exc}") from None
    config.stash[_THRESHOLD] = threshold


_THRESHOLD = pytest.StashKey[float | None]()


def _threshold_for(item: pytest.Item) -> float | None:
    threshold = item.config.stash.get(_THRESHOLD, None)
    marker = item.get_closest_marker("boundwise")
    if marker is not None:
        value = marker.kwargs.get("threshold", marker.args[0] if marker.args else threshold)
        threshold = parse_duration(value) if value is not None else None
    return threshold


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    threshold = _threshold_for(item) if isinstance(item, pytest.Function) else None
    if threshold is None or not inspect.iscoroutinefunction(getattr(item, "obj", None)):
        return (yield)
    assert isinstance(item, pytest.Function)
    original = item.obj
    item.obj = _watched(original, threshold, item.nodeid)
    try:
        return (yield)
    finally:
        item.obj = original


def _watched(
    func: Callable[..., Coroutine[Any, Any, Any]], threshold: float, name: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(func)
    async def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not an asyncio loop (trio): nothing to watch
            return await func(*args, **kwargs)
        dog = Watchdog(threshold, log=False).start()
        try:
            result = await func(*args, **kwargs)
        finally:
            stalls = dog.stop()
        if stalls:
            pytest.fail(failure_message(stalls, threshold, name), pytrace=False)
        return result

    return watched


def failure_message(stalls: list[Stall], threshold: float, name: str = "") -> str:
    """The failure text: how many stalls, then each stall's report."""
    total = sum(s.duration_s for s in stalls)
    head = (
        f"{name + ': ' if name else ''}the event loop was blocked {len(stalls)} time(s) "
        f"for longer than {threshold * 1000:.0f} ms ({total * 1000:.0f} ms in all)"
    )
    return "\n\n".join([head, *(str(s) for s in stalls)])
