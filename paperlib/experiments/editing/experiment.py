"""Editing a trained model after the fact: task arithmetic (task vectors, negation, addition,
a scaling coefficient chosen on a validation split) and selective synaptic dampening (SSD),
a retrain-free way to forget one class, against retraining from scratch without it.

A task vector is tau = theta_finetuned - theta_pretrained, one tensor per parameter name.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from paperlib.experiments.continual.streams import permuted_tasks
from paperlib.experiments.datasets import Dataset, cached_dataset
from paperlib.experiments.findings import compare_paired, summarize
from paperlib.experiments.runner import Results, Unit, make_unit, run_experiment
from paperlib.experiments.training import LoopConfig, accuracy, make_mlp, train_loop
from paperlib.store import load_reference

NAME = "editing.experiment"
CODE_VERSION = 1

Vector = dict[str, torch.Tensor]

# --------------------------------------------------------------------------- task arithmetic


def task_vector(finetuned: nn.Module, pretrained: nn.Module) -> Vector:
    """tau = theta_finetuned - theta_pretrained for every parameter (same architecture required)."""
    pre = dict(pretrained.named_parameters())
    out = {}
    for name, p in finetuned.named_parameters():
        if name not in pre or pre[name].shape != p.shape:
            raise ValueError(f"parameter {name!r} does not match between the two models")
        out[name] = (p.detach() - pre[name].detach()).clone()
    return out


def combine(vectors: Sequence[Vector], coefficients: Sequence[float]) -> Vector:
    """sum_k c_k tau_k: negation is a coefficient of -1, addition several of +1."""
    if len(vectors) != len(coefficients) or not vectors:
        raise ValueError("need as many coefficients as task vectors, and at least one")
    return {k: sum(c * v[k] for v, c in zip(vectors, coefficients)) for k in vectors[0]}


def apply_vector(pretrained: nn.Module, vector: Vector, scale: float = 1.0) -> nn.Module:
    """A copy of `pretrained` with theta + scale * vector; the original is untouched."""
    model = copy.deepcopy(pretrained)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(scale * vector[name].to(p.device))
    return model


# --------------------------------------------------------------------------- selective synaptic dampening


def batch_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 128) -> Vector:
    """SSD's importance: the mean over batches of the squared gradient of the batch's mean loss
    (the diagonal of a batch-level empirical Fisher, as in Foster et al.'s code)."""
    dev = next(model.parameters()).device
    total = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    n_batches = 0
    was = model.training
    model.eval()
    for start in range(0, len(x), batch_size):
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x[start : start + batch_size].to(dev)), y[start : start + batch_size].to(dev))
        loss.backward()
        for k, p in model.named_parameters():
            total[k] += p.grad.detach() ** 2
        n_batches += 1
    model.zero_grad(set_to_none=True)
    model.train(was)
    if n_batches == 0:
        raise ValueError("batch_importance needs at least one row")
    return {k: v / n_batches for k, v in total.items()}


def ssd_dampen(model: nn.Module, imp_forget: Vector, imp_all: Vector, *, alpha: float = 10.0, lam: float = 1.0) -> tuple[nn.Module, int]:
    """Selective synaptic dampening on a copy of `model`: where I_forget > alpha * I_all, multiply
    theta by beta = min(lam * I_all / I_forget, 1). Returns the model and the number of dampened parameters."""
    if alpha <= 0 or lam <= 0:
        raise ValueError(f"alpha and lam must be > 0, got alpha={alpha}, lam={lam}")
    out = copy.deepcopy(model)
    n = 0
    with torch.no_grad():
        for name, p in out.named_parameters():
            f, d = imp_forget[name].to(p.device), imp_all[name].to(p.device)
            selected = f > alpha * d
            beta = torch.clamp(lam * d / f.clamp_min(1e-30), max=1.0)
            p.mul_(torch.where(selected, beta, torch.ones_like(p)))
            n += int(selected.sum())
    return out, n


# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class Config:
    """Task arithmetic (negation on one class, addition over permuted tasks) and SSD on one forget class."""

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    hidden: tuple[int, ...] = (100, 100)
    pretrain_steps: int = 1000
    finetune_steps: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.2  # of the training split, for choosing the scaling coefficient
    forget_class: int = 7
    scales: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    control_keep: float = 0.95  # negation: keep at least this share of the pretrained control accuracy (Ilharco et al.)
    n_added_tasks: int = 2  # permuted tasks whose vectors are added
    ssd_alpha: float = 10.0  # selection threshold (Foster et al.)
    ssd_lambda: float = 1.0  # dampening constant (Foster et al.)

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: a 32-unit network, few steps, three scales, one seed."""
        base = dict(seeds=(0,), hidden=(32,), pretrain_steps=80, finetune_steps=30, scales=(0.0, 0.5, 1.0))
        return cls(**{**base, **changes})


def _split(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(val_fraction * n))
    return perm[k:], perm[:k]


def _loop(cfg: Config, steps: int) -> LoopConfig:
    return LoopConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr)


def _acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return accuracy(model, x, y) if len(y) else float("nan")


def editing_rows(config: Config, data: Dataset, seed: int) -> pd.DataFrame:
    """Tidy rows (seed, experiment, method, scale, split, metric, value) for negation, addition and unlearning.

    The "seconds" rows are wall-clock times of this run: they vary between runs and machines.
    """
    rows: list[dict] = []
    c = config.forget_class

    def add(seed, experiment, method, scale, split, metric, value):
        rows.append(dict(seed=seed, experiment=experiment, method=method, scale=scale, split=split, metric=metric, value=value))

    fit, val = _split(len(data.x_train), config.val_fraction, seed)
    x_fit, y_fit, x_val, y_val = data.x_train[fit], data.y_train[fit], data.x_train[val], data.y_train[val]
    t0 = time.perf_counter()
    pre = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed)
    train_loop(pre, x_fit, y_fit, _loop(config, config.pretrain_steps), seed=seed)
    train_seconds = time.perf_counter() - t0

    # --- negation: forget class c
    is_c = {"val": y_val == c, "test": data.y_test == c}
    xs = {"val": x_val, "test": data.x_test}
    ys = {"val": y_val, "test": data.y_test}
    t0 = time.perf_counter()
    ft = copy.deepcopy(pre)
    train_loop(ft, x_fit[y_fit == c], y_fit[y_fit == c], _loop(config, config.finetune_steps), seed=seed + 1)
    tau = task_vector(ft, pre)
    negation_seconds = time.perf_counter() - t0
    for s in config.scales:
        edited = apply_vector(pre, tau, -s)
        for split in ("val", "test"):
            add(seed, "negation", "task negation", s, split, "target accuracy", _acc(edited, xs[split][is_c[split]], ys[split][is_c[split]]))
            add(seed, "negation", "task negation", s, split, "control accuracy", _acc(edited, xs[split][~is_c[split]], ys[split][~is_c[split]]))

    # --- addition: permuted tasks fine-tuned from a model pretrained on the original images
    tasks = permuted_tasks(data, config.n_added_tasks + 1, seed=seed, identity_first=True)
    vectors = []
    for k, task in enumerate(tasks[1:], start=1):
        ft = copy.deepcopy(pre)
        train_loop(ft, task.x_train[fit], task.y_train[fit], _loop(config, config.finetune_steps), seed=seed + 10 + k)
        vectors.append(task_vector(ft, pre))
        add(seed, "addition", "fine-tuned on its task", float("nan"), "test", f"{task.name} accuracy", _acc(ft, task.x_test, task.y_test))
    summed = combine(vectors, [1.0] * len(vectors))
    for s in config.scales:
        edited = apply_vector(pre, summed, s)
        for k, task in enumerate(tasks):
            add(seed, "addition", "task addition", s, "val", f"{task.name} accuracy", _acc(edited, task.x_train[val], task.y_train[val]))
            add(seed, "addition", "task addition", s, "test", f"{task.name} accuracy", _acc(edited, task.x_test, task.y_test))

    # --- unlearning class c: SSD and retraining without it
    t0 = time.perf_counter()
    imp_f = batch_importance(pre, x_fit[y_fit == c], y_fit[y_fit == c], batch_size=config.batch_size)
    imp_d = batch_importance(pre, x_fit, y_fit, batch_size=config.batch_size)
    ssd, n_damp = ssd_dampen(pre, imp_f, imp_d, alpha=config.ssd_alpha, lam=config.ssd_lambda)
    ssd_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    retrain = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed + 500)
    train_loop(retrain, x_fit[y_fit != c], y_fit[y_fit != c], _loop(config, config.pretrain_steps), seed=seed + 500)
    retrain_seconds = time.perf_counter() - t0
    models = {"original": (pre, train_seconds), "SSD": (ssd, ssd_seconds), "retrain without the class": (retrain, retrain_seconds)}
    for name, (m, secs) in models.items():
        add(seed, "unlearning", name, float("nan"), "test", "forget accuracy", _acc(m, data.x_test[is_c["test"]], data.y_test[is_c["test"]]))
        add(seed, "unlearning", name, float("nan"), "test", "retain accuracy", _acc(m, data.x_test[~is_c["test"]], data.y_test[~is_c["test"]]))
        add(seed, "unlearning", name, float("nan"), "test", "seconds", secs)
    add(seed, "unlearning", "SSD", float("nan"), "test", "dampened parameters", float(n_damp))
    add(seed, "unlearning", "task negation", float("nan"), "test", "seconds", negation_seconds)
    return pd.DataFrame(rows)


# Settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# SSD with a ten times stricter selection threshold (alpha = 100).
EXERCISES = ({"ssd_alpha": 100.0},)


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """One unit per seed: the pre-trained model, its edits and the unlearning runs."""
    settings = {k: v for k, v in asdict(config).items() if k != "seeds"}
    return [make_unit(NAME, settings, seed, device) for seed in config.seeds]


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    settings = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}, seeds=(seed,))
    return {"editing": editing_rows(settings, cached_dataset(settings.dataset), seed)}


def comparable_rows(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """The rows that must be identical when a run is recomputed: all but the wall-clock seconds."""
    return df[df["metric"] != "seconds"] if "metric" in df.columns else df


class EditingResults(Results):
    """`editing`: one row per seed, experiment, method, scale, split and metric."""

    name = "editing"
    table_names = ('editing',)

    def findings(self) -> pd.DataFrame:
        return editing_findings(self.tables["editing"])


def run(config: Config, *, device: str = "auto", **options) -> EditingResults:
    """Every seed's edits, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, EditingResults, **options)


