"""``boundwise profile`` as a command: how the target runs, what comes out, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MODELS = {"sync", "threads", "asyncio", "processes", "hybrid"}
CATEGORIES = {"cpu", "network", "disk", "sleep", "subprocess", "lock", "gil", "other"}


def test_json_contract(boundwise, script):
    prog = script("""
        import time
        def wait():
            time.sleep(0.3)
        wait()
    """)
    run = boundwise("prog.py", "a1")
    assert run.code == 0, run.proc.stderr
    p = run.profile
    assert p["schema"] == "boundwise.profile/1"
    assert p["target"] == "prog.py a1"
    assert p["exit_code"] == 0
    assert 0.3 <= p["wall_s"] < 5
    assert p["cpu_s"] >= 0 and p["cores"] >= 1 and p["samples"] > 10
    assert p["interval_s"] == 0.005
    assert set(p["breakdown"]) == CATEGORIES
    assert abs(sum(p["breakdown"].values()) - 1) < 0.01
    assert p["breakdown"]["sleep"] > 0.9
    main = p["threads"][0]
    assert main["name"] == "MainThread" and main["native_id"] > 0
    site = p["sites"][0]
    assert (site["file"], site["line"], site["function"], site["category"]) == (
        "prog.py",
        4,
        "wait",
        "sleep",
    )
    assert site["fraction"] > 0.9
    assert p["verdict"] == "io-bound"
    rec = p["recommendation"]
    assert rec["model"] == "asyncio"
    assert set(rec["predicted_speedup"]) == MODELS
    assert rec["predicted_speedup"]["sync"] == 1.0
    assert "prog.py:4" in rec["reason"]
    assert prog.exists()


def test_runs_like_python(boundwise, script, tmp_path):
    script(
        """
        import json, os, sys
        print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "file": __file__,
                          "name": __name__, "main": sys.modules["__main__"].__file__}))
    """,
        name="sub/prog.py",
    )
    run = boundwise("profile", "sub/prog.py", "--flag", "x", json_out=False)
    assert run.code == 0, run.proc.stderr
    seen = json.loads(run.proc.stdout.splitlines()[0])
    assert seen["argv"] == ["sub/prog.py", "--flag", "x"]
    assert seen["path0"] == str(tmp_path / "sub")
    assert seen["file"] == "sub/prog.py" and seen["main"] == "sub/prog.py"
    assert seen["name"] == "__main__"
    assert "Where the time goes" in run.proc.stdout


def test_program_stdout_goes_to_stderr_with_json(script, tmp_path):
    script(
        "import subprocess\nprint('hello from the program')\n"
        "subprocess.run(['echo', 'hello from a child'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "boundwise", "profile", "--json", "prog.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0
    data = json.loads(proc.stdout)  # nothing but the JSON on stdout
    assert data["schema"] == "boundwise.profile/1"
    assert "hello from the program" in proc.stderr
    assert "hello from a child" in proc.stderr


def test_module_and_code_targets(boundwise, script, tmp_path):
    script("import sys, time\ntime.sleep(0.2)\nprint('mod', sys.argv)\n", name="pkg/job.py")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    out = tmp_path / "mod.json"
    run = boundwise("profile", "--output", str(out), "-m", "pkg.job", "--json", json_out=False)
    assert run.code == 0, run.proc.stderr
    data = json.loads(out.read_text())
    assert data["target"] == "-m pkg.job --json"  # --json after the target is the program's
    assert data["breakdown"]["sleep"] > 0.8
    assert "mod ['" in run.proc.stdout and "'--json']" in run.proc.stdout
    assert "Where the time goes" in run.proc.stdout  # and boundwise's own report is the console one
    run = boundwise("-c", "import time, sys; time.sleep(0.3); print(sys.argv)", "z")
    assert run.code == 0, run.proc.stderr
    assert run.profile["breakdown"]["sleep"] > 0.9
    assert "['-c', 'z']" in run.proc.stdout  # with --output, stdout stays the program's


def test_failing_target_still_reports(boundwise, script):
    script("import time\ntime.sleep(0.1)\nraise SystemExit(3)\n")
    run = boundwise("prog.py")
    assert run.code == 1
    assert run.profile["exit_code"] == 3
    script("def f():\n    raise ValueError('boom')\nf()\n", name="bad.py")
    run = boundwise("bad.py")
    assert run.code == 1
    assert run.profile["exit_code"] == 1
    assert "ValueError: boom" in run.proc.stderr
    assert 'File "bad.py", line 2, in f' in run.proc.stderr
    assert "boundwise" not in run.proc.stderr.split("Traceback")[1].split("ValueError")[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "missing.py"], "can't open file 'missing.py'"),
        (["profile", "syntax.py"], "syntax error in syntax.py, line 2"),
        (["profile", "-m", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
        (["profile", "--bogus", "x.py"], "no such option"),
        (["profile", "--interval", "fast", "x.py"], "not a duration"),
        (["profile"], "nothing to run"),
        (["frobnicate"], "No such command"),
        (["advise", "missing.json"], "can't read missing.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(boundwise, script, args, message):
    script("x = 1\ndef broken(:\n", name="syntax.py")
    run = boundwise(*args, json_out=False)
    assert run.code == 2, (run.proc.stdout, run.proc.stderr)
    lines = run.proc.stderr.strip().splitlines()
    assert len(lines) == 1, run.proc.stderr
    assert lines[0].startswith("boundwise: error:")
    assert message.lower() in lines[0].lower()
    assert "Traceback" not in run.proc.stderr


def test_ctrl_c_stops_the_target_and_still_reports(script, tmp_path):
    script("import time\nfor _ in range(600):\n    time.sleep(0.05)\n")
    out = tmp_path / "p.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "boundwise", "profile", "--json", "--output", str(out), "prog.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    data = json.loads(out.read_text())
    assert data["exit_code"] == 130
    assert data["breakdown"]["sleep"] > 0.8
    assert 1.0 < data["wall_s"] < 10
    assert "KeyboardInterrupt" in err and "Traceback" not in err


def test_advise_rereads_a_profile_for_more_cores(boundwise, script, tmp_path):
    script(
        "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\nf(6_000_000)\n"
    )
    run = boundwise("prog.py")
    assert run.profile["recommendation"]["model"] == "processes"
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(run.profile))
    again = boundwise("advise", str(saved), "--cores", "16", "--json", json_out=False)
    assert again.code == 0, again.proc.stderr
    data = json.loads(again.proc.stdout)
    assert data["recommendation"]["predicted_speedup"]["processes"] == pytest.approx(16, rel=0.01)
    assert data["breakdown"] == run.profile["breakdown"]


def test_fallback_without_kernel_evidence_says_so(boundwise, script):
    script("""
        import time
        def spin(n):
            s = 0
            for i in range(n):
                s += i
        time.sleep(0.4)
        spin(12_000_000)
    """)
    run = boundwise("prog.py", env={"BOUNDWISE_PROBE_SOURCE": "stack"})
    assert run.code == 0, run.proc.stderr
    p = run.profile
    assert p["source"] == "stack"
    assert any("Python stacks only" in n for n in p["notes"])
    assert p["breakdown"]["sleep"] > 0.2 and p["breakdown"]["cpu"] > 0.25
    assert run.proc.stdout == ""  # with --output, the report is the file


def test_help_and_version(boundwise):
    run = boundwise("--help", json_out=False)
    assert run.code == 0 and "profile" in run.proc.stdout
    run = boundwise("profile", "--help", json_out=False)
    assert run.code == 0 and "-m module" in run.proc.stdout
    run = boundwise("--version", json_out=False)
    assert run.code == 0 and "boundwise" in run.proc.stdout


def test_main_module_entry_point_matches_console_script(tmp_path: Path):
    exe = Path(sys.executable).parent / "boundwise"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "0.1.0" in proc.stdout


def test_waiting_on_standard_input_is_not_a_child_process(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "boundwise",
            "profile",
            "--json",
            "-c",
            "import sys; sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(0.8)
    out, err = proc.communicate("data\n", timeout=30)
    assert proc.returncode == 0, err
    breakdown = json.loads(out)["breakdown"]
    assert breakdown["other"] > 0.8, breakdown
    assert breakdown["subprocess"] < 0.05
