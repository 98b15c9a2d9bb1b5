"""The JSON form of a profile (schema ``boundwise.profile/1``)."""

from __future__ import annotations

import json
from typing import IO

from ..probe.profile import Profile


def dumps(profile: Profile) -> str:
    return json.dumps(profile.to_dict(), indent=2)


def write(profile: Profile, stream: IO[str]) -> None:
    stream.write(dumps(profile))
    stream.write("\n")
    stream.flush()
