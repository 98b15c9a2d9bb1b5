"""pytest plugin: fail async tests that block their event loop (off by default).

    pytest -p boundwise.pytest_plugin --boundwise-threshold=50ms
"""

from __future__ import annotations

from boundwise.watch.pytest_plugin import (
    failure_message,
    pytest_addoption,
    pytest_configure,
    pytest_runtest_call,
)

__all__ = ["failure_message", "pytest_addoption", "pytest_configure", "pytest_runtest_call"]
