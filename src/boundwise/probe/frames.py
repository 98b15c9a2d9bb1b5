"""What a thread's Python stack says: whose code it is in, and what it is calling."""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Final

_PACKAGE_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_prefixes() -> tuple[str, ...]:
    # "scripts": console-script launchers (bin/boundwise) are not the user's code.
    keys = ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
    paths = {sysconfig.get_paths().get(k, "") for k in keys}
    try:
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
    except AttributeError:  # site disabled
        pass
    paths.update({sys.base_prefix + os.sep + "lib", _PACKAGE_DIR})
    return tuple(sorted((os.path.normcase(p) + os.sep for p in paths if p), key=len, reverse=True))


_LIBRARY_PREFIXES: Final = _library_prefixes()
_PACKAGE_PREFIX: Final = os.path.normcase(_PACKAGE_DIR) + os.sep
_user_cache: dict[CodeType, bool] = {}


def is_user_code(code: CodeType) -> bool:
    """True for the program's own code: not the standard library, not an installed
    package, not boundwise itself."""
    cached = _user_cache.get(code)
    if cached is not None:
        return cached
    name = code.co_filename
    if name.startswith("<"):
        user = name in ("<string>", "<stdin>") or name.startswith("<ipython")
    else:
        path = os.path.normcase(os.path.abspath(name))
        user = not path.startswith(_LIBRARY_PREFIXES) and (
            "site-packages" not in path and "dist-packages" not in path
        )
    if len(_user_cache) > 50_000:  # code objects of long-running dynamic programs
        _user_cache.clear()
    _user_cache[code] = user
    return user


@dataclass(frozen=True, slots=True)
class Site:
    """A line of the program's own code."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{display_path(self.file)}:{self.line}"


def display_path(path: str) -> str:
    """A path as a user reads it: relative to the working directory when under it."""
    if path.startswith("<"):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def user_site(frame: FrameType | None) -> Site | None:
    """The innermost frame in the program's own code."""
    while frame is not None:
        code = frame.f_code
        if is_user_code(code):
            return Site(code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_name)
        frame = frame.f_back
    return None


def frame_site(frame: FrameType) -> Site:
    code = frame.f_code
    return Site(code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_name)


def module_of(code: CodeType) -> str:
    """A short name for the library module a code object belongs to (``threading``,
    ``concurrent.futures.thread``, ``asyncio.base_events``...); ``""`` for user code."""
    cached = _module_cache.get(code.co_filename)
    if cached is not None:
        return cached
    filename = code.co_filename
    if filename.startswith("<frozen ") and filename.endswith(">"):
        _module_cache[filename] = name = filename[8:-1]  # "<frozen runpy>"
        return name
    path = os.path.normcase(os.path.abspath(filename))
    name = ""
    for prefix in _LIBRARY_PREFIXES:
        if path.startswith(prefix):
            # boundwise itself may live outside site-packages (an editable install).
            if prefix == _PACKAGE_PREFIX:
                prefix = os.path.dirname(_PACKAGE_DIR) + os.sep
            rel = path[len(prefix) :]
            rel = rel.removesuffix(".py").removesuffix(os.sep + "__init__")
            name = rel.replace(os.sep, ".")
            break
    _module_cache[code.co_filename] = name
    return name


_module_cache: dict[str, str] = {}


def stack(frame: FrameType | None, limit: int = 64) -> list[Site]:
    """The stack, innermost frame first, without the frames of whatever launched
    the program (boundwise's command line, click, runpy)."""
    frames: list[FrameType] = []
    while frame is not None and len(frames) < limit:
        frames.append(frame)
        frame = frame.f_back
    while frames and module_of(frames[-1].f_code).partition(".")[0] in _HARNESS:
        frames.pop()
    return [frame_site(f) for f in frames]


_HARNESS: Final = frozenset({"boundwise", "click", "runpy"})


_callee_cache: dict[CodeType, dict[int, str]] = {}


def callee_name(frame: FrameType) -> str:
    """The dotted name of what a frame is calling right now (``time.sleep``,
    ``sock.recv``...), read from its bytecode; ``""`` when it is not in a call."""
    code = frame.f_code
    calls = _callee_cache.get(code)
    if calls is None:
        calls = _calls_in(code)
        if len(_callee_cache) > 10_000:
            _callee_cache.clear()
        _callee_cache[code] = calls
    lasti = frame.f_lasti
    # In a call to a Python function, 3.11 leaves f_lasti inside the CALL's inline
    # cache (up to 8 bytes past it).
    for offset in range(lasti, max(-1, lasti - 10), -2):
        name = calls.get(offset)
        if name is not None:
            return name
    return ""


def _calls_in(code: CodeType) -> dict[int, str]:
    """Map each call instruction's offset to the name of the callable it calls.

    A small symbolic run of the bytecode: loads push names, attribute loads extend
    them, everything else pushes unknowns with its documented stack effect.
    """
    import dis  # only when a call is first looked up

    calls: dict[int, str] = {}
    stack_: list[str] = []
    try:
        instructions = list(dis.get_instructions(code))
    except Exception:
        return calls
    for ins in instructions:
        op = ins.opname
        try:
            if op in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE"):
                name = str(ins.argval)
                if op == "LOAD_GLOBAL" and ins.arg is not None and ins.arg & 1:
                    stack_.append("")  # the NULL pushed for a call
                stack_.append(name)
                continue
            if op in ("LOAD_ATTR", "LOAD_METHOD"):
                base = stack_.pop() if stack_ else ""
                full = f"{base}.{ins.argval}" if base else str(ins.argval)
                method_load = ins.arg is not None and ins.arg & 1 and sys.version_info >= (3, 12)
                if op == "LOAD_METHOD" or method_load:
                    stack_.append("")
                stack_.append(full)
                continue
            if op == "PRECALL":
                # 3.11 runs specialised builtin calls in PRECALL itself: same stack.
                at = len(stack_) - (ins.arg or 0) - 1
                if 0 <= at < len(stack_):
                    calls[ins.offset] = stack_[at] or (stack_[at - 1] if at >= 1 else "")
                continue
            if op in ("KW_NAMES", "CACHE", "EXTENDED_ARG"):
                continue
            if op in ("CALL", "CALL_FUNCTION_EX", "CALL_KW"):
                argc = ins.arg or 0
                if op == "CALL_FUNCTION_EX":
                    argc = 1 + (argc & 1)
                if op == "CALL_KW":
                    argc += 1  # the tuple of keyword names
                depth = len(stack_)
                callee_at = depth - argc - 1
                if 0 <= callee_at < depth:
                    callee = stack_[callee_at] or (stack_[callee_at - 1] if callee_at >= 1 else "")
                    calls[ins.offset] = callee
                    lo = max(0, callee_at - 1)
                    del stack_[lo:]
                else:
                    stack_.clear()
                stack_.append("")
                continue
            if ins.opcode >= dis.HAVE_ARGUMENT:
                effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
            else:
                effect = dis.stack_effect(ins.opcode)
        except (ValueError, IndexError):
            stack_.clear()
            continue
        if effect < 0:
            del stack_[max(0, len(stack_) + effect) :]
        else:
            stack_.extend([""] * effect)
    return calls
