"""How much slower does a program run under ``boundwise profile``? (goal: <= 1.05x)

Writes two fixed programs to a temporary directory, a CPU-bound one (pure Python,
many small function calls) and an I/O-bound one (short sleeps, small file writes,
socket round trips), plus an empty one that shows each tool's fixed start-up cost,
and times the *whole command* for each of:

    plain        python prog.py
    boundwise    python -m boundwise profile --json --output /dev/null prog.py
    pyinstrument python -m pyinstrument -r text -o <tmp>/out.txt prog.py
    cProfile     python -m cProfile -o <tmp>/out.prof prog.py

Start-up of each tool counts, as a user would feel it. Runs are interleaved
(one of each tool per round, the order rotating every round) so that drift in a noisy
machine hits every tool alike; the ratio to plain is the median of the per-round
ratios. CPU time (user + sys, child processes included) is reported too: on a busy
machine it is steadier than wall time and shows what the tool itself burns.
Finally boundwise's own verdict on each program is printed as a sanity check.

    python benchmarks/profile_overhead.py            # 5 rounds, about 2-3 minutes
    python benchmarks/profile_overhead.py --quick    # 2 rounds
    python benchmarks/profile_overhead.py --repeat 9 --interval 10ms
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

GOAL = 1.05
RUN_TIMEOUT_S = 120

# ~2.5 s plain on a small machine. Function calls on purpose: they are what makes
# deterministic profilers (cProfile) slow, and ordinary code is made of them.
CPU_PROGRAM = """\
def collatz_len(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps

def main():
    best = max(range(1, 380_000), key=collatz_len)
    print("longest chain start:", best)

if __name__ == "__main__":
    main()
"""

# ~2.5 s plain, nearly all of it waiting: sleeps, small writes, socket round trips.
IO_PROGRAM = """\
import os, socket, tempfile, time

def main():
    a, b = socket.socketpair()
    fd, path = tempfile.mkstemp()
    try:
        for i in range(200):
            time.sleep(0.01)
            os.write(fd, b"record %d\\n" % i)
            a.sendall(b"ping %d" % i)
            b.recv(64)
            b.sendall(b"pong")
            a.recv(64)
    finally:
        os.close(fd)
        os.unlink(path)
        a.close()
        b.close()
    print("done")

if __name__ == "__main__":
    main()
"""


# Nothing to run: what is left is each tool's own start-up and shutdown.
EMPTY_PROGRAM = """\
if __name__ == "__main__":
    pass
"""


@dataclass
class Tool:
    name: str
    argv: list[str]  # the command before the script path
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)  # user + sys of the whole command


def tools_for(tmp: Path, interval: str | None) -> list[Tool]:
    py = sys.executable
    bw = [py, "-m", "boundwise", "profile", "--json", "--output", os.devnull]
    if interval:
        bw += ["--interval", interval]
    tools = [Tool("plain", [py]), Tool("boundwise", bw)]
    # The comparison tools are optional: skip, and say so, when one is missing.
    if importlib.util.find_spec("pyinstrument") is not None:
        out = str(tmp / "pyinstrument.txt")
        tools.append(Tool("pyinstrument", [py, "-m", "pyinstrument", "-r", "text", "-o", out]))
    else:
        print("pyinstrument is not installed: left out", file=sys.stderr)
    tools.append(Tool("cProfile", [py, "-m", "cProfile", "-o", str(tmp / "cprofile.prof")]))
    return tools


def timed_run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one command, its children included.

    CPU time barely moves when the machine is busy with something else, so it
    shows a tool's own cost even where wall times are noisy.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")[-2000:]
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{err}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(script: Path, tools: list[Tool], rounds: int) -> None:
    for tool in tools:
        tool.walls.clear()
        tool.cpus.clear()
    for r in range(rounds):
        order = tools[r % len(tools) :] + tools[: r % len(tools)]  # rotate: no fixed position
        for tool in order:
            wall, cpu = timed_run([*tool.argv, str(script)])
            tool.walls.append(wall)
            tool.cpus.append(cpu)
        plain = tools[0].walls[-1]
        line = ", ".join(f"{t.name} {t.walls[-1] / plain:.3f}x" for t in tools[1:])
        print(f"  round {r + 1}/{rounds}: plain {plain:.2f} s; {line}", file=sys.stderr)


def table(program: str, tools: list[Tool]) -> list[str]:
    plain = tools[0].walls
    rows = []
    for tool in tools:
        ratios = [w / p for w, p in zip(tool.walls, plain, strict=True)]
        extra = [w - p for w, p in zip(tool.walls, plain, strict=True)]
        extra_cpu = [c - p for c, p in zip(tool.cpus, tools[0].cpus, strict=True)]
        rows.append(
            f"| {program} | {tool.name} | {statistics.median(tool.walls):.3f} "
            f"| {statistics.median(extra):+.3f} "
            f"| {statistics.median(ratios):.3f} | {min(ratios):.3f} - {max(ratios):.3f} "
            f"| {statistics.median(tool.cpus):.3f} | {statistics.median(extra_cpu):+.3f} |"
        )
    return rows


def boundwise_verdict(script: Path, tmp: Path) -> str:
    out = tmp / f"{script.stem}.profile.json"
    timed_run(
        [sys.executable, "-m", "boundwise", "profile", "--json", "--output", str(out), str(script)]
    )
    profile = json.loads(out.read_text(encoding="utf-8"))
    breakdown = {k: v for k, v in profile["breakdown"].items() if v >= 0.01}
    shown = ", ".join(f"{k} {v:.0%}" for k, v in sorted(breakdown.items(), key=lambda kv: -kv[1]))
    return (
        f"{script.name}: verdict={profile['verdict']} "
        f"model={profile['recommendation']['model']} ({shown}; "
        f"{profile['samples']} samples, wall {profile['wall_s']:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    parser.add_argument("--repeat", type=int, help="rounds per program (overrides --quick)")
    parser.add_argument(
        "--interval", help="boundwise's sampling interval (e.g. 10ms); default: its own"
    )
    args = parser.parse_args()
    rounds = args.repeat or (2 if args.quick else 5)
    if rounds < 1:
        parser.error("--repeat must be at least 1")

    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()} ({sys.executable})"
    )
    interval = args.interval or "default"
    print(
        f"rounds: {rounds} per program, interleaved; boundwise interval: {interval}; "
        f"goal for boundwise: <= {GOAL:.2f}x\n"
    )

    with tempfile.TemporaryDirectory(prefix="boundwise-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        sources = {"cpu-bound": CPU_PROGRAM, "io-bound": IO_PROGRAM, "empty": EMPTY_PROGRAM}
        programs = {}
        for program, source in sources.items():
            programs[program] = tmp / f"{program.replace('-', '_')}_prog.py"
            programs[program].write_text(textwrap.dedent(source), encoding="utf-8")

        rows = [
            "| program | tool | median wall (s) | extra wall (s) "
            "| wall ratio to plain (median) | ratio range | median cpu (s) | extra cpu (s) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        boundwise_ratios = {}
        for program, script in programs.items():
            print(f"measuring {program} ({script.name}) ...", file=sys.stderr)
            tools = tools_for(tmp, args.interval)
            measure(script, tools, rounds)
            rows += table(program, tools)
            bw = next(t for t in tools if t.name == "boundwise")
            boundwise_ratios[program] = statistics.median(
                w / p for w, p in zip(bw.walls, tools[0].walls, strict=True)
            )

        print("\n".join(rows))
        print()
        for program, ratio in boundwise_ratios.items():
            if program == "empty":
                continue  # start-up only: the "extra" column is the figure that matters
            status = "meets" if ratio <= GOAL else "MISSES"
            print(f"boundwise on {program}: {ratio:.3f}x, {status} the {GOAL:.2f}x goal")
        print("\nboundwise's own verdicts (sanity check):")
        for program, script in programs.items():
            if program != "empty":
                print("  " + boundwise_verdict(script, tmp))


if __name__ == "__main__":
    main()
