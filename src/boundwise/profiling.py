"""``boundwise.profile()``: measure a block of code, then advise on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields

from .advise import advise
from .probe.profile import Profile
from .probe.sampler import DEFAULT_INTERVAL
from .probe.session import ProbeSession


@contextmanager
def profile(interval: float = DEFAULT_INTERVAL) -> Iterator[Profile]:
    """Measure every thread of this process while the block runs.

    The yielded :class:`Profile` is filled in when the block exits::

        with boundwise.profile() as p:
            run_my_job()
        print(p.verdict, p.recommendation.model, p.breakdown["network"])
    """
    result = Profile()
    session = ProbeSession(interval)
    session.start()
    exit_code = 0
    try:
        yield result
    except BaseException:
        exit_code = 1
        raise
    finally:
        measured = advise(session.stop(target="<block>", exit_code=exit_code))
        for f in fields(Profile):
            setattr(result, f.name, getattr(measured, f.name))
