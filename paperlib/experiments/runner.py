"""The experiment contract's machinery: units, their keys, the store lookup and the executors.

An experiment is a set of independent units (experiment, resolved unit config, seed) that each
produce tidy tables. Each experiment module defines

- `NAME` (e.g. "continual.scenarios"; its module is `paperlib.experiments.<NAME>`),
- `CODE_VERSION`, an integer bumped whenever a change to the code changes a unit's numbers,
- `compute_unit(config: dict, seed: int) -> dict[str, DataFrame]`.

A unit's key hashes its experiment, code version, config, seed and device. A hand-bumped code
version rather than a hash of the source: a refactor or a new docstring must not invalidate
hours of shipped results, while a change of numbers must. The shipped-results tests recompute a
sample of stored units and require identical rows, which catches a forgotten bump.

Units run in this process, in local processes (`jobs`), or on a dask.distributed cluster
(`executor="dask"`); every unit runs with one torch thread, so the same unit gives the same
rows wherever it runs. Results always return to the caller's store.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib
import os
import platform
import re
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from paperlib.store import (
    ResultStore,
    UnitRecord,
    canonical_json,
    save_results,
    to_jsonable,
    write_json,
)

SCHEDULER_ENV = "PAPERLIB_DASK_SCHEDULER"


# --- units ----------------------------------------------------------------------------------


def experiment_module(name: str):
    """The module of an experiment name ("continual.scenarios" -> paperlib.experiments.continual.scenarios)."""
    return importlib.import_module(f"paperlib.experiments.{name}")


def code_version(experiment: str) -> int:
    return int(experiment_module(experiment).CODE_VERSION)


def resolve_device(device: str = "auto") -> str:
    """"auto": "cuda" when torch sees a GPU, else "cpu"; any other name is kept."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def unit_key(experiment: str, version: int, config: Mapping, seed: int, device: str) -> str:
    """The hash that names a unit in the store: any change of input or code version changes it."""
    text = canonical_json({"experiment": experiment, "code_version": version, "config": config,
                           "seed": seed, "device": device})
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:24]


@dataclass(frozen=True)
class Unit:
    """One independent piece of an experiment: its resolved config (JSON values) and seed."""

    experiment: str
    config: dict
    seed: int
    device: str = "cpu"

    @property
    def code_version(self) -> int:
        return code_version(self.experiment)

    @property
    def key(self) -> str:
        return unit_key(self.experiment, self.code_version, self.config, self.seed, self.device)

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.config.items() if isinstance(v, (str, int, float)) and k != "dataset"]
        return f"{self.experiment}[{', '.join(parts[:4])}, seed={self.seed}]"


def config_from(cls: type, settings: Mapping) -> Any:
    """A frozen config dataclass rebuilt from a unit's JSON values (lists back to tuples; keys the
    class does not have are ignored, so a unit may also carry its own keys such as "method")."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in known})


def make_unit(experiment: str, config: Mapping, seed: int, device: str = "auto") -> Unit:
    """A unit with its config reduced to plain JSON values (tuples become lists)."""
    return Unit(experiment, to_jsonable(dict(config)), int(seed), resolve_device(device))


# --- provenance -----------------------------------------------------------------------------


def _git_commit() -> str | None:
    """HEAD of the checkout paperlib runs from, with "+changes" when its package files differ from it."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "paperlib"],
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _paperlib_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paperlib")
    except PackageNotFoundError:
        return "unknown"


def provenance(device: str, threads: int, seconds: float) -> dict:
    """Where and when a unit was computed."""
    import torch

    return {"paperlib": _paperlib_version(), "git_commit": _git_commit(), "python": platform.python_version(),
            "torch": torch.__version__, "machine": platform.machine(), "cpu": _cpu_model(), "cpus": os.cpu_count(),
            "threads": threads, "device": device, "seconds": round(seconds, 3),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "host_pid": os.getpid()}


@contextlib.contextmanager
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield 1
    finally:
        torch.set_num_threads(before)


