"""The concrete fix for a call seen blocking an event loop.

Keyed by the call in progress (as :func:`boundwise.probe.frames.callee_name` reads it
from the bytecode: ``time.sleep``, ``requests.get``, ``json.loads``...) and by the
kind of block the kernel showed. The call decides when it is known; the category
decides otherwise, so every stall gets advice.
"""

from __future__ import annotations

from typing import Final

from boundwise.probe.taxonomy import Category

_TO_THREAD: Final = "`await asyncio.to_thread(...)`"
_TO_PROCESS: Final = (
    "offload it to a process: `await loop.run_in_executor(ProcessPoolExecutor(), ...)`"
)

# (prefixes of the call, advice, category). The first match wins. Prefixes ending in
# "." match a module or object name in the dotted call; others match the whole call or
# its last component. Generic names (``read``, ``acquire``) carry the category they
# mean, so ``resp.read`` blocked on a socket does not get file advice.
_BY_CALL: Final[tuple[tuple[tuple[str, ...], str, Category | None], ...]] = (
    (("time.sleep", "sleep"), "use `await asyncio.sleep(...)` instead of `time.sleep`", None),
    (
        ("requests.", "session.", "urllib.", "urlopen", "http.client", "httplib2.", "urllib3."),
        "use an async HTTP client (`httpx.AsyncClient`, aiohttp) or " + _TO_THREAD,
        None,
    ),
    (
        ("socket.", "sock.", "create_connection", "getaddrinfo", "gethostbyname"),
        "use asyncio streams (`asyncio.open_connection`) or `loop.sock_*`, or " + _TO_THREAD,
        Category.NETWORK,
    ),
    (
        ("subprocess.", "os.system", "os.popen", "os.waitpid", "communicate", "check_output"),
        "use `await asyncio.create_subprocess_exec(...)` instead of `subprocess`",
        None,
    ),
    (
        (
            "sqlite3.",
            "psycopg",
            "pymysql.",
            "mysql.",
            "cursor.",
            "conn.",
            "connection.",
            "cur.",
            "db.",
            "session.execute",
            "engine.",
        ),
        "use an async driver (aiosqlite, asyncpg, psycopg's AsyncConnection) or " + _TO_THREAD,
        None,
    ),
    (
        (
            "threading.",
            "lock.acquire",
            "acquire",
            "event.wait",
            "queue.get",
            "queue.put",
            "result",
            "join",
        ),
        "use `asyncio.Lock`/`asyncio.Event`/`asyncio.Queue`, or wait in " + _TO_THREAD,
        Category.LOCK,
    ),
    (
        (
            "open",
            "os.fsync",
            "fsync",
            "os.read",
            "os.write",
            "read",
            "write",
            "shutil.",
            "pathlib.",
            "path.read",
            "path.write",
            "json.dump",
            "pickle.dump",
        ),
        "do file I/O in " + _TO_THREAD + " (or use aiofiles)",
        Category.DISK,
    ),
)

_BY_CATEGORY: Final[dict[Category, str]] = {
    Category.CPU: _TO_PROCESS + ", or make the endpoint a plain `def`",
    Category.GIL: "another thread holds the GIL: move the CPU-heavy work to a process",
    Category.NETWORK: "use an async client for this network call, or " + _TO_THREAD,
    Category.DISK: "do file I/O in " + _TO_THREAD + " (or use aiofiles)",
    Category.SLEEP: "use `await asyncio.sleep(...)` instead of a blocking sleep",
    Category.SUBPROCESS: "use `await asyncio.create_subprocess_exec(...)`",
    Category.LOCK: "use `asyncio.Lock`/`asyncio.Event`/`asyncio.Queue`, or wait in " + _TO_THREAD,
    Category.IDLE: "the loop was parked outside its own scheduling: wait in " + _TO_THREAD,
    Category.OTHER: "move the blocking call off the loop: " + _TO_THREAD,
}

_BLOCKING: Final = frozenset(
    {Category.NETWORK, Category.DISK, Category.SLEEP, Category.SUBPROCESS, Category.LOCK}
)


def advice_for(call: str, category: Category) -> str:
    """The fix for ``call`` (may be ``""``) seen blocking the loop as ``category``.

    CPU work is never sent to a thread: under the GIL it would still stall the loop.
    """
    if category in (Category.CPU, Category.GIL):
        what = f"`{call}` is CPU work on the loop: " if call else "CPU work on the loop: "
        return what + _BY_CATEGORY[category]
    if call:
        lowered = call.lower()
        leaf = lowered.rpartition(".")[2]
        for prefixes, text, meant in _BY_CALL:
            if meant is not None and category not in (meant, Category.OTHER, Category.IDLE):
                continue
            for prefix in prefixes:
                if prefix.endswith("."):
                    hit = lowered.startswith(prefix) or f".{prefix}" in f".{lowered}"
                else:
                    hit = lowered == prefix or leaf == prefix or lowered.startswith(prefix + ".")
                if hit:
                    return text
    return _BY_CATEGORY.get(category, _BY_CATEGORY[Category.OTHER])


def is_blocking_call(category: Category) -> bool:
    """Whether this category is a blocking call (as opposed to CPU work)."""
    return category in _BLOCKING
