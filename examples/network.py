"""Call a slow HTTP service 80 times in a row with http.client (one kept-alive connection).

The service (examples/_server.py, a separate local process) answers after 20 ms,
so this program spends nearly all its time waiting for replies on a socket.
The requests are independent: asyncio could have them all in flight at once.
expect: verdict=io-bound model=asyncio dominant=network
"""

from __future__ import annotations

import http.client
import time

from _server import local_server

REQUESTS = 80
SERVER_DELAY_S = 0.02


def main() -> None:
    with local_server(delay=SERVER_DELAY_S) as port:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        received = 0
        try:
            for i in range(REQUESTS):
                conn.request("GET", f"/item/{i}")
                received += len(conn.getresponse().read())  # waits ~20 ms for the reply
        finally:
            conn.close()
        elapsed = time.perf_counter() - started
    print(f"{REQUESTS} requests, {received} bytes in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
