"""The speedup model and the choice of model, on profiles with known figures."""

from __future__ import annotations

import json

import pytest

from boundwise.advise import Work, advise, model_times, predicted_speedup
from boundwise.probe.profile import Profile, ThreadProfile


def profile_of(
    cores: int = 2, native: float = 0.0, serial: float = 0.0, **seconds: float
) -> Profile:
    full = {
        c: 0.0
        for c in ("cpu", "network", "disk", "sleep", "subprocess", "lock", "gil", "other", "idle")
    }
    full.update(seconds)
    return Profile(
        target="t.py",
        cores=cores,
        seconds=full,
        native_cpu_s=native,
        serial_s=serial,
        wall_s=sum(full.values()),
    )


@pytest.mark.parametrize(
    ("seconds", "native", "serial", "verdict", "model"),
    [
        ({"cpu": 10.0}, 0.0, 0.0, "cpu-bound", "processes"),
        ({"cpu": 10.0, "gil": 30.0}, 0.0, 0.0, "cpu-bound", "processes"),
        ({"cpu": 10.0}, 9.5, 0.0, "cpu-bound", "threads"),
        ({"sleep": 10.0, "cpu": 0.05}, 0.0, 0.0, "io-bound", "asyncio"),
        ({"network": 9.0, "cpu": 0.4}, 0.0, 0.0, "io-bound", "asyncio"),
        ({"disk": 9.0, "cpu": 0.4}, 0.0, 0.0, "io-bound", "threads"),
        ({"subprocess": 9.0, "cpu": 0.3}, 0.0, 0.0, "io-bound", "asyncio"),
        ({"cpu": 5.0, "network": 5.0}, 0.0, 0.0, "mixed", "hybrid"),
        ({"cpu": 8.0, "network": 2.0}, 0.0, 0.0, "cpu-bound", "hybrid"),
        ({"sleep": 3.0, "lock": 9.0}, 0.0, 3.0, "io-bound", "sync"),
        ({}, 0.0, 0.0, "mixed", "sync"),
    ],
)
def test_verdict_and_model(seconds, native, serial, verdict, model):
    p = advise(profile_of(native=native, serial=serial, **seconds))
    assert p.verdict == verdict
    assert p.recommendation is not None
    assert p.recommendation.model == model, p.recommendation


def test_one_core_makes_processes_pointless():
    p = advise(profile_of(cores=1, cpu=10.0))
    assert p.recommendation is not None
    assert p.recommendation.model == "sync"
    assert p.recommendation.predicted_speedup["processes"] == pytest.approx(1.0)


def test_speedups_follow_the_documented_bounds():
    work = Work(
        cpu_python=2.0,
        cpu_native=2.0,
        network=6.0,
        disk=0.0,
        sleep=0.0,
        subprocess=0.0,
        other=0.0,
        serial=0.0,
    )
    times = model_times(work, cores=4)
    assert times["sync"] == pytest.approx(10.0)
    assert times["threads"] == pytest.approx(max(2.0, 4.0 / 4, 10.0 / 32))
    assert times["asyncio"] == pytest.approx(4.0)
    assert times["processes"] == pytest.approx(2.5)
    assert times["hybrid"] == pytest.approx(max(1.0, 10.0 / 256))
    speed = predicted_speedup(work, cores=4)
    assert speed["sync"] == 1.0 and speed["hybrid"] == pytest.approx(10.0)


def test_serial_work_caps_every_model():
    work = Work(
        cpu_python=0.0,
        cpu_native=0.0,
        network=10.0,
        disk=0.0,
        sleep=0.0,
        subprocess=0.0,
        other=0.0,
        serial=5.0,
    )
    speed = predicted_speedup(work, cores=8)
    assert max(speed.values()) < 2.0  # Amdahl: half of it runs one at a time


def test_lock_queueing_implies_serial_work_without_sampled_contention():
    threads = [ThreadProfile(f"t{i}", i, 1, {"sleep": 1.0, "lock": 3.0}) for i in range(4)]
    p = profile_of(sleep=4.0, lock=12.0)
    p.threads = threads
    advised = advise(p)
    assert advised.recommendation is not None and advised.recommendation.model == "sync"
    assert "shrink the critical section" in advised.recommendation.reason


def test_reason_names_figures_and_sites():
    from boundwise.probe.profile import SiteProfile

    p = profile_of(network=9.5, cpu=0.5)
    p.sites = [SiteProfile("app.py", 42, "fetch", "network", 7.0, 0.7)]
    advised = advise(p)
    assert advised.recommendation is not None
    reason = advised.recommendation.reason
    assert "95% waits on the network" in reason
    assert "app.py:42 in fetch" in reason
    assert "Recommended asyncio" in reason


def test_profile_json_round_trip():
    p = advise(profile_of(network=8.0, cpu=2.0, native=0.5, serial=0.1, idle=3.0))
    p.threads = [ThreadProfile("MainThread", 7, 1, dict(p.seconds))]
    data = json.loads(json.dumps(p.to_dict()))
    back = Profile.from_dict(data)
    assert back.breakdown == pytest.approx(p.breakdown, abs=1e-3)
    assert back.native_cpu_s == pytest.approx(0.5, abs=1e-3)
    assert back.serial_s == pytest.approx(0.1)
    assert back.threads[0].breakdown == pytest.approx(p.threads[0].breakdown, abs=1e-3)
    again = advise(back)
    assert again.recommendation is not None and p.recommendation is not None
    assert again.recommendation.model == p.recommendation.model


def test_not_a_profile_is_rejected():
    with pytest.raises(ValueError, match="not a boundwise profile"):
        Profile.from_dict({"schema": "something/else"})
