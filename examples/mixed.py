"""Fetch a page from a slow local service (40 ms), then parse it in pure Python (~40 ms); 25 times.

Half the time waits on the network, half computes, one after the other on one
thread. Neither half dominates: overlap the fetches (asyncio or threads) and move
the parsing to processes, a hybrid model.
expect: verdict=mixed model=hybrid dominant=cpu|network
"""

from __future__ import annotations

import http.client
import time

from _server import local_server

PAGES = 25
SERVER_DELAY_S = 0.04
PAGE_BYTES = 4096
PARSE_PASSES = 120  # about 40 ms of pure Python per page


def parse(page: bytes) -> int:
    """Decode the page as hex pairs, several passes (a stand-in for real parsing work)."""
    text = page.decode("ascii")
    total = 0
    for _ in range(PARSE_PASSES):
        for i in range(0, len(text) - 1, 2):
            total += int(text[i : i + 2], 16)
    return total


def main() -> None:
    with local_server(delay=SERVER_DELAY_S, body_size=PAGE_BYTES) as port:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        checksum = 0
        try:
            for i in range(PAGES):
                conn.request("GET", f"/page/{i}")
                page = conn.getresponse().read()  # ~40 ms waiting on the socket
                checksum += parse(page)  # ~40 ms of CPU
        finally:
            conn.close()
        elapsed = time.perf_counter() - started
    print(f"{PAGES} pages parsed (checksum {checksum}) in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