def compute(unit: Unit) -> UnitRecord:
    """Run one unit here, with one torch thread, and return it with its provenance (not stored)."""
    from paperlib.experiments import training

    module = experiment_module(unit.experiment)
    start = time.perf_counter()
    with _one_thread() as threads, training.use_device(unit.device):
        tables = module.compute_unit(dict(unit.config), unit.seed)
    seconds = time.perf_counter() - start
    tables = {name: df.reset_index(drop=True) for name, df in tables.items()}
    return UnitRecord(unit.experiment, unit.key, unit.seed, unit.code_version, unit.device, unit.config, tables,
                      provenance(unit.device, threads, seconds))


def comparable_tables(record: UnitRecord) -> dict[str, pd.DataFrame]:
    """A record's tables as stored (through the CSV convention), without the rows its experiment
    declares volatile (wall-clock times) through an optional `comparable_rows(table, df)`."""
    import tempfile

    from paperlib.store import read_table, write_table

    module = experiment_module(record.experiment)
    keep = getattr(module, "comparable_rows", lambda name, df: df)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, df in record.tables.items():
            back = read_table(write_table(df, Path(tmp) / f"{name}.csv"))
            out[name] = keep(name, back).reset_index(drop=True)
    return out


# --- executors ------------------------------------------------------------------------------


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _iter_local(units: Sequence[Unit], jobs: int) -> Iterable[tuple[int, UnitRecord]]:
    if jobs <= 1 or len(units) <= 1:
        for i, u in enumerate(units):
            yield i, compute(u)
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=mp.get_context("spawn"),
                             initializer=_worker_init) as pool:
        futures = {pool.submit(compute, u): i for i, u in enumerate(units)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


def _iter_dask(units: Sequence[Unit], scheduler: str | None, retries: int) -> Iterable[tuple[int, UnitRecord]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("executor='dask' needs dask.distributed: pip install 'paperlib[dask]'") from exc
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if not address:
        raise ValueError(f"executor='dask' needs a scheduler address: pass scheduler='tcp://HOST:8786' or set {SCHEDULER_ENV}")
    with Client(address, set_as_default=False) as client:
        futures = [client.submit(compute, u, key=f"paperlib-{u.experiment}-{u.key}", pure=False, retries=retries)
                   for u in units]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures, loop=client.loop):
            yield index[fut.key], fut.result()


# --- running a set of units ----------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    """How a run obtained its units: loaded from which layers, computed how, in what time."""

    n_units: int
    loaded: dict  # layer folder -> count
    computed: int
    records: tuple = field(repr=False, default=())

    @classmethod
    def of(cls, records: Sequence[UnitRecord]) -> "RunReport":
        """The report of some records (a record computed in this session has no layer)."""
        loaded: dict[str, int] = {}
        for r in records:
            if r.layer:
                loaded[r.layer] = loaded.get(r.layer, 0) + 1
        return cls(len(records), loaded, sum(1 for r in records if not r.layer), tuple(records))

    def line(self, rerun_hint: str = "rerun with -p rerun True") -> str:
        """One sentence saying where the numbers come from."""
        recs = self.records
        total_s = sum(float(r.provenance.get("seconds", 0.0)) for r in recs)
        dates = sorted(str(r.provenance.get("date", ""))[:10] for r in recs if r.provenance.get("date"))
        machines = sorted({f"{r.provenance.get('cpus', '?')}-core {r.provenance.get('machine', '?')}" for r in recs})
        torches = sorted({".".join(str(r.provenance.get("torch", "?")).split("+")[0].split(".")[:2]) for r in recs})
        when = (dates[0] if dates and dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}") if dates else "unknown date"
        where = (f"computed {when} on a {' and a '.join(machines)}, torch {', '.join(torches)}, "
                 f"{_minutes(total_s)} in all")
        parts = []
        for layer, n in self.loaded.items():
            parts.append(f"{n} of {self.n_units} runs loaded from {_short(layer)}")
        if self.computed:
            parts.append(f"{self.computed} of {self.n_units} runs computed now")
        return f"{'; '.join(parts)} ({where}); {rerun_hint}"


def _short(layer: str) -> str:
    p = Path(layer)
    try:
        from paperlib.paths import shipped_dir

        return str(Path("data") / p.relative_to(shipped_dir()))
    except ValueError:
        return str(p)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _matches(rerun: bool | str, unit: Unit) -> bool:
    if isinstance(rerun, str):
        return bool(re.search(rerun, unit.experiment) or re.search(rerun, unit.label()))
    return bool(rerun)


def run_units(units: Sequence[Unit], *, store: ResultStore | None = None, rerun: bool | str = False, jobs: int = 1,
              executor: str = "local", scheduler: str | None = None, retries: int = 3,
              progress: bool = False) -> RunReport:
    """Load every unit the store holds and compute (then store) the others.

    `rerun` (True or a regular expression over experiment names and unit labels) forces
    recomputation. `executor="local"` uses `jobs` processes (1: this process); `"dask"` submits
    the misses to the dask.distributed scheduler at `scheduler` (or $PAPERLIB_DASK_SCHEDULER).
    Records come back in the order of `units`.
    """
    store = store if store is not None else ResultStore.default()
    records: list[UnitRecord | None] = [None] * len(units)
    todo: list[int] = []
    seen: dict[str, int] = {}
    for i, u in enumerate(units):
        if u.key in seen:  # the same unit twice in one run: compute once
            continue
        seen[u.key] = i
        hit = None if _matches(rerun, u) else store.get(u.experiment, u.key)
        if hit is not None:
            records[i] = hit
        else:
            todo.append(i)
    pending = [units[i] for i in todo]
    if executor == "dask":
        stream = _iter_dask(pending, scheduler, retries)
    elif executor == "local":
        stream = _iter_local(pending, jobs)
    else:
        raise ValueError(f"unknown executor {executor!r}: expected 'local' or 'dask'")
    bar = None
    if progress and pending:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc="units", leave=False)
    for j, record in stream:
        store.put(record)
        records[todo[j]] = record
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for i, u in enumerate(units):
        if records[i] is None:
            records[i] = records[seen[u.key]]
    return RunReport.of([records[i] for i in sorted(seen.values())])


