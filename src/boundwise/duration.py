"""Durations as users write them: ``50ms``, ``0.2s``, ``0.05``, ``1m``."""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "m": 60.0, "min": 60.0}
_PATTERN: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]*)\s*$", re.IGNORECASE)


def parse_duration(text: str | float) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ``ValueError`` on bad input."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _PATTERN.match(text)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise ValueError(f"not a duration: {text!r} (try 50ms, 0.2s or 0.05)")
        value = float(match.group(1)) * _UNITS[unit]
    if value <= 0:
        raise ValueError(f"a duration must be positive: {text!r}")
    return value
