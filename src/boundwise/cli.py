"""The ``boundwise`` command."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("boundwise: the command line is not wired yet")
