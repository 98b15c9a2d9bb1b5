"""Pure-Python number crunching on one thread: count primes by trial division.

Every instruction is Python bytecode holding the GIL, so the one thread is always
on the CPU. Threads cannot speed this up (GIL); separate processes can.
expect: verdict=cpu-bound model=processes dominant=cpu
"""

from __future__ import annotations

import time

CHUNK = 45_000  # numbers tested per chunk
CHUNKS = 25  # about 2 s on one core of the machine it was tuned on


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


def count_primes(start: int, stop: int) -> int:
    return sum(1 for n in range(start, stop) if is_prime(n))


def main() -> None:
    started = time.perf_counter()
    total = 0
    # Fixed work in chunks, so the run is bounded in count and (as a guard) in time.
    for chunk in range(CHUNKS):
        total += count_primes(chunk * CHUNK, (chunk + 1) * CHUNK)
        if time.perf_counter() - started > 10.0:
            break
    print(f"{total} primes below {(chunk + 1) * CHUNK} in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
