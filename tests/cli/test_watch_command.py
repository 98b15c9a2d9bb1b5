"""``boundwise watch`` as a command: a real program, its stalls as JSON, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = """
    import asyncio, time

    async def handler():
        time.sleep(0.2)          # blocks the loop
        await asyncio.sleep(0.05)

    async def main():
        await asyncio.gather(handler(), asyncio.sleep(0.1))
        print("served")

    asyncio.run(main())
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "boundwise", "watch", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


def test_watch_reports_the_blocking_line_as_json(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(PROGRAM))
    proc = run(tmp_path, "--threshold", "50ms", "--json", "app.py")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "boundwise.watch/1"
    assert "served" in proc.stderr  # the program's stdout stays out of the JSON
    (stall,) = doc["stalls"]
    assert stall["category"] == "sleep"
    assert (stall["file"], stall["line"], stall["function"]) == ("app.py", 5, "handler")
    assert 0.15 <= stall["duration_s"] < 1.0
    assert "asyncio.sleep" in stall["advice"]
    # The program's frames and the libraries it called, not the command that ran it.
    files = [frame["file"] for frame in stall["stack"]]
    assert ("app.py", "<module>") in [(f["file"], f["function"]) for f in stall["stack"]]
    assert not [f for f in files if "click" in f or "boundwise" in f or "runpy" in f], files


def test_watch_console_report_and_quiet_program(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(PROGRAM))
    proc = run(tmp_path, "--threshold", "50ms", "app.py")
    assert proc.returncode == 0, proc.stderr
    assert "Event loop blocked" in proc.stdout + proc.stderr
    quiet = run(tmp_path, "--json", "-c", "import asyncio; asyncio.run(asyncio.sleep(0.3))")
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["stalls"] == []


def test_watch_bad_input(tmp_path: Path) -> None:
    for args, message in [
        (["--threshold", "soon", "app.py"], "not a duration"),
        (["missing.py"], "can't open file"),
        ([], "nothing to run"),
    ]:
        proc = run(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("boundwise: error:"), proc.stderr
        assert message in lines[0]
