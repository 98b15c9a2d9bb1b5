"""boundwise: should this code be sync or async? Measured, not guessed."""

from __future__ import annotations

__version__ = "0.1.0"
