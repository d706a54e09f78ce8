"""Each experiment notebook builds exactly its experiment's `Config()` at its defaults and
`Config.quick()` with quick=True, so the build and `paperlib results verify` know its runs."""
from __future__ import annotations

import json

import pytest

from paperlib.experiments.catalog import EXPERIMENTS, exercise_configs, notebook_config, notebook_units, verify
from paperlib.paths import notebooks_dir


def _config_from_notebook(stem: str, **overrides):
    """Run the notebook's parameters cell (with overrides) and the cell that builds `config`."""
    nb = json.loads((notebooks_dir() / f"{stem}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), stem
    ns: dict = {}
    exec("".join(code[0]["source"]), ns)
    ns.update(overrides)
    cell = next(c for c in code[1:] if "config = " in "".join(c["source"]))
    exec("".join(cell["source"]), ns)
    return ns["config"]


@pytest.mark.parametrize("stem", sorted(EXPERIMENTS))
def test_notebook_defaults_are_the_experiment_defaults(stem):
    assert _config_from_notebook(stem) == notebook_config(stem)
    assert _config_from_notebook(stem, quick=True) == notebook_config(stem, quick=True)


@pytest.mark.parametrize("stem", sorted(EXPERIMENTS))
def test_every_parameter_cell_has_the_run_knobs(stem):
    nb = json.loads((notebooks_dir() / f"{stem}.ipynb").read_text())
    params = "".join(nb["cells"][[c["cell_type"] for c in nb["cells"]].index("code")]["source"])
    for knob in ("quick = ", "rerun = ", "jobs = ", "results_dir = "):
        assert knob in params, (stem, knob)


def test_verify_reports_a_stale_and_a_missing_unit(tmp_path):
    from paperlib.experiments.runner import compute
    from paperlib.store import ResultStore

    unit = notebook_units("11_three_scenarios", quick=True)[0]
    record = compute(unit)
    store = ResultStore(tmp_path)
    store.put(record)
    table = verify(tmp_path)
    assert unit.key not in set(table.loc[table["status"] == "missing", "key"])
    assert not len(table[table["status"] == "stale"])
    # tamper: the stored config no longer hashes to the key
    head = json.loads((tmp_path / unit.experiment / unit.key / "unit.json").read_text())
    head["config"]["stream"]["steps_per_task"] += 1
    (tmp_path / unit.experiment / unit.key / "unit.json").write_text(json.dumps(head))
    table = verify(tmp_path)
    assert unit.key in set(table.loc[table["status"] == "stale", "key"])
    assert len(table[table["status"] == "missing"]) > 100  # an empty layer lacks every default run


def test_an_exercise_override_of_a_nested_config_keeps_its_other_fields():
    for quick in (False, True):
        base = notebook_config("30_distillation", quick=quick)
        (variant,) = exercise_configs("30_distillation", quick=quick)
        assert variant.w2s.weak_train_size == 1000
        assert variant.w2s.strong_steps == base.w2s.strong_steps and variant.kd == base.kd
    quick, faithful = notebook_config("30_distillation", quick=True), notebook_config("30_distillation")
    assert quick.w2s.strong_steps < faithful.w2s.strong_steps