def stack(records: Iterable[UnitRecord], table: str) -> pd.DataFrame:
    """One table stacked over units (every unit's rows already carry their method, seed, ...)."""
    parts = [r.tables[table] for r in records if table in r.tables]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    """What `run` returns: the tidy tables, the resolved config and how the numbers were obtained."""

    config: Any
    tables: dict = field(repr=False)
    report: RunReport | None = field(default=None, repr=False)

    name = "results"  # file stem used by `save`
    table_names: tuple[str, ...] = ()  # the tables every unit contributes rows to

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def save(self, folder: str | Path) -> Path:
        """Write every table as CSV, the config as JSON and, in `<name>.runs.json`, each run's own
        resolved config, seed, key and provenance into `folder` (atomically)."""
        folder = save_results(self.tables, self.config, folder, self.name)
        if self.report is not None:
            runs = [{"experiment": r.experiment, "key": r.key, "seed": r.seed, "code_version": r.code_version,
                     "config": r.config, "provenance": r.provenance, "from": r.layer or "computed"}
                    for r in self.report.records]
            write_json(runs, Path(folder) / f"{self.name}.runs.json")
        return folder

    def provenance(self) -> str:
        """One line: how many runs were loaded or computed, where and when."""
        return self.report.line() if self.report is not None else "computed in this session"

    def findings(self) -> pd.DataFrame:
        """Sentences computed from the numbers (themes override this)."""
        return pd.DataFrame(columns=["key", "finding"])


def run_experiment(units: Sequence[Unit], config: Any, results_cls: type = Results, *,
                   results_dir: str | Path | None = None, progress: bool = True, rerun: bool | str = False,
                   jobs: int = 1, executor: str = "local", scheduler: str | None = None,
                   store: ResultStore | None = None) -> Results:
    """The shared body of every theme's `run`: each unit loaded from `store` (default: the user's
    store over the shipped results) or computed (`jobs` local processes, or `executor="dask"` with
    `scheduler`); `rerun` (True or a regex) recomputes; the tables of `results_cls.table_names`
    stacked over units; everything written to `results_dir` when given."""
    report = run_units(units, store=store, rerun=rerun, jobs=jobs, executor=executor, scheduler=scheduler,
                       progress=progress)
    tables = {name: stack(report.records, name) for name in results_cls.table_names}
    results = results_cls(config, tables, report)
    if results_dir is not None:
        results.save(results_dir)
    return results


__all__ = ["Unit", "make_unit", "unit_key", "compute", "run_units", "RunReport", "Results", "run_experiment", "stack",
           "resolve_device", "experiment_module", "code_version", "SCHEDULER_ENV"]
