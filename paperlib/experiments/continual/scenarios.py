"""Three scenarios for continual learning (van de Ven & Tolias 2019): methods x Task-IL /
Domain-IL / Class-IL on split (5 tasks of 2 digits) or permuted MNIST.

One unit is one (protocol, method, scenario, seed) stream; its row holds the average
accuracy, backward transfer and forgetting after the last task, and its accuracy matrix.
The claims the paper makes are checked against the measured numbers (`check_claims`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from paperlib.experiments.continual.strategies import make_strategy
from paperlib.experiments.continual.streams import (
    StreamConfig,
    permuted_tasks,
    run_stream,
    split_tasks,
)
from paperlib.experiments.datasets import cached_dataset
from paperlib.experiments.findings import summarize
from paperlib.experiments.runner import Results, Unit, make_unit, run_experiment
from paperlib.store import load_reference as _load_reference

NAME = "continual.scenarios"
CODE_VERSION = 1

SCENARIO_LABELS = {"task": "Task-IL", "domain": "Domain-IL", "class": "Class-IL"}
METHOD_LABELS = {"none": "None", "l2": "L2", "ewc": "EWC", "online-ewc": "Online EWC", "si": "SI",
                 "lwf": "LwF", "replay": "Replay", "joint": "Offline (joint)"}

# Strengths per (protocol, scenario), of the magnitude the paper's grid searches found.
DEFAULT_PARAMS: dict[str, dict[str, dict]] = {
    "split": {
        "none": {}, "joint": {}, "lwf": {}, "replay": {"memory": 500},
        "ewc": {"strength": 1e6}, "online-ewc": {"strength": 1e6, "gamma": 1.0}, "si": {"strength": 50.0},
    },
    "permuted": {
        "none": {}, "joint": {}, "lwf": {}, "replay": {"memory": 500},
        "ewc": {"strength": 1e2}, "online-ewc": {"strength": 1e2, "gamma": 1.0}, "si": {"strength": 5.0},
    },
}


def make_tasks(dataset, protocol: str, *, n_tasks: int = 10, seed: int = 0):
    """The task stream of a protocol: "split" (pairs of classes) or "permuted" (n_tasks permutations)."""
    if protocol == "split":
        return split_tasks(dataset)
    if protocol == "permuted":
        return permuted_tasks(dataset, n_tasks, seed=seed)
    raise ValueError(f"unknown protocol {protocol!r}: expected 'split' or 'permuted'")


@dataclass(frozen=True)
class Config:
    """Methods x scenarios x seeds on one or both protocols, with the paper's network and optimiser.

    `optimizer_per_task=False` and `balanced_joint=True` follow the paper's reference code (one
    Adam for the whole stream; Offline batches with an equal share of every task so far).
    """

    dataset: str = "mnist-5k"
    protocols: tuple[str, ...] = ("split",)
    seeds: tuple[int, ...] = (0, 1)
    methods: tuple[str, ...] = ("none", "ewc", "online-ewc", "si", "lwf", "replay", "joint")
    scenarios: tuple[str, ...] = ("task", "domain", "class")
    n_tasks: int = 10  # permuted protocol only
    hidden: tuple[int, ...] = (400, 400)
    steps_per_task: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    optimizer_per_task: bool = False
    balanced_joint: bool = True
    params: dict = field(default_factory=dict)  # method -> strategy params overriding DEFAULT_PARAMS

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: the 8x8 digits, a 32-unit network, 15 steps per task, 3 permuted tasks, one seed."""
        base = dict(dataset="digits", seeds=(0,), n_tasks=3, hidden=(32,), steps_per_task=15)
        return cls(**{**base, **changes})

    def stream(self) -> StreamConfig:
        return StreamConfig(hidden=tuple(self.hidden), steps_per_task=self.steps_per_task, batch_size=self.batch_size,
                            lr=self.lr, optimizer_per_task=self.optimizer_per_task)

    def method_params(self, protocol: str, method: str) -> dict:
        if method in self.params:
            return dict(self.params[method])
        params = dict(DEFAULT_PARAMS[protocol].get(method, {}))
        if method == "joint" and self.balanced_joint:
            params["balanced"] = True
        return params


def _stream_fields(stream: StreamConfig) -> dict:
    """The stream settings a scenario unit depends on (named, so a new StreamConfig field keeps old keys)."""
    return {k: getattr(stream, k) for k in ("hidden", "steps_per_task", "batch_size", "lr", "optimizer", "optimizer_per_task")}


# Settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# replay in Class-IL with a tenth of the memory (50 stored examples instead of 500), first seed only.
EXERCISES = ({"methods": ("replay",), "scenarios": ("class",), "seeds": (0,), "params": {"replay": {"memory": 50}}},)


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """One unit per protocol, seed, scenario and method (in the order of the table)."""
    out = []
    for protocol in config.protocols:
        for seed in config.seeds:
            for scenario in config.scenarios:
                for method in config.methods:
                    unit = {"dataset": config.dataset, "protocol": protocol, "scenario": scenario, "method": method,
                            "params": config.method_params(protocol, method), "stream": _stream_fields(config.stream())}
                    if protocol == "permuted":
                        unit["n_tasks"] = config.n_tasks
                    out.append(make_unit(NAME, unit, seed, device))
    return out


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """Train one stream and summarise it: the `runs` row and the `accuracy` matrix (tidy)."""
    data = cached_dataset(config["dataset"])
    tasks = make_tasks(data, config["protocol"], n_tasks=config.get("n_tasks", 10), seed=seed)
    params = dict(config["params"])
    if config["method"] in ("ewc", "online-ewc", "replay"):
        params.setdefault("seed", seed)
    stream = StreamConfig(**{**config["stream"], "hidden": tuple(config["stream"]["hidden"])})
    res = run_stream(tasks, make_strategy(config["method"], **params), scenario=config["scenario"], config=stream, seed=seed)
    keys = {"protocol": config["protocol"], "dataset": config["dataset"], "method": config["method"],
            "scenario": config["scenario"], "seed": seed}
    row = {**keys, "test_images": sum(len(t.y_test) for t in tasks), **res.summary()}
    acc = res.accuracy[["after_task", "task", "accuracy"]].assign(**keys)
    return {"runs": pd.DataFrame([row]), "accuracy": acc[[*keys, "after_task", "task", "accuracy"]]}


class ScenarioResults(Results):
    """`runs`: one row per (protocol, method, scenario, seed); `accuracy`: the accuracy matrices."""

    name = "three_scenarios"
    table_names = ('runs', 'accuracy')

    @property
    def table(self) -> pd.DataFrame:
        return self.tables["runs"]

    def summary(self) -> pd.DataFrame:
        return summarize_table(self.table)

    def findings(self) -> pd.DataFrame:
        """The paper's orderings, each checked against seed spread and test-set noise."""
        return check_claims(self.summary())


def run(config: Config, *, device: str = "auto", **options) -> ScenarioResults:
    """Every unit of `config`, loaded from the store or computed; see `paperlib.experiments.runner`.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, ScenarioResults, **options)


def summarize_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the average accuracy, in percent, per protocol x method x scenario
    (with the number of test images the accuracy is measured on, when the table has it)."""
    by = ["protocol", "method", "scenario"]
    out = summarize(table, by, value="average_accuracy")
    out[["mean", "std"]] = out[["mean", "std"]] * 100
    if "test_images" in table.columns:
        out["test_images"] = table.groupby(by, sort=False)["test_images"].first().to_numpy()
    return out


def accuracy_noise(mean: float, test_images: float | None) -> float:
    """Two binomial standard errors, in points, of an accuracy of `mean` % measured on `test_images` images.

    Every seed is scored on the same test images, so the spread across seeds misses this:
    a gap below it is a handful of images and cannot rank two methods.
    """
    if not test_images or pd.isna(test_images):
        return 0.0
    p = min(max(mean / 100, 0.0), 1.0)
    return float(200 * np.sqrt(p * (1 - p) / test_images))


def load_reference(name: str = "three_scenarios") -> pd.DataFrame:
    """The paper's Tables 4-5 (`data/references/three_scenarios.csv`), header in `.attrs["header"]`."""
    return _load_reference(name)


