"""Shared test fixtures (kept minimal)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout the tests run from (where examples/ and benchmarks/ live)."""
    return REPO_ROOT
