"""``boundwise watch``'s implementation, run on real programs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import asyncio, sys, time

async def handler(i):
    await asyncio.sleep(0.01)
    if i == 2:
        time.sleep(0.2)  # BLOCKS

async def main():
    await asyncio.gather(*(handler(i) for i in range(4)))
    print("program output", sys.argv[1:])

if "--uvloop" in sys.argv:
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
    asyncio.run(main())
"""

CLEAN = """
import asyncio

async def main():
    await asyncio.gather(*(asyncio.sleep(0.01 * i) for i in range(30)))

asyncio.run(main())
"""


def watch(
    tmp_path: Path,
    kind: str,
    target: str,
    *args: str,
    json_out: bool = True,
    output: str | None = None,
) -> subprocess.CompletedProcess[str]:
    call = (
        f"from boundwise.watch.command import run_watch; import sys; "
        f"sys.exit(run_watch({kind!r}, {target!r}, {list(args)!r}, 0.05, {json_out!r}, "
        f"{output!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", call], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(PROGRAM)
    return path


def test_json_report_of_every_stall_in_every_loop(tmp_path: Path, program: Path) -> None:
    done = watch(tmp_path, "script", "app.py", "a1")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # only the document on stdout
    assert "program output ['a1']" in done.stderr
    assert doc["schema"] == "boundwise.watch/1" and doc["exit_code"] == 0
    assert doc["loops"] == 2 and len(doc["stalls"]) == 2  # one per asyncio.run
    for stall in doc["stalls"]:
        assert (stall["file"], stall["line"], stall["function"]) == ("app.py", 7, "handler")
        assert stall["category"] == "sleep" and stall["call"] == "time.sleep"
        assert 0.12 < stall["duration_s"] < 0.5
        assert stall["stack"][0]["function"] == "handler"
        assert "asyncio.sleep" in stall["advice"]


def test_uvloop_program(tmp_path: Path, program: Path) -> None:
    pytest.importorskip("uvloop")
    done = watch(tmp_path, "script", "app.py", "--uvloop")
    doc = json.loads(done.stdout)
    assert [s["category"] for s in doc["stalls"]] == ["sleep"]


def test_console_report_and_output_file(tmp_path: Path, program: Path) -> None:
    done = watch(tmp_path, "script", "app.py", json_out=False, output="stalls.json")
    assert done.returncode == 0
    assert "program output" in done.stdout
    assert "Event loop blocked" in done.stderr and "time.sleep(0.2)  # BLOCKS" in done.stderr
    assert "boundwise watch: 2 event-loop stall(s) over 50 ms" in done.stderr
    doc = json.loads((tmp_path / "stalls.json").read_text())
    assert len(doc["stalls"]) == 2


def test_module_target_and_no_false_alarm(tmp_path: Path) -> None:
    (tmp_path / "clean_service.py").write_text(CLEAN)
    done = watch(tmp_path, "module", "clean_service", json_out=False)
    assert done.returncode == 0, done.stderr
    assert "no event-loop stall over 50 ms (1 loop(s) watched)" in done.stderr


def test_bad_target_and_failing_program(tmp_path: Path) -> None:
    missing = watch(tmp_path, "script", "nope.py")
    assert missing.returncode == 2 and "boundwise: error:" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "fails.py").write_text("raise SystemExit(3)\n")
    failed = watch(tmp_path, "script", "fails.py")
    assert failed.returncode == 1 and json.loads(failed.stdout)["exit_code"] == 3
