"""Units, keys, the store lookup, rerun, local processes and provenance, on real quick experiments."""
from __future__ import annotations

import pandas as pd
import pytest

from paperlib.experiments import runner
from paperlib.experiments.continual import scenarios
from paperlib.store import ResultStore


def _config(**changes):
    base = dict(methods=("none", "ewc"), scenarios=("task", "domain"))
    return scenarios.Config.quick(**{**base, **changes})


def test_keys_follow_config_seed_and_code_version(monkeypatch):
    a = scenarios.units(_config())
    keys = {u.key for u in a}
    assert len(keys) == len(a) == 4
    assert [u.key for u in a] == [u.key for u in scenarios.units(_config())]  # stable
    changed = scenarios.units(_config(steps_per_task=16))
    assert not keys & {u.key for u in changed}
    reseeded = scenarios.units(_config(seeds=(1,)))
    assert not keys & {u.key for u in reseeded}
    monkeypatch.setattr(scenarios, "CODE_VERSION", scenarios.CODE_VERSION + 1)
    assert not keys & {u.key for u in scenarios.units(_config())}


def test_device_is_part_of_the_key():
    cpu = runner.make_unit("continual.scenarios", {"x": 1}, 0, "cpu")
    cuda = runner.make_unit("continual.scenarios", {"x": 1}, 0, "cuda")
    assert cpu.key != cuda.key
    assert runner.resolve_device("auto") in ("cpu", "cuda")


def test_lookup_before_computing_and_never_a_stale_hit(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    first = scenarios.run(_config(), store=store, progress=False)
    assert first.report.computed == 4 and not first.report.loaded
    second = scenarios.run(_config(), store=store, progress=False)
    assert second.report.computed == 0 and second.report.loaded == {str(tmp_path): 4}
    pd.testing.assert_frame_equal(first.table, second.table, check_dtype=False)
    assert "4 of 4 runs loaded from" in second.provenance()
    # a changed config is a miss for the changed units only
    third = scenarios.run(_config(methods=("none", "si")), store=store, progress=False)
    assert third.report.computed == 2 and sum(third.report.loaded.values()) == 2
    # a bumped code version is a miss for every unit
    monkeypatch.setattr(scenarios, "CODE_VERSION", scenarios.CODE_VERSION + 1)
    fourth = scenarios.run(_config(), store=store, progress=False)
    assert fourth.report.computed == 4


def test_rerun_forces_recomputation(tmp_path):
    store = ResultStore(tmp_path)
    scenarios.run(_config(), store=store, progress=False)
    again = scenarios.run(_config(), store=store, progress=False, rerun=True)
    assert again.report.computed == 4
    some = scenarios.run(_config(), store=store, progress=False, rerun="method=ewc")
    assert some.report.computed == 2


def test_provenance_is_recorded(tmp_path):
    res = scenarios.run(_config(methods=("none",), scenarios=("task",)), store=ResultStore(tmp_path), progress=False)
    prov = res.report.records[0].provenance
    for key in ("paperlib", "git_commit", "python", "torch", "cpu", "threads", "device", "seconds", "date"):
        assert key in prov, key
    assert prov["threads"] == 1 and prov["device"] == "cpu" and prov["seconds"] > 0


def test_local_processes_give_the_serial_tables(tmp_path):
    serial = scenarios.run(_config(), store=ResultStore(tmp_path / "a"), progress=False)
    parallel = scenarios.run(_config(), store=ResultStore(tmp_path / "b"), progress=False, jobs=2)
    assert parallel.report.computed == 4
    pd.testing.assert_frame_equal(serial.table, parallel.table, check_exact=True)
    pd.testing.assert_frame_equal(serial["accuracy"], parallel["accuracy"], check_exact=True)


def test_results_save_writes_tables_and_config(tmp_path):
    from paperlib.store import load_results

    res = scenarios.run(_config(methods=("none",)), store=ResultStore(tmp_path / "s"), progress=False)
    res.save(tmp_path / "out")
    tables, config = load_results(tmp_path / "out", res.name)
    assert set(tables) == {"runs", "accuracy"}
    assert config["methods"] == ["none"] and config["steps_per_task"] == 15


def test_unknown_executor_and_missing_scheduler(tmp_path, monkeypatch):
    units = scenarios.units(_config(methods=("none",), scenarios=("task",)))
    with pytest.raises(ValueError, match="executor"):
        runner.run_units(units, store=ResultStore(tmp_path), executor="slurm")
    monkeypatch.delenv(runner.SCHEDULER_ENV, raising=False)
    with pytest.raises(ValueError, match="scheduler"):
        runner.run_units(units, store=ResultStore(tmp_path), executor="dask")


def test_findings_come_from_the_numbers(tmp_path):
    res = scenarios.run(_config(), store=ResultStore(tmp_path), progress=False)
    f = res.findings()
    assert {"claim", "measured", "verdict"} <= set(f.columns) and len(f)


def test_config_from_unit_json_and_claim_verdicts():
    from paperlib.experiments.findings import Comparison

    cfg = runner.config_from(scenarios.Config, {"hidden": [8, 4], "seeds": [3], "method": "ignored"})
    assert cfg.hidden == (8, 4) and cfg.seeds == (3,)
    up = Comparison("a", "b", 0.9, 0.01, 3, 0.5, 0.01, 3, "acc")
    level = Comparison("a", "b", 0.5, 0.2, 3, 0.45, 0.2, 3, "acc")
    assert up.claim("higher") == "holds" and up.claim("lower") == "fails" and level.claim() == "unresolved"
