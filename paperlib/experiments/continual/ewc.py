"""Elastic weight consolidation on permuted MNIST: Kirkpatrick et al. (2017), figure 2A.

Permuted tasks A, B, C trained in turn with no penalty, with an L2 pull and with EWC, plus EWC
over a sweep of strengths. One unit is one (method, strength) stream on the same tasks; its
tables are the accuracy curves, the accuracy on each task after the last one and, for EWC, the
first-layer Fisher after task A (one value per pixel).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from paperlib.experiments.continual.strategies import make_strategy
from paperlib.experiments.continual.streams import (
    StreamConfig,
    permuted_tasks,
    run_stream,
)
from paperlib.experiments.datasets import cached_dataset
from paperlib.experiments.runner import Results, Unit, make_unit, run_experiment

NAME = "continual.ewc"
CODE_VERSION = 1


@dataclass(frozen=True)
class Config:
    """Permuted tasks A, B, C trained with no penalty, then with L2 and EWC penalties.

    Adam (lr 1e-3) rather than the paper's plain SGD: with SGD, a step of lr * lambda * F
    diverges for the strengths EWC needs unless the learning rate is made very small.
    """

    dataset: str = "mnist-5k"
    n_tasks: int = 3
    seed: int = 0
    hidden: tuple[int, ...] = (400, 400)
    steps_per_task: int = 300
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 128
    eval_every: int = 25
    eval_size: int = 500
    ewc_strength: float = 100.0
    l2_strength: float = 1.0
    sweep: tuple[float, ...] = (10.0, 100.0, 1000.0, 10000.0)
    fisher_samples: int = 1024

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: the 8x8 digits, a 32-unit network, 30 steps per task, two sweep strengths."""
        base = dict(dataset="digits", hidden=(32,), steps_per_task=30, eval_every=10, sweep=(10.0, 100.0),
                    fisher_samples=128)
        return cls(**{**base, **changes})

    def stream(self) -> StreamConfig:
        return StreamConfig(hidden=tuple(self.hidden), steps_per_task=self.steps_per_task, batch_size=self.batch_size,
                            lr=self.lr, optimizer=self.optimizer, eval_every=self.eval_every, eval_size=self.eval_size)

    def runs(self) -> list[tuple[str, float]]:
        """(method, strength) of every stream: no penalty, L2, then EWC at each strength."""
        strengths = sorted(set(self.sweep) | {self.ewc_strength})
        return [("None", 0.0), ("L2", self.l2_strength)] + [("EWC", float(s)) for s in strengths]


# Settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# a ten times weaker L2 pull.
EXERCISES = ({"l2_strength": 0.1},)


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    out = []
    for method, strength in config.runs():
        unit = {"dataset": config.dataset, "n_tasks": config.n_tasks, "method": method, "strength": strength,
                "hidden": list(config.hidden), "steps_per_task": config.steps_per_task, "batch_size": config.batch_size,
                "lr": config.lr, "optimizer": config.optimizer, "eval_every": config.eval_every,
                "eval_size": config.eval_size}
        if method == "EWC":
            unit["fisher_samples"] = config.fisher_samples
        out.append(make_unit(NAME, unit, config.seed, device))
    return out


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One stream over the permuted tasks: curves, final accuracies and (EWC) the Fisher image."""
    data = cached_dataset(config["dataset"])
    tasks = permuted_tasks(data, config["n_tasks"], seed=seed)
    method, strength = config["method"], float(config["strength"])
    if method == "None":
        strategy = make_strategy("none")
    elif method == "L2":
        strategy = make_strategy("l2", strength=strength)
    else:
        strategy = make_strategy("ewc", strength=strength, n_samples=config["fisher_samples"], seed=seed, keep_fishers=True)
    stream = StreamConfig(hidden=tuple(config["hidden"]), steps_per_task=config["steps_per_task"],
                          batch_size=config["batch_size"], lr=config["lr"], optimizer=config["optimizer"],
                          eval_every=config["eval_every"], eval_size=config["eval_size"])
    res = run_stream(tasks, strategy, scenario="domain", config=stream, seed=seed)
    curves = res.curves.assign(method=method, strength=strength)[["method", "strength", "training_task", "step", "task", "accuracy"]]
    last = res.accuracy[res.accuracy["after_task"] == config["n_tasks"] - 1]
    final = last.assign(method=method, strength=strength)[["method", "strength", "task", "accuracy"]]
    tables = {"curves": curves, "final": final}
    if method == "EWC":
        image = first_layer_fisher_image(strategy, data.image_shape)
        rows, cols = np.indices(image.shape)
        tables["fisher"] = pd.DataFrame({"method": method, "strength": strength, "row": rows.ravel(),
                                         "col": cols.ravel(), "fisher": image.ravel().astype(float)})
    return tables


class EWCResults(Results):
    """`curves`, `final` and `fisher` (first-layer Fisher after task A, per pixel) tables."""

    name = "ewc_figure"
    table_names = ('curves', 'final', 'fisher')

    @property
    def curves(self) -> pd.DataFrame:
        return self.tables["curves"]

    @property
    def final(self) -> pd.DataFrame:
        return self.tables["final"]

    @property
    def fisher_image(self) -> np.ndarray:
        f = self.tables["fisher"]
        f = f[f["strength"] == self.config.ewc_strength]
        return f.pivot(index="row", columns="col", values="fisher").to_numpy()

    def findings(self) -> pd.DataFrame:
        return pd.DataFrame({"key": ["figure 2A"], "finding": [ewc_figure_findings(self, self.config)]})


def run(config: Config, *, device: str = "auto", **options) -> EWCResults:
    """Every stream of `config`, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, EWCResults, **options)


def first_layer_fisher_image(ewc_strategy, image_shape: tuple[int, int]) -> np.ndarray:
    """Fisher of the first layer's weights after task A, summed over its units: one importance per pixel.

    Task A is the identity permutation, so the image shows which pixels of the digits the
    network relies on.
    """
    weights = [v for k, v in ewc_strategy.task_fishers_[0].items() if k.endswith("weight")][0]
    return weights.sum(0).reshape(image_shape).cpu().numpy()


def ewc_figure_findings(result: "EWCResults", config: Config) -> str:
    """A sentence per method: accuracy on task A after the last task, from the measured table."""
    f = result.final
    first = f[f["task"] == 0]
    get = lambda m, s=None: first[(first["method"] == m) & ((first["strength"] == s) if s is not None else True)]["accuracy"].iloc[0]
    sgd, l2, ewc = get("None"), get("L2"), get("EWC", config.ewc_strength)
    mean = f.groupby(["method", "strength"])["accuracy"].mean()
    lines = [
        f"After the last task, accuracy on task A is {sgd:.1%} with no penalty, {l2:.1%} with L2 and {ewc:.1%} with EWC "
        f"(lambda = {config.ewc_strength:g}).",
        f"Averaged over all {config.n_tasks} tasks: no penalty {mean[('None', 0.0)]:.1%}, L2 {mean[('L2', config.l2_strength)]:.1%}, "
        f"EWC {mean[('EWC', config.ewc_strength)]:.1%}.",
    ]
    sweep = f[f["method"] == "EWC"].groupby("strength")["accuracy"].agg(["mean"])
    best = sweep["mean"].idxmax()
    lines.append(f"In the sweep the best average accuracy ({sweep['mean'].max():.1%}) comes at lambda = {best:g}; "
                 f"the smallest lambda gives {sweep['mean'].iloc[0]:.1%} and the largest {sweep['mean'].iloc[-1]:.1%}.")
    return " ".join(lines)


def sweep_table(result: "EWCResults") -> pd.DataFrame:
    """Accuracy on each task after the last one, per method and strength, with the mean over tasks (percent)."""
    f = result.final.assign(accuracy=result.final["accuracy"] * 100)
    wide = f.pivot_table(index=["method", "strength"], columns="task", values="accuracy")
    wide.columns = [f"task {chr(65 + int(t))}" if t < 26 else f"task {t + 1}" for t in wide.columns]
    wide["mean"] = wide.mean(axis=1)
    return wide.round(2).reset_index()
