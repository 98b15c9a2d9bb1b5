"""The ``boundwise`` command.

Exit status: 0 on success, 1 when the target failed (its own status is in the
profile), 2 for bad usage or input, with a one-line error and no traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any, NoReturn

import click

from . import __version__

EXIT_TARGET_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class BadInput(click.ClickException):
    exit_code = EXIT_USAGE


def _fail(message: str) -> NoReturn:
    raise BadInput(message)


def _duration(value: str, option: str) -> float:
    from .duration import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        _fail(f"{option}: {exc}")


def _split_target(argv: tuple[str, ...], command: str) -> tuple[str, str, list[str]]:
    """``script.py args``, ``-m module args`` or ``-c code args``: (kind, value, args)."""
    if not argv:
        _fail(
            f"nothing to run: give a script, -m module or -c code (see boundwise {command} --help)"
        )
    head, rest = argv[0], list(argv[1:])
    if head in ("-m", "-c"):
        if not rest:
            _fail(f"{head} needs an argument")
        return ("module" if head == "-m" else "code"), rest[0], rest[1:]
    if head.startswith("-m") or head.startswith("-c"):
        return ("module" if head[1] == "m" else "code"), head[2:], rest
    if head.startswith("-"):
        _fail(f"no such option: {head} (see boundwise {command} --help)")
    return "script", head, rest


_TARGET_HELP = """
TARGET is what `python` would run: `script.py [args...]`, `-m module [args...]`
or `-c code [args...]`. Everything after it belongs to the program.
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="boundwise")
def cli() -> None:
    """Should this code be sync or async? Measure where the time goes."""


def program_command(report: str) -> Callable[[Callable[..., None]], click.Command]:
    """A command that runs a program (TARGET...) and reports on it as text or JSON."""

    def decorate(f: Callable[..., None]) -> click.Command:
        f = click.argument("target", nargs=-1, type=click.UNPROCESSED, metavar="TARGET...")(f)
        f = click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, writable=True),
            help=f"Write the JSON {report} to this file.",
        )(f)
        f = click.option(
            "--json",
            "as_json",
            is_flag=True,
            help=f"Print the {report} as JSON (the program's stdout goes to stderr).",
        )(f)
        settings = {"ignore_unknown_options": True, "allow_interspersed_args": False}
        return cli.command(context_settings=settings, epilog=_TARGET_HELP)(f)

    return decorate


@program_command("profile")
@click.option(
    "--interval", default="5ms", show_default=True, help="Sampling interval (e.g. 5ms, 0.01)."
)
def profile(as_json: bool, output: str | None, interval: str, target: tuple[str, ...]) -> None:
    """Run a program and show where its time goes, and which model fits.

    \b
      boundwise profile app.py --port 8000
      boundwise profile -m mypkg.job
      boundwise profile -c "import time; time.sleep(1)"
      boundwise profile --json --output profile.json app.py
    """
    from .probe.target import Target, TargetError

    kind, value, args = _split_target(target, "profile")
    seconds = _duration(interval, "--interval")
    program = Target(kind, value, args)  # type: ignore[arg-type]
    try:
        program.prepare()
    except TargetError as exc:
        _fail(str(exc))
    out_stream = _open_output(output)
    code, measured = _run_profiled(program, seconds, redirect_stdout=as_json and output is None)
    _emit(measured, as_json=as_json, out_stream=out_stream)
    sys.exit(EXIT_INTERRUPTED if code == EXIT_INTERRUPTED else (EXIT_TARGET_FAILED if code else 0))


def _open_output(output: str | None) -> IO[str] | None:
    if output is None:
        return None
    try:
        return open(output, "w", encoding="utf-8")
    except OSError as exc:
        _fail(f"can't write {output}: {exc.strerror}")


def _run_profiled(program: Any, interval: float, redirect_stdout: bool) -> tuple[int, Any]:
    from .advise import advise
    from .probe.session import ProbeSession

    saved_stdout = -1
    if redirect_stdout:
        # The program's output (and its children's) goes to stderr; stdout is the JSON's.
        sys.stdout.flush()
        saved_stdout = os.dup(1)
        os.dup2(2, 1)
    session = ProbeSession(interval)
    session.start()
    code = EXIT_INTERRUPTED
    try:
        code = program.run()
    except KeyboardInterrupt:  # a second Ctrl-C while waiting for the program's threads
        code = EXIT_INTERRUPTED
    finally:
        measured = session.stop(target=str(program), exit_code=code)
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        if saved_stdout >= 0:
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)
    return code, advise(measured)


def _emit(measured: Any, *, as_json: bool, out_stream: IO[str] | None) -> None:
    from .report import json as json_report

    if out_stream is not None:
        with out_stream:
            json_report.write(measured, out_stream)
    if as_json:
        if out_stream is None:
            json_report.write(measured, sys.stdout)
        return
    from .report.console import render

    render(measured, sys.stdout)


@program_command("stalls")
@click.option(
    "--threshold",
    default="100ms",
    show_default=True,
    help="Report the loop blocked longer than this (e.g. 50ms).",
)
def watch(threshold: str, as_json: bool, output: str | None, target: tuple[str, ...]) -> None:
    """Run a program and report every stall of its event loops: where, how long,
    and whether it was CPU work or a blocking call.

    \b
      boundwise watch app.py
      boundwise watch --threshold 50ms --json --output stalls.json -m myservice
    """
    kind, value, args = _split_target(target, "watch")
    seconds = _duration(threshold, "--threshold")
    from .watch.command import run_watch

    sys.exit(run_watch(kind, value, args, seconds, as_json, output))


@cli.command()
@click.argument("profile_file", type=click.Path(dir_okay=False), metavar="PROFILE.json")
@click.option("--json", "as_json", is_flag=True, help="Print the advised profile as JSON.")
@click.option(
    "--cores", type=click.IntRange(min=1), help="Advise for a machine with this many cores."
)
def advise(profile_file: str, as_json: bool, cores: int | None) -> None:
    """Advise again on a saved profile (e.g. for a machine with more cores)."""
    from .advise import advise as advise_profile
    from .probe.profile import Profile

    try:
        with open(profile_file, encoding="utf-8") as f:
            data = json.load(f)
        measured = Profile.from_dict(data)
    except OSError as exc:
        _fail(f"can't read {profile_file}: {exc.strerror}")
    except (ValueError, KeyError, TypeError) as exc:
        _fail(f"{profile_file} is not a boundwise profile: {exc}")
    if cores:
        measured.cores = cores
    _emit(advise_profile(measured), as_json=as_json, out_stream=None)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, distinct exit codes, no tracebacks for bad input."""
    try:
        cli.main(args=argv, prog_name="boundwise", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # plain `boundwise`: the help
        click.echo(exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(f"boundwise: error: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"boundwise: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