def choose_negation_scale(df: pd.DataFrame, *, keep: float = 0.95) -> pd.DataFrame:
    """Per seed, the scale with the lowest validation target accuracy among those keeping at least
    `keep` x the unedited (scale 0) validation control accuracy (Ilharco et al.'s rule); its test numbers."""
    neg = df[(df["experiment"] == "negation")]
    out = []
    for seed, part in neg.groupby("seed"):
        val = part[part["split"] == "val"].pivot_table(index="scale", columns="metric", values="value")
        ok = val[val["control accuracy"] >= keep * val.loc[0.0, "control accuracy"]]
        s = float(ok["target accuracy"].idxmin())
        test = part[(part["split"] == "test") & (part["scale"] == s)]
        out += [dict(seed=seed, scale=s, metric=m, value=v) for m, v in zip(test["metric"], test["value"])]
        base = part[(part["split"] == "test") & (part["scale"] == 0.0)]
        out += [dict(seed=seed, scale=0.0, metric=f"pretrained {m}", value=v) for m, v in zip(base["metric"], base["value"])]
    return pd.DataFrame(out)


def choose_addition_scale(df: pd.DataFrame) -> pd.DataFrame:
    """Per seed, the scale with the best mean validation accuracy over the added tasks; its test accuracy per task."""
    add = df[(df["experiment"] == "addition") & (df["method"] == "task addition")]
    added = [m for m in add["metric"].unique() if not m.startswith("permuted-1 ")]
    out = []
    for seed, part in add.groupby("seed"):
        val = part[(part["split"] == "val") & part["metric"].isin(added)].groupby("scale")["value"].mean()
        s = float(val.idxmax())
        test = part[(part["split"] == "test") & (part["scale"] == s)]
        out += [dict(seed=seed, scale=s, metric=m, value=v) for m, v in zip(test["metric"], test["value"])]
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- findings


