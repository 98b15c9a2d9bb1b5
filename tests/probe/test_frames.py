"""Reading a thread's Python stack: whose code, and which call is in progress."""

from __future__ import annotations

import json
import sys
import threading
import time

from boundwise.probe.frames import callee_name, is_user_code, module_of, stack, user_site


def _frame_of(thread: threading.Thread):
    time.sleep(0.05)
    assert thread.ident is not None
    return sys._current_frames()[thread.ident]


def test_callee_of_a_blocking_builtin_call():
    t = threading.Thread(target=lambda: time.sleep(0.3))
    t.start()
    frame = _frame_of(t)
    assert callee_name(frame) == "time.sleep"
    assert user_site(frame) is not None and user_site(frame).function == "<lambda>"
    t.join()


def test_callee_of_a_call_into_python_code():
    done = threading.Event()

    def parse() -> None:
        while not done.is_set():
            json.loads("[1, 2, 3]")  # a Python function (json/__init__.py) on top

    t = threading.Thread(target=parse)
    t.start()
    try:
        for _ in range(200):
            frame = _frame_of(t)
            while frame is not None and not is_user_code(frame.f_code):
                frame = frame.f_back
            if frame is not None and callee_name(frame) == "json.loads":
                break
        else:
            raise AssertionError("json.loads never seen as the call in progress")
    finally:
        done.set()
        t.join()


def test_library_modules_and_user_code():
    assert module_of(threading.Thread.join.__code__) == "threading"
    assert module_of(json.loads.__code__) == "json"
    assert not is_user_code(json.loads.__code__)
    assert is_user_code(test_library_modules_and_user_code.__code__)


def test_stack_is_innermost_first():
    t = threading.Thread(target=lambda: time.sleep(0.3), name="sleeper")
    t.start()
    sites = stack(_frame_of(t))
    assert sites[0].function == "<lambda>"
    assert sites[-1].function == "_bootstrap"
    t.join()
