"""Run a program exactly as ``python`` would: a script, ``-m module`` or ``-c code``.

The program runs in this process (so the sampler sees its threads): its
``__main__``, ``sys.argv``, ``sys.path[0]``, ``__file__`` and exit status are
what ``python`` gives it; an uncaught exception prints its traceback (without
boundwise's frames) and exits 1; Ctrl-C stops it with status 130.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import sys
import threading
import types
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Literal

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUNPY = "<frozen runpy>"

Kind = Literal["script", "module", "code"]


class TargetError(Exception):
    """The program cannot be started (no such file, syntax error, unknown module)."""


@dataclass
class Target:
    kind: Kind
    value: str
    args: list[str] = field(default_factory=list)
    _code: CodeType | None = None

    def __str__(self) -> str:
        head = {"script": self.value, "module": f"-m {self.value}", "code": "-c ..."}[self.kind]
        return " ".join([head, *self.args])

    def prepare(self) -> None:
        """Check the program can start, before anything is measured."""
        if self.kind == "script":
            if not os.path.exists(self.value):
                raise TargetError(f"can't open file {self.value!r}: no such file")
            if os.path.isdir(self.value):
                raise TargetError(f"{self.value!r} is a directory, not a Python script")
            try:
                with open(self.value, "rb") as f:
                    source = f.read()
            except OSError as exc:
                raise TargetError(f"can't open file {self.value!r}: {exc.strerror}") from None
            self._code = _compile(source, self.value)
        elif self.kind == "code":
            self._code = _compile(self.value.encode(), "<string>")
        else:
            if not self.value or self.value.startswith("."):
                raise TargetError(f"relative module names are not supported: {self.value!r}")
            saved = list(sys.path)
            sys.path.insert(0, os.getcwd())
            try:
                spec = importlib.util.find_spec(self.value)
                if spec is not None and spec.submodule_search_locations is not None:
                    spec = importlib.util.find_spec(self.value + ".__main__")
                    if spec is None:
                        raise TargetError(
                            f"no module named {self.value}.__main__; "
                            f"{self.value!r} is a package and cannot be directly executed"
                        )
            except ImportError as exc:
                raise TargetError(f"no module named {self.value!r} ({exc})") from None
            except SyntaxError as exc:
                raise TargetError(_syntax_message(exc)) from None
            finally:
                sys.path[:] = saved
            if spec is None:
                raise TargetError(f"no module named {self.value!r}")
            loader = spec.loader
            if loader is not None and hasattr(loader, "get_code"):
                try:
                    loader.get_code(spec.name)
                except SyntaxError as exc:
                    raise TargetError(_syntax_message(exc)) from None

    def run(self) -> int:
        """Run the program to its end; returns its exit status."""
        if self._code is None and self.kind != "module":
            self.prepare()
        try:
            try:
                self._execute()
            finally:
                _wait_for_threads()
        except SystemExit as exc:
            return _exit_status(exc)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", file=sys.stderr)
            return 130
        except BaseException as exc:
            _print_exception(exc)
            return 1
        return 0

    def _execute(self) -> None:
        if self.kind == "module":
            sys.argv = [self.value, *self.args]
            sys.path[0:1] = [os.getcwd()]
            import runpy

            runpy.run_module(self.value, run_name="__main__", alter_sys=True)
            return
        assert self._code is not None
        main = types.ModuleType("__main__")
        main.__dict__.update({"__builtins__": builtins, "__spec__": None, "__loader__": None})
        if self.kind == "script":
            main.__file__ = self.value
            main.__cached__ = None  # type: ignore[attr-defined]
            sys.argv = [self.value, *self.args]
            sys.path[0:1] = [os.path.dirname(os.path.abspath(self.value))]
        else:
            sys.argv = ["-c", *self.args]
            sys.path[0:1] = [""]
        sys.modules["__main__"] = main
        exec(self._code, main.__dict__)


def _compile(source: bytes, filename: str) -> CodeType:
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise TargetError(_syntax_message(exc)) from None
    except ValueError as exc:  # null bytes
        raise TargetError(f"can't compile {filename}: {exc}") from None


def _syntax_message(exc: SyntaxError) -> str:
    where = f"{exc.filename}, line {exc.lineno}" if exc.lineno else str(exc.filename)
    return f"syntax error in {where}: {exc.msg}"


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _wait_for_threads() -> None:
    """Wait for non-daemon threads, and run threading's exit hooks, as the
    interpreter does when ``__main__`` ends (executors shut down there)."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()


def _print_exception(exc: BaseException) -> None:
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    import traceback

    traceback.print_exception(type(exc), exc, tb)


def _is_ours(filename: str) -> bool:
    return filename == _RUNPY or os.path.abspath(filename).startswith(_PACKAGE_DIR)
