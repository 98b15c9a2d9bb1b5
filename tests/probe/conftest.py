"""Helpers for the probe tests: run ``boundwise profile`` as a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], profile: dict[str, Any] | None):
        self.proc = proc
        self.profile = profile

    @property
    def code(self) -> int:
        return self.proc.returncode


@pytest.fixture
def boundwise(tmp_path: Path) -> Callable[..., Run]:
    """Run ``python -m boundwise ARGS``; with ``json_out``, ARGS is the target of
    ``boundwise profile --json --output FILE`` and the profile is read back."""

    def run(
        *args: str,
        json_out: bool = True,
        cwd: Path | None = None,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> Run:
        out = tmp_path / "profile.json"
        if out.exists():
            out.unlink()
        if json_out:
            args = ("profile", "--json", "--output", str(out), *args)
        command = [sys.executable, "-m", "boundwise", *args]
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or tmp_path,
            env={**os.environ, **(env or {})},
        )
        profile = json.loads(out.read_text()) if json_out and out.exists() else None
        return Run(proc, profile)

    return run


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a program into the test's directory."""

    def write(source: str, name: str = "prog.py") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    return write
