"""Runtime(cluster=...): the CPU route on a real Dask LocalCluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import runtime_work as w

import boundwise as bw
from boundwise.runtime.api import Runtime
from boundwise.runtime.errors import RemoteTraceback, TaskTimeout

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    # The module's cluster outlives each test; the runtime's own threads must not.
    yield


def test_cpu_route_runs_on_the_cluster(cluster: Any) -> None:
    with Runtime(threads=2, processes=1, cluster=cluster) as rt:
        assert w.t_cpu_pid().result(timeout=60) != os.getpid()
        assert rt.worker_pids == []  # no local worker process was started
        with pytest.raises(KeyError, match="boom") as info:
            w.t_cpu_fail("boom").result(timeout=60)
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "t_cpu_fail" in info.value.__cause__.tb
        cpu_add = bw.task(kind="cpu")(w.add)
        assert list(rt.map(cpu_add, range(8), concurrency=4)) == list(range(8))


def test_auto_learns_and_sends_cpu_work_to_the_cluster(cluster: Any) -> None:
    with Runtime(threads=2, processes=1, cluster=cluster) as rt:
        pids = [rt.submit(w.cpu_then_pid, 20).result(timeout=60)[0] for _ in range(5)]
        assert pids[0] == os.getpid()
        assert pids[-1] != os.getpid()
        assert rt.stats()["cpu_then_pid"]["route"] == "process"


def test_timeout_on_the_cluster_releases_the_call(cluster: Any) -> None:
    with (
        Runtime(threads=2, processes=1, cluster=cluster),
        pytest.raises(TaskTimeout, match="Dask"),
    ):
        w.t_cpu_hang().result(timeout=60)
