"""From measured figures to a verdict, a model and the reason for it."""

from __future__ import annotations

from ..probe.profile import MODELS, Profile, Recommendation, SiteProfile
from .speedup import Work, predicted_speedup

BOUND_SHARE = 0.65
"""Share of the work (CPU, or overlappable waits) that makes a program cpu- or io-bound."""
WORTH_IT = 1.3
"""Below this predicted speedup, no model is worth a change (or the measurement's
margin of error): stay sync."""
NEAR_BEST = 0.85
"""Models within this share of the best speedup count as equally good; the
simplest fitting one is recommended."""

_PREFERENCE = {
    "cpu-bound": ("threads", "processes", "hybrid", "asyncio"),
    "mixed": ("hybrid", "processes", "threads", "asyncio"),
    # No event loop waits on a disk: threads overlap those waits.
    "mixed-disk": ("threads", "hybrid", "processes", "asyncio"),
}
_WHAT = {
    "network": "waits on the network",
    "disk": "waits on the disk",
    "sleep": "sleeps",
    "subprocess": "waits on child processes",
    "other": "waits on something unrecognised",
}


def verdict_of(work: Work) -> str:
    """``cpu-bound``, ``io-bound`` or ``mixed``, from the shares of the sync work."""
    if work.total <= 0:
        return "mixed"
    if work.cpu / work.total >= BOUND_SHARE:
        return "cpu-bound"
    if work.waits / work.total >= BOUND_SHARE:
        return "io-bound"
    return "mixed"


def choose_model(verdict: str, work: Work, speedup: dict[str, float]) -> str:
    best = max(speedup.values())
    if best < WORTH_IT:
        return "sync"
    candidates = {m for m, s in speedup.items() if s >= NEAR_BEST * best and m != "sync"}
    if verdict == "io-bound":
        # No event loop waits on a disk: threads first when the disk dominates.
        loop_waits = work.network + work.sleep + work.subprocess
        first = ("asyncio", "threads") if loop_waits >= work.disk else ("threads", "asyncio")
        order: tuple[str, ...] = (*first, "hybrid", "processes")
    elif verdict == "mixed" and work.disk > work.network + work.sleep + work.subprocess:
        order = _PREFERENCE["mixed-disk"]
    else:
        order = _PREFERENCE[verdict]
    return next((m for m in order if m in candidates), max(speedup, key=lambda m: speedup[m]))


def advise(profile: Profile) -> Profile:
    """Fill in the profile's verdict and recommendation; returns the same profile."""
    work = Work.from_profile(profile)
    speedup = predicted_speedup(work, profile.cores)
    verdict = verdict_of(work)
    model = choose_model(verdict, work, speedup)
    profile.verdict = verdict
    profile.recommendation = Recommendation(model, _reason(profile, work, model, speedup), speedup)
    return profile


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _top(profile: Profile, category: str) -> str:
    """The call site that drove a category, when one did: a line holding a tiny
    share of it (the time was in library code on threads of its own) is not named."""
    sites: list[SiteProfile] = profile.sites_for(category)
    if not sites or sites[0].fraction < 0.2 * profile.breakdown.get(category, 0.0):
        return ""
    s = sites[0]
    return f" (top: {s.location} in {s.function}, {_pct(s.fraction)} of thread time)"


def _reason(profile: Profile, work: Work, model: str, speedup: dict[str, float]) -> str:
    b = profile.breakdown
    parts: list[str] = []
    if work.total <= 0:
        return "nothing was measured: the program did no work while sampled"
    cpu_share = work.cpu / work.total
    if cpu_share >= 0.05:
        native = work.cpu_native / work.cpu if work.cpu else 0.0
        kind = "CPU"
        if native >= 0.5:
            kind = f"CPU, {_pct(native)} of it in native code that releases the GIL"
        parts.append(f"{_pct(cpu_share)} of the work is {kind}{_top(profile, 'cpu')}")
    waits = {k: getattr(work, k) for k in _WHAT}
    for name, secs in sorted(waits.items(), key=lambda kv: -kv[1]):
        if secs / work.total >= 0.05:
            parts.append(f"{_pct(secs / work.total)} {_WHAT[name]}{_top(profile, name)}")
    if b.get("gil", 0.0) >= 0.05:
        parts.append(
            f"threads wait for the GIL {_pct(b['gil'])} of thread time{_top(profile, 'gil')}"
        )
    if b.get("lock", 0.0) >= 0.05:
        parts.append(
            f"threads wait on locks {_pct(b['lock'])} of thread time{_top(profile, 'lock')}"
        )
    measured = "; ".join(parts) + "."
    others = ", ".join(f"{m} {speedup[m]:.1f}x" for m in MODELS if m not in ("sync", model))
    why = {
        "sync": "no execution model is predicted to make it faster than "
        f"{WORTH_IT:.1f}x ({others}), so keep it simple"
        + (
            "; the work under the lock runs one thread at a time whatever the model: "
            "shrink the critical section"
            if work.serial > 0.2 * work.total
            else ""
        ),
        "threads": "threads overlap these waits and native code runs on every core",
        "asyncio": "an event loop overlaps these waits on one thread, thousands at a time",
        "processes": f"processes run Python on all {profile.cores} cores, free of the GIL",
        "hybrid": "an event loop overlaps the waits while a process pool runs the CPU work",
    }[model]
    if model != "sync":
        why += f": predicted {speedup[model]:.1f}x over sync ({others})"
    return f"{measured} Recommended {model}: {why}."
