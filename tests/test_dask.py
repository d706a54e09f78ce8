"""Units on a real dask.distributed cluster: same tables as the serial run, and a worker killed
mid-sweep loses nothing and duplicates nothing."""
from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest

from paperlib.experiments.continual import scenarios
from paperlib.store import ResultStore

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def _config(steps: int = 15):
    return scenarios.Config.quick(methods=("none", "ewc", "lwf"), scenarios=("task", "domain"), steps_per_task=steps)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      worker_dashboard_address=None) as c:
        yield c


def test_cluster_sweep_matches_serial(cluster, tmp_path):
    serial = scenarios.run(_config(), store=ResultStore(tmp_path / "serial"), progress=False)
    remote = scenarios.run(_config(), store=ResultStore(tmp_path / "dask"), progress=False, executor="dask",
                           scheduler=cluster.scheduler_address)
    assert remote.report.computed == 6
    pd.testing.assert_frame_equal(serial.table, remote.table, check_exact=True)
    pd.testing.assert_frame_equal(serial["accuracy"], remote["accuracy"], check_exact=True)
    # rows came back to the client's store: a second run loads every unit
    again = scenarios.run(_config(), store=ResultStore(tmp_path / "dask"), progress=False)
    assert again.report.computed == 0


def test_scheduler_from_the_environment(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DASK_SCHEDULER", cluster.scheduler_address)
    res = scenarios.run(scenarios.Config.quick(methods=("none",), scenarios=("task",)), store=ResultStore(tmp_path),
                        progress=False, executor="dask")
    assert res.report.computed == 1


def test_killed_worker_loses_and_duplicates_nothing(cluster, tmp_path):
    from distributed import Client

    config = _config(steps=300)  # long enough units that the kill lands mid-sweep
    store_dir = tmp_path / "store"
    killed = []

    def kill_one_worker_after_first_unit():
        deadline = time.time() + 120
        folder = store_dir / scenarios.NAME
        while time.time() < deadline:
            if folder.is_dir() and any((p / "unit.json").is_file() for p in folder.iterdir()):
                break
            time.sleep(0.05)
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            pids = client.run(os.getpid)
        pid = sorted(pids.values())[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_one_worker_after_first_unit)
    killer.start()
    res = scenarios.run(config, store=ResultStore(store_dir), progress=False, executor="dask",
                        scheduler=cluster.scheduler_address)
    killer.join()
    assert killed, "no worker was killed"
    units = scenarios.units(config)
    folders = sorted(p.name for p in (store_dir / scenarios.NAME).iterdir())
    assert folders == sorted(u.key for u in units)  # every unit once, no leftovers
    assert len(res.table) == len(units)
    serial = scenarios.run(config, store=ResultStore(tmp_path / "serial"), progress=False)
    pd.testing.assert_frame_equal(serial.table, res.table, check_exact=True)