def compare_with_reference(summary: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Our mean +- std next to the paper's, per protocol x method x scenario, with the gap (ours - paper)."""
    ref = reference.rename(columns={"mean": "paper_mean", "std": "paper_std"})
    both = summary.merge(ref[["protocol", "method", "scenario", "paper_mean", "paper_std"]],
                         on=["protocol", "method", "scenario"], how="left")
    both["gap"] = both["mean"] - both["paper_mean"]
    return both


def format_table(summary: pd.DataFrame, protocol: str, *, with_reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Wide display table: methods x scenarios as "mean +- std" (and the paper's value beside it)."""
    s = summary[summary["protocol"] == protocol].copy()
    cell = lambda r: f"{r['mean']:.2f} ± {r['std']:.2f}" if r["n"] > 1 else f"{r['mean']:.2f}"
    s["ours"] = s.apply(cell, axis=1)
    wide = s.pivot(index="method", columns="scenario", values="ours")
    cols = [c for c in ("task", "domain", "class") if c in wide.columns]
    wide = wide[cols].rename(columns=SCENARIO_LABELS)
    if with_reference is not None:
        r = with_reference[with_reference["protocol"] == protocol]
        rw = r.pivot(index="method", columns="scenario", values="mean")
        for c in cols:
            if c in rw.columns:
                wide[SCENARIO_LABELS[c] + " (paper)"] = rw[c].reindex(wide.index).map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
        wide = wide[[x for c in cols for x in (SCENARIO_LABELS[c], SCENARIO_LABELS[c] + " (paper)") if x in wide.columns]]
    order = [m for m in METHOD_LABELS if m in wide.index]
    return wide.loc[order].rename(index=METHOD_LABELS)


def check_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's orderings that runs on this machine can test, each measured: claim, values, verdict.

    A difference "holds" only when it exceeds the claim's margin plus its noise: the larger of the
    seed spread and the test-set noise (`accuracy_noise`). "Offline highest" is "unresolved" when another
    method leads by less than that noise, "fails" when it leads by more. `holds` is verdict == "holds".
    """
    def get(protocol, method, scenario):
        r = summary[(summary["protocol"] == protocol) & (summary["method"] == method) & (summary["scenario"] == scenario)]
        if r.empty:
            return None, 0.0
        m, s = float(r["mean"].iloc[0]), float(np.nan_to_num(r["std"].iloc[0]))
        return m, max(s, accuracy_noise(m, r["test_images"].iloc[0] if "test_images" in r else None))

    rows = []

    def add(claim, measured, verdict):
        rows.append({"claim": claim, "measured": measured, "verdict": verdict, "holds": verdict == "holds"})

    def below(protocol, method, scenario, limit):
        m, s = get(protocol, method, scenario)
        if m is not None:
            add(f"{protocol}: {METHOD_LABELS[method]} {SCENARIO_LABELS[scenario]} below {limit}%",
                f"{m:.2f} ± {s:.2f}", "holds" if m + s < limit else "fails")

    def above(protocol, a, b, scenario, margin):
        (ma, sa), (mb, sb) = get(protocol, a, scenario), get(protocol, b, scenario)
        if ma is not None and mb is not None:
            add(f"{protocol}: {METHOD_LABELS[a]} at least {margin} points above {METHOD_LABELS[b]} in {SCENARIO_LABELS[scenario]}",
                f"{ma:.2f} vs {mb:.2f} (gap {ma - mb:.2f}, noise {max(sa, sb):.2f})",
                "holds" if ma - mb >= margin + max(sa, sb) else "fails")

    for method in ("none", "ewc", "si"):
        below("split", method, "class", 25)
    above("split", "replay", "ewc", "class", 40)
    above("split", "ewc", "none", "task", 5)
    for scenario in ("task", "domain", "class"):
        sub = summary[(summary["protocol"] == "split") & (summary["scenario"] == scenario)]
        if sub.empty or "joint" not in set(sub["method"]):
            continue
        best = sub.loc[sub["mean"].idxmax()]
        joint, noise = get("split", "joint", scenario)
        noise = max(noise, get("split", best["method"], scenario)[1])
        gap = best["mean"] - joint
        verdict = "holds" if best["method"] == "joint" else "unresolved" if gap <= noise else "fails"
        add(f"split: Offline highest in {SCENARIO_LABELS[scenario]}",
            f"highest: {METHOD_LABELS[best['method']]} {best['mean']:.2f}; Offline {joint:.2f} (gap {gap:.2f}, noise {noise:.2f})",
            verdict)
    for scenario in ("task", "domain", "class"):
        above("permuted", "ewc", "none", scenario, 10)
    return pd.DataFrame(rows, columns=["claim", "measured", "verdict", "holds"])


def scenario_findings(summary: pd.DataFrame, protocol: str = "split") -> str:
    """Measured sentences about Class-IL: how far regularisation and replay get above chance."""
    s = summary[summary["protocol"] == protocol].set_index(["method", "scenario"])["mean"]
    if ("ewc", "class") not in s.index or ("replay", "class") not in s.index:
        return ""
    reg = {m: s[(m, "class")] for m in ("ewc", "online-ewc", "si") if (m, "class") in s.index}
    text = (f"In Class-IL, the regularisation methods end between {min(reg.values()):.1f}% and {max(reg.values()):.1f}% "
            f"(fine-tuning: {s[('none', 'class')]:.1f}%), while replay reaches {s[('replay', 'class')]:.1f}%")
    if ("joint", "class") in s.index:
        text += f" and joint training {s[('joint', 'class')]:.1f}%"
    if ("ewc", "task") in s.index:
        text += (f". With the task given (Task-IL) the same EWC reaches {s[('ewc', 'task')]:.1f}% "
                 f"against {s[('none', 'task')]:.1f}% for fine-tuning")
    return text + "."


