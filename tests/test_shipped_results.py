"""The results shipped in data/results match the code: every notebook default and quick run is
there, no run's key is stale, and a sample of runs recomputed here gives identical rows."""
from __future__ import annotations

import pandas as pd
import pytest

from paperlib.experiments.catalog import EXPERIMENTS, notebook_units, verify
from paperlib.experiments.runner import comparable_tables, compute
from paperlib.store import ResultStore, shipped_results_dir


def test_shipped_results_match_the_code():
    table = verify()
    problems = table[table["status"].isin(["stale", "missing"])]
    assert problems.empty, (
        "data/results is out of date (run `paperlib results refresh`):\n" + problems.to_string(index=False))


def test_every_shipped_run_carries_its_provenance():
    store = ResultStore(shipped_results_dir())
    for record in store.records(layer=shipped_results_dir()):
        for key in ("paperlib", "python", "torch", "cpu", "threads", "device", "seconds", "date"):
            assert key in record.provenance, (record.experiment, record.key, key)
        assert record.provenance["threads"] == 1


def _sample():
    """The first quick run of every experiment notebook (at least one per theme)."""
    return [pytest.param(nb, id=nb) for nb in sorted(EXPERIMENTS)]


@pytest.mark.parametrize("notebook", _sample())
def test_a_shipped_run_recomputes_identically(notebook):
    unit = notebook_units(notebook, quick=True)[0]
    shipped = ResultStore(shipped_results_dir()).get(unit.experiment, unit.key)
    assert shipped is not None, f"{unit.label()} is not shipped"
    fresh = compute(unit)
    a, b = comparable_tables(shipped), comparable_tables(fresh)
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=f"{unit.experiment} {name}")
