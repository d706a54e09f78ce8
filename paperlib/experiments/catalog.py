"""The experiment behind each notebook, the units its default and quick settings need, and the
honesty checks on the results shipped in `data/results/`.

A notebook's defaults build exactly `Config()` of its experiment and `quick=True` builds
`Config.quick()` (the tests check both), so the build can look up or compute a notebook's units
before the notebook runs, and `verify` can say whether the shipped results still match the code.
A theme's `EXERCISES` lists the settings its exercise solutions change (each a dict of Config
fields, applied to the notebook's config with `dataclasses.replace`; a dict value changes some
fields of a nested config): their runs are shipped and precomputed like the notebook's own.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from paperlib.experiments.runner import (
    RunReport,
    Unit,
    experiment_module,
    run_units,
    unit_key,
)
from paperlib.store import ResultStore, shipped_results_dir

# notebook stem -> experiment (module under paperlib.experiments)
EXPERIMENTS = {
    "10_ewc_permuted_mnist": "continual.ewc",
    "11_three_scenarios": "continual.scenarios",
    "12_rehearsal_schedules": "continual.rehearsal",
    "20_curriculum_pacing": "curriculum.experiment",
    "30_distillation": "distillation.experiment",
    "40_preference_optimisation": "preference.experiment",
    "41_rl_reasoning": "reasoning.experiment",
    "50_editing_unlearning": "editing.experiment",
    "60_low_rank_adaptation": "adaptation.experiment",
    "70_pruning_quantisation": "efficiency.experiment",
}


def notebook_config(notebook: str, *, quick: bool = False):
    """The config a notebook builds from its default parameters (or with quick=True)."""
    module = experiment_module(EXPERIMENTS[notebook])
    return module.Config.quick() if quick else module.Config()


def _override(config, overrides: dict):
    """`config` with some fields replaced; a dict value changes only those fields of a nested
    config ({"w2s": {"weak_train_size": 1000}} keeps the rest of `config.w2s`, quick or not)."""
    return dataclasses.replace(config, **{
        k: _override(getattr(config, k), v) if isinstance(v, dict) and dataclasses.is_dataclass(getattr(config, k))
        else v for k, v in overrides.items()})


def exercise_configs(notebook: str, *, quick: bool = False) -> list:
    """The configs the notebook's exercise solutions run: its config with each of the theme's
    `EXERCISES` overrides."""
    module = experiment_module(EXPERIMENTS[notebook])
    base = notebook_config(notebook, quick=quick)
    return [_override(base, overrides) for overrides in getattr(module, "EXERCISES", ())]


def notebook_units(notebook: str, *, quick: bool = False, device: str = "auto") -> list[Unit]:
    """The units a notebook needs at its default parameters (or quick), its exercise solutions' included."""
    module = experiment_module(EXPERIMENTS[notebook])
    out: dict[str, Unit] = {}
    for config in [notebook_config(notebook, quick=quick), *exercise_configs(notebook, quick=quick)]:
        for u in module.units(config, device=device):
            out.setdefault(u.key, u)
    return list(out.values())


def shipped_units(notebooks: Iterable[str] | None = None) -> list[Unit]:
    """Every unit the shipped layer must hold: each notebook at its defaults and in quick mode, on the CPU."""
    out: dict[str, Unit] = {}
    for nb in notebooks or EXPERIMENTS:
        for quick in (False, True):
            for u in notebook_units(nb, quick=quick, device="cpu"):
                out.setdefault(u.key, u)
    return list(out.values())


def verify(layer: str | Path | None = None) -> pd.DataFrame:
    """One row per problem in a results layer (default: the shipped one): status "stale" (the unit's
    key no longer matches its config under the current code version), "missing" (a notebook needs
    it and the layer lacks it) or "unused" (no notebook default needs it). Empty when all is well."""
    root = Path(layer) if layer is not None else shipped_results_dir()
    store = ResultStore(root)
    needed = {u.key: u for u in shipped_units()}
    rows, present = [], set()
    for rec in store.records(layer=root):
        present.add(rec.key)
        try:
            version = experiment_module(rec.experiment).CODE_VERSION
        except ModuleNotFoundError:
            rows.append({"status": "stale", "experiment": rec.experiment, "key": rec.key, "seed": rec.seed,
                         "reason": "no such experiment in this paperlib"})
            continue
        expected = unit_key(rec.experiment, version, rec.config, rec.seed, rec.device)
        if expected != rec.key:
            reason = (f"code version {rec.code_version} stored, {version} now" if rec.code_version != version
                      else "its config no longer hashes to its key")
            rows.append({"status": "stale", "experiment": rec.experiment, "key": rec.key, "seed": rec.seed, "reason": reason})
        elif rec.key not in needed:
            rows.append({"status": "unused", "experiment": rec.experiment, "key": rec.key, "seed": rec.seed,
                         "reason": "no notebook default or quick setting needs it"})
    for key, u in needed.items():
        if key not in present:
            rows.append({"status": "missing", "experiment": u.experiment, "key": key, "seed": u.seed,
                         "reason": u.label()})
    return pd.DataFrame(rows, columns=["status", "experiment", "key", "seed", "reason"])


def refresh(pattern: str | None = None, *, layer: str | Path | None = None, jobs: int = 1, executor: str = "local",
            scheduler: str | None = None, prune: bool = True, progress: bool = True) -> pd.DataFrame:
    """Recompute into a layer (default: the shipped one) every needed unit that is missing or stale,
    and those whose experiment or label matches `pattern`; with `prune`, delete stale and unused
    units. Returns the `verify` table from before the refresh."""
    import shutil

    root = Path(layer) if layer is not None else shipped_results_dir()
    before = verify(root)
    if prune:
        for row in before[before["status"].isin(["stale", "unused"])].itertuples():
            shutil.rmtree(root / row.experiment / row.key, ignore_errors=True)
    absent = set(before.loc[before["status"].isin(["stale", "missing"]), "key"])
    todo = [u for u in shipped_units()
            if u.key in absent or (pattern and (re.search(pattern, u.experiment) or re.search(pattern, u.label())))]
    run_units(todo, store=ResultStore(root), rerun=pattern if pattern else False, jobs=jobs, executor=executor,
              scheduler=scheduler, progress=progress)
    return before


def precompute(notebooks: Iterable[str], *, quick: bool = False, rerun: bool | str = False, jobs: int = 1,
               executor: str = "local", scheduler: str | None = None, store: ResultStore | None = None,
               progress: bool = True) -> dict[str, RunReport]:
    """Look up or compute the units of several notebooks in one pool (the build runs this before the
    notebooks, which then load every number from the store). Returns each notebook's report."""
    wanted = {nb: notebook_units(nb, quick=quick) for nb in notebooks if nb in EXPERIMENTS}
    everything = [u for units in wanted.values() for u in units]
    if not everything:
        return {}
    store = store if store is not None else ResultStore.default()
    report = run_units(everything, store=store, rerun=rerun, jobs=jobs, executor=executor, scheduler=scheduler,
                       progress=progress)
    by_key = {r.key: r for r in report.records}
    return {nb: RunReport.of(list({u.key: by_key[u.key] for u in units}.values())) for nb, units in wanted.items()}
