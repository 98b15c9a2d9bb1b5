"""The pytest plugin, run on inner test files with pytest-asyncio and anyio."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = '''
import asyncio
import time

import pytest


@pytest.mark.asyncio
async def test_blocks_with_asyncio():
    await asyncio.sleep(0.01)
    time.sleep(0.25)  # BLOCKING-LINE


@pytest.mark.asyncio
async def test_clean_with_asyncio():
    await asyncio.gather(*(asyncio.sleep(0.01) for _ in range(20)))


@pytest.mark.anyio
async def test_blocks_with_anyio():
    time.sleep(0.25)


@pytest.mark.anyio
async def test_clean_with_anyio():
    await asyncio.sleep(0.05)


@pytest.mark.asyncio
@pytest.mark.boundwise(threshold=None)
async def test_opted_out():
    time.sleep(0.25)


def test_sync_tests_are_left_alone():
    time.sleep(0.25)
'''

CONFTEST = '''
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"
'''


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_inner=TESTS)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_blocking_async_tests_fail_with_the_stall_report(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess(
        "-p", "boundwise.pytest_plugin", "--boundwise-threshold=50ms", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4, failed=2)
    out = result.stdout.str()
    assert "FAILED test_inner.py::test_blocks_with_asyncio" in out
    assert "FAILED test_inner.py::test_blocks_with_anyio" in out
    result.stdout.fnmatch_lines([
        "*the event loop was blocked 1 time(s) for longer than 50 ms*",
        "*Event loop blocked * ms — sleep*",
        "*at test_inner.py:10 in test_blocks_with_asyncio calling time.sleep*",
        "*time.sleep(0.25)  # BLOCKING-LINE*",
        "*fix: use `await asyncio.sleep(...)` instead of `time.sleep`*",
    ])


def test_off_by_default(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "boundwise.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_bad_threshold_is_a_usage_error(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess(
        "-p", "boundwise.pytest_plugin", "--boundwise-threshold=soon", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--boundwise-threshold: not a duration: 'soon'*"])
