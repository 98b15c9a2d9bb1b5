"""watch: catch blocked event loops — where, for how long, CPU or a blocking call."""

from __future__ import annotations

from .stall import SCHEMA, Stall
from .watchdog import Watchdog, watch

__all__ = ["SCHEMA", "Stall", "Watchdog", "watch"]
