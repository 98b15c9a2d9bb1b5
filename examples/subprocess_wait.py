"""Run an external command (`sleep 0.05`) 30 times, one after the other.

The Python process only starts each child and waits for it to exit. The waits
are independent, so asyncio.create_subprocess_exec could run them all at once.
expect: verdict=io-bound model=asyncio dominant=subprocess
"""

from __future__ import annotations

import subprocess
import time

RUNS = 30


def main() -> None:
    started = time.perf_counter()
    for _ in range(RUNS):
        # A real external program: its own CPU and sleep are outside our process.
        subprocess.run(["sleep", "0.05"], check=True, timeout=10)
    print(f"{RUNS} commands in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
