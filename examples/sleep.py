"""A polling loop: do a little bookkeeping, then time.sleep(0.02), 90 times.

The thread is almost always asleep. Nothing here needs a CPU; an event loop
(asyncio.sleep) could run thousands of such waits side by side on one thread.
expect: verdict=io-bound model=asyncio dominant=sleep
"""

from __future__ import annotations

import time

TICKS = 90
TICK_S = 0.02


def main() -> None:
    started = time.perf_counter()
    readings: list[float] = []
    for tick in range(TICKS):
        # Trivial work between waits: record how far behind schedule this tick is.
        readings.append(time.perf_counter() - started - tick * TICK_S)
        time.sleep(TICK_S)
    drift_ms = 1000 * readings[-1]
    print(f"{TICKS} ticks in {time.perf_counter() - started:.2f} s, drift {drift_ms:.1f} ms")


if __name__ == "__main__":
    main()