def editing_findings(df: pd.DataFrame, reference: pd.DataFrame | None = None, *, keep: float = 0.95) -> pd.DataFrame:
    """Measured sentences (key, finding) for negation, addition and SSD, each beside the paper's report."""
    ref = (reference if reference is not None else load_reference("editing")).set_index("key")
    rows = []
    neg = choose_negation_scale(df, keep=keep)
    s = summarize(neg, ["metric"]).set_index("metric")
    drop = neg.pivot_table(index="seed", columns="metric", values="value")
    d = (drop["pretrained target accuracy"] - drop["target accuracy"]) * 100
    dc = (drop["pretrained control accuracy"] - drop["control accuracy"]) * 100
    r = ref.loc["negation"]
    rows.append(("negation", (
        f"Negating the forget-class task vector (scale chosen on validation, keeping ≥{keep:.0%} of control accuracy) "
        f"lowers target-class test accuracy from {s.loc['pretrained target accuracy', 'mean']:.3f} to "
        f"{s.loc['target accuracy', 'mean']:.3f} ± {s.loc['target accuracy', 'std']:.3f} "
        f"({d.mean():.1f} points) while control accuracy drops {dc.mean():.1f} ± {dc.std() if len(dc) > 1 else 0:.1f} points. "
        f"{_src(r)}: {r['claim']}")))
    add = choose_addition_scale(df)
    ft = df[(df["experiment"] == "addition") & (df["method"] == "fine-tuned on its task")]
    both = pd.concat([add[add["metric"].isin(ft["metric"].unique())].assign(method="task addition"), ft])
    both = both.assign(value=both["value"].astype(float))
    mean_added = both.groupby(["method", "seed"])["value"].mean().reset_index()
    c = compare_paired(mean_added, "method", "task addition", "fine-tuned on its task",
                metric="mean test accuracy on the added tasks", labels=("one model with the summed task vectors", "each task's own fine-tuned model"))
    r = ref.loc["addition"]
    rows.append(("addition", f"{c.sentence()} Scale chosen on validation: {', '.join(f'{v:g}' for v in add.groupby('seed')['scale'].first())} (per seed). {_src(r)}: {r['claim']}"))
    un = df[df["experiment"] == "unlearning"]
    for metric in ("forget accuracy", "retain accuracy", "seconds"):
        c = compare_paired(un[un["metric"] == metric], "method", "SSD", "retrain without the class", metric=f"test {metric}" if metric != "seconds" else "wall-clock seconds")
        rows.append((f"ssd_{metric.split()[0]}", c.sentence()))
    r = ref.loc["ssd"]
    rows.append(("ssd_reference", f"{_src(r)}: {r['claim']}"))
    return pd.DataFrame(rows, columns=["key", "finding"])


def _src(ref_row: pd.Series) -> str:
    first = str(ref_row["authors"]).split(",")[0].split()[-1]
    return f"{first} et al. ({int(ref_row['year'])}; {ref_row['where']}) report"
