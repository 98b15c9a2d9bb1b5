"""The bundled examples get the verdict their docstring promises.

Each ``examples/*.py`` (except helpers starting with ``_``) ends its docstring
with a line such as ``expect: verdict=io-bound model=asyncio dominant=network``.
These tests run ``python -m boundwise profile --json`` on every example as a real
subprocess, from a foreign working directory, and check the profile against it.
Examples run one at a time: running two profiles side by side on a small machine
would change what each of them measures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))

CATEGORIES = {"cpu", "network", "disk", "sleep", "subprocess", "lock", "gil", "other"}
VERDICTS = {"cpu-bound", "io-bound", "mixed"}
MODELS = {"sync", "threads", "asyncio", "processes", "hybrid"}
PROFILE_TIMEOUT_S = 120
PLAIN_TIMEOUT_S = 60

_EXPECT_RE = re.compile(
    r"^expect: verdict=(?P<verdict>\S+) model=(?P<model>\S+) dominant=(?P<dominant>\S+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Expectation:
    verdict: str
    model: str
    dominant: frozenset[str]  # "cpu|network" accepts either


def expectation(example: Path) -> Expectation:
    matches = list(_EXPECT_RE.finditer(example.read_text(encoding="utf-8")))
    assert len(matches) == 1, f"{example.name}: needs exactly one 'expect:' line"
    m = matches[0]
    return Expectation(m["verdict"], m["model"], frozenset(m["dominant"].split("|")))


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_examples_exist_and_are_listed_in_the_readme(repo_root: Path) -> None:
    assert len(EXAMPLES) >= 12, [p.name for p in EXAMPLES]
    readme = (repo_root / "examples" / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in EXAMPLES if f"`{p.name}`" not in readme]
    assert not missing, f"examples/README.md does not list {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=_ids(EXAMPLES))
def test_expect_line_is_well_formed(example: Path) -> None:
    exp = expectation(example)
    assert exp.verdict in VERDICTS
    assert exp.model in MODELS
    assert exp.dominant and exp.dominant <= CATEGORIES


def _summary(profile: dict[str, Any]) -> str:
    """Enough of a profile to diagnose a failure from the test report alone."""
    breakdown = {k: round(v, 3) for k, v in profile.get("breakdown", {}).items() if v}
    rec = profile.get("recommendation", {})
    return (
        f"verdict={profile.get('verdict')} model={rec.get('model')} breakdown={breakdown} "
        f"wall_s={profile.get('wall_s')} samples={profile.get('samples')} "
        f"reason={rec.get('reason')!r}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=_ids(EXAMPLES))
def test_profile_matches_expectation(example: Path, tmp_path: Path) -> None:
    exp = expectation(example)
    out = tmp_path / "profile.json"
    cmd = [sys.executable, "-m", "boundwise", "profile", "--json", "--output", str(out)]
    proc = subprocess.run(
        [*cmd, str(example)],
        cwd=tmp_path,  # examples must not depend on the working directory
        capture_output=True,
        text=True,
        timeout=PROFILE_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    profile = json.loads(out.read_text(encoding="utf-8"))
    summary = _summary(profile)

    assert profile["schema"] == "boundwise.profile/1"
    assert profile["exit_code"] == 0, summary
    breakdown: dict[str, float] = profile["breakdown"]
    assert set(breakdown) == CATEGORIES, summary
    assert sum(breakdown.values()) == pytest.approx(1.0, abs=0.01), summary
    speedup = profile["recommendation"]["predicted_speedup"]
    assert set(speedup) == MODELS, summary
    assert all(isinstance(v, int | float) and v > 0 for v in speedup.values()), summary

    dominant = max(breakdown, key=lambda k: breakdown[k])
    assert dominant in exp.dominant, f"dominant {dominant}, expected {set(exp.dominant)}: {summary}"
    assert profile["verdict"] == exp.verdict, summary
    assert profile["recommendation"]["model"] == exp.model, summary

    if example.stem == "process_pool":
        # The parent only waits: the CPU it reports must come from its worker processes.
        workers = [p for p in profile.get("processes", []) if p["role"] == "worker"]
        assert len(workers) == 2, profile.get("processes")
        assert all(w["cpu_s"] > 0.5 for w in workers), workers


def _run_plainly(example: Path, cwd: Path, env: dict[str, str]) -> tuple[Path, int, str]:
    proc = subprocess.run(
        [sys.executable, str(example)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PLAIN_TIMEOUT_S,
    )
    return example, proc.returncode, proc.stderr[-2000:]


@pytest.mark.slow
def test_every_example_runs_plainly(tmp_path: Path) -> None:
    """Without boundwise each example is an ordinary program that exits 0 and cleans up.

    Only exit status is checked, so two at a time is fine (and halves the time).
    """
    workdir, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}  # where disk.py puts its log
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: _run_plainly(p, workdir, env), EXAMPLES))
    failed = [f"{p.name}: exit {rc}\n{err}" for p, rc, err in results if rc != 0]
    assert not failed, "\n".join(failed)
    left = [p.name for d in (workdir, tmpdir) for p in d.iterdir()]
    assert not left, f"examples left files behind: {left}"


@pytest.mark.slow
def test_json_on_stdout_keeps_the_examples_own_output_apart(tmp_path: Path) -> None:
    """With ``--json`` and no ``--output`` stdout is exactly one JSON object; what the
    example prints goes to stderr."""
    example = EXAMPLES_DIR / "sleep.py"
    proc = subprocess.run(
        [sys.executable, "-m", "boundwise", "profile", "--json", str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PROFILE_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    profile = json.loads(proc.stdout)
    assert profile["schema"] == "boundwise.profile/1"
    assert profile["exit_code"] == 0
    assert "ticks in" in proc.stderr  # sleep.py's own summary line
