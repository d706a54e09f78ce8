"""Teacher-student transfer on a small image data set: knowledge distillation with soft targets
(Hinton-style T and alpha), progressive self-knowledge distillation (PS-KD) and weak-to-strong
supervision with the performance gap recovered (PGR).

Every run uses `training.train_loop`. Per-example targets (teacher logits, past predictions)
are looked up by row id: the loop is given `y = arange(n)` and the loss reads the targets of
the batch's ids. One unit is one part (kd, pskd, w2s) for one seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from paperlib.experiments.calibration import (
    expected_calibration_error,
    reliability_table,
)
from paperlib.experiments.datasets import Dataset, cached_dataset
from paperlib.experiments.findings import against_reference, compare_paired, summarize
from paperlib.experiments.losses import (
    confidence_loss,
    distillation_loss,
    soft_cross_entropy,
)
from paperlib.experiments.runner import Results, Unit, make_unit, run_experiment
from paperlib.experiments.training import (
    LoopConfig,
    accuracy,
    make_mlp,
    predict_logits,
    train_loop,
)
from paperlib.store import load_reference

NAME = "distillation.experiment"
CODE_VERSION = 1


def pskd_alpha(epoch: int, n_epochs: int, alpha_final: float = 0.8) -> float:
    """PS-KD's weight on past predictions: alpha_t = alpha_T * t / T, growing linearly from 0."""
    if not 0 <= epoch <= n_epochs:
        raise ValueError(f"epoch must be in [0, {n_epochs}], got {epoch}")
    return alpha_final * epoch / n_epochs


def pskd_targets(y: torch.Tensor, past_probs: torch.Tensor, alpha_t: float) -> torch.Tensor:
    """Refined targets (1 - alpha_t) * onehot(y) + alpha_t * p_{t-1}(x)."""
    one_hot = F.one_hot(y, past_probs.shape[1]).to(past_probs.dtype)
    return (1.0 - alpha_t) * one_hot + alpha_t * past_probs


def performance_gap_recovered(weak: float, student: float, ceiling: float) -> float:
    """PGR = (student - weak) / (ceiling - weak): 0 imitates the weak supervisor, 1 matches the ceiling."""
    if ceiling == weak:
        raise ValueError("ceiling equals weak performance: PGR is undefined")
    return (student - weak) / (ceiling - weak)


# --------------------------------------------------------------------------- training helpers


def epoch_sampler(n: int, batch_size: int) -> tuple[Callable[[int, int, torch.Generator], torch.Tensor], int]:
    """A batch sampler walking a fresh permutation each epoch (remainder dropped); returns (sampler, steps per epoch)."""
    per_epoch = max(1, n // batch_size)
    state: dict[str, torch.Tensor] = {}

    def sample(step: int, bs: int, gen: torch.Generator) -> torch.Tensor:
        k = (step - 1) % per_epoch
        if k == 0:
            state["perm"] = torch.randperm(n, generator=gen)
        return state["perm"][k * bs : (k + 1) * bs]

    return sample, per_epoch


def _fit_on_ids(
    model: nn.Module,
    x: torch.Tensor,
    loss_on_ids: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    config: LoopConfig,
    *,
    seed: int,
    batch_sampler=None,
    after_step=None,
) -> nn.Module:
    """train_loop where the 'labels' are row ids and `loss_on_ids(logits, ids)` builds the loss."""
    ids = torch.arange(len(x))
    return train_loop(
        model, x, ids, config, seed=seed,
        loss_fn=lambda m, xb, ib: loss_on_ids(m(xb), ib),
        batch_sampler=batch_sampler, after_step=after_step,
    )


def train_student(
    student: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    teacher_logits: torch.Tensor,
    config: LoopConfig,
    *,
    temperature: float,
    alpha: float,
    seed: int,
) -> nn.Module:
    """Train `student` with `distillation_loss` against precomputed teacher logits of every row."""
    dev = next(student.parameters()).device
    y, teacher_logits = y.to(dev), teacher_logits.to(dev)
    return _fit_on_ids(
        student, x,
        lambda logits, ids: distillation_loss(logits, teacher_logits[ids], y[ids], temperature=temperature, alpha=alpha),
        config, seed=seed,
    )


def train_pskd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    alpha_final: float,
    seed: int,
) -> nn.Module:
    """Progressive self-knowledge distillation; alpha_final = 0 is plain training with the same schedule.

    At the start of epoch t the targets become (1 - alpha_t) y + alpha_t p_{t-1}(x), with p_{t-1}
    the model's own predictions (evaluation mode) at the end of epoch t - 1.
    """
    dev = next(model.parameters()).device
    n_classes = int(model[-1].out_features) if isinstance(model, nn.Sequential) else int(y.max()) + 1
    y = y.to(dev)
    targets = F.one_hot(y, n_classes).float()
    sampler, per_epoch = epoch_sampler(len(x), batch_size)

    def refresh(step: int) -> None:
        nonlocal targets
        if step % per_epoch == 0 and alpha_final > 0:
            epoch = step // per_epoch  # the epoch about to start
            if epoch < epochs:
                past = torch.softmax(predict_logits(model, x), dim=1)
                targets = pskd_targets(y, past, pskd_alpha(epoch, epochs, alpha_final))

    config = LoopConfig(steps=epochs * per_epoch, batch_size=batch_size, lr=lr)
    return _fit_on_ids(
        model, x, lambda logits, ids: soft_cross_entropy(logits, targets[ids]),
        config, seed=seed, batch_sampler=sampler, after_step=refresh,
    )


def train_on_weak_labels(
    model: nn.Module,
    x: torch.Tensor,
    weak_probs: torch.Tensor,
    config: LoopConfig,
    *,
    seed: int,
    aux_alpha: float = 0.0,
    warmup_fraction: float = 0.2,
) -> nn.Module:
    """Fit the weak supervisor's soft labels; with aux_alpha > 0 add the confidence loss, its weight
    ramped linearly from 0 to aux_alpha over the first `warmup_fraction` of the steps."""
    dev = next(model.parameters()).device
    weak_probs = weak_probs.to(dev)
    warm = max(1, int(round(warmup_fraction * config.steps)))
    step = {"now": 1}

    def loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if aux_alpha <= 0:
            return soft_cross_entropy(logits, weak_probs[ids])
        a = aux_alpha * min(1.0, step["now"] / warm)
        return confidence_loss(logits, weak_probs[ids], a)

    def tick(s: int) -> None:
        step["now"] = s + 1

    return _fit_on_ids(model, x, loss, config, seed=seed, after_step=tick)


# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class KDConfig:
    """Knowledge distillation: a wide teacher, a narrow student, a grid of T and alpha."""

    teacher_hidden: tuple[int, ...] = (128, 128)
    student_hidden: tuple[int, ...] = (32,)
    teacher_steps: int = 1000
    student_steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    alphas: tuple[float, ...] = (0.5, 0.9)
    train_size: int = 0  # 0: the whole training split


@dataclass(frozen=True)
class PSKDConfig:
    """Progressive self-knowledge distillation against plain training, same model and epochs."""

    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    alpha_final: float = 0.8  # alpha_T in the paper
    n_bins: int = 15
    train_size: int = 0  # 0: the whole training split


@dataclass(frozen=True)
class W2SConfig:
    """Weak-to-strong: a small supervisor trained on few labels labels a held-out half for a wide student."""

    weak_hidden: tuple[int, ...] = (8,)
    weak_train_size: int = 200  # true labels the weak supervisor sees
    weak_steps: int = 300
    strong_hidden: tuple[int, ...] = (128, 128)
    strong_steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    aux_alpha: float = 0.75  # final weight of the confidence loss
    warmup_fraction: float = 0.2


@dataclass(frozen=True)
class Config:
    """The notebook's three experiments on one data set and the same seeds."""

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    kd: KDConfig = field(default_factory=KDConfig)
    pskd: PSKDConfig = field(default_factory=PSKDConfig)
    w2s: W2SConfig = field(default_factory=W2SConfig)

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: tiny models, few steps, one seed."""
        base = dict(seeds=(0,),
                    kd=KDConfig(teacher_hidden=(32,), student_hidden=(8,), teacher_steps=60, student_steps=40,
                                temperatures=(1.0, 4.0), alphas=(0.9,), train_size=1000),
                    pskd=PSKDConfig(hidden=(32,), epochs=3, batch_size=100, train_size=600),
                    w2s=W2SConfig(weak_steps=40, strong_hidden=(32,), strong_steps=40))
        return cls(**{**base, **changes})


def _subset(data: Dataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if n <= 0 or n >= len(data.x_train):
        return data.x_train, data.y_train
    idx = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(seed))[:n]
    return data.x_train[idx], data.y_train[idx]


def kd_rows(config: KDConfig, data: Dataset, seed: int) -> pd.DataFrame:
    """Tidy rows (seed, model, temperature, alpha, metric='accuracy', value) of teacher, label-only student and KD students."""
    rows = []
    loop = lambda steps: LoopConfig(steps=steps, batch_size=config.batch_size, lr=config.lr)
    x, y = _subset(data, config.train_size, seed)
    teacher = make_mlp(data.n_features, config.teacher_hidden, data.n_classes, seed=seed)
    train_loop(teacher, x, y, loop(config.teacher_steps), seed=seed)
    rows.append(dict(seed=seed, model="teacher", temperature=float("nan"), alpha=float("nan"),
                     value=accuracy(teacher, data.x_test, data.y_test)))
    t_logits = predict_logits(teacher, x)
    grid = [(1.0, 0.0)] + [(t, a) for a in config.alphas for t in config.temperatures]
    for t, a in grid:
        student = make_mlp(data.n_features, config.student_hidden, data.n_classes, seed=seed + 1000)
        train_student(student, x, y, t_logits, loop(config.student_steps), temperature=t, alpha=a, seed=seed)
        rows.append(dict(seed=seed, model="labels only" if a == 0 else "distilled",
                         temperature=float("nan") if a == 0 else t, alpha=a,
                         value=accuracy(student, data.x_test, data.y_test)))
    df = pd.DataFrame(rows)
    df.insert(3, "metric", "accuracy")
    return df


def pskd_rows(config: PSKDConfig, data: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows (seed, method, metric in accuracy/ece/nll, value) and the reliability bins of each method's test predictions."""
    rows, bins = [], []
    x, y = _subset(data, config.train_size, seed)
    for method, a in (("plain", 0.0), ("PS-KD", config.alpha_final)):
        model = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed)
        train_pskd(model, x, y, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                   alpha_final=a, seed=seed)
        logits = predict_logits(model, data.x_test).cpu()
        p = torch.softmax(logits, 1)
        rows += [
            dict(seed=seed, method=method, metric="accuracy", value=float((p.argmax(1) == data.y_test).float().mean())),
            dict(seed=seed, method=method, metric="ece", value=expected_calibration_error(p, data.y_test, n_bins=config.n_bins)),
            dict(seed=seed, method=method, metric="nll", value=float(F.cross_entropy(logits, data.y_test))),
        ]
        bins.append(reliability_table(p, data.y_test, n_bins=config.n_bins).assign(method=method, seed=seed))
    return pd.DataFrame(rows), pd.concat(bins, ignore_index=True)


def reliability_by_method(bins: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Reliability table per method, pooling the test predictions of all its seeds (count-weighted bins)."""
    out = {}
    for method, part in bins.groupby("method", sort=False):
        part = part.assign(conf_sum=part["confidence"].fillna(0) * part["count"],
                           acc_sum=part["accuracy"].fillna(0) * part["count"])
        g = part.groupby(["bin", "lo", "hi"], as_index=False)[["count", "conf_sum", "acc_sum"]].sum()
        nonzero = g["count"] > 0
        g["confidence"] = (g["conf_sum"] / g["count"]).where(nonzero)
        g["accuracy"] = (g["acc_sum"] / g["count"]).where(nonzero)
        out[method] = g[["bin", "lo", "hi", "count", "confidence", "accuracy"]]
    return out


def w2s_rows(config: W2SConfig, data: Dataset, seed: int) -> pd.DataFrame:
    """Rows (seed, model in weak/student/student + confidence loss/ceiling, metric='accuracy', value)."""
    n = len(data.x_train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    half = n // 2
    weak_idx = perm[:half][: config.weak_train_size]
    strong_idx = perm[half:]
    xs, ys = data.x_train[strong_idx], data.y_train[strong_idx]

    weak = make_mlp(data.n_features, config.weak_hidden, data.n_classes, seed=seed)
    train_loop(weak, data.x_train[weak_idx], data.y_train[weak_idx],
               LoopConfig(steps=config.weak_steps, batch_size=config.batch_size, lr=config.lr), seed=seed)
    weak_probs = torch.softmax(predict_logits(weak, xs), 1)
    acc = {"weak": accuracy(weak, data.x_test, data.y_test)}

    loop = LoopConfig(steps=config.strong_steps, batch_size=config.batch_size, lr=config.lr)
    for name, aux in (("student", 0.0), ("student + confidence loss", config.aux_alpha)):
        strong = make_mlp(data.n_features, config.strong_hidden, data.n_classes, seed=seed + 1000)
        train_on_weak_labels(strong, xs, weak_probs, loop, seed=seed, aux_alpha=aux,
                             warmup_fraction=config.warmup_fraction)
        acc[name] = accuracy(strong, data.x_test, data.y_test)
    ceiling = make_mlp(data.n_features, config.strong_hidden, data.n_classes, seed=seed + 1000)
    train_loop(ceiling, xs, ys, loop, seed=seed)
    acc["ceiling"] = accuracy(ceiling, data.x_test, data.y_test)
    acc["weak labels on student data"] = float((weak_probs.argmax(1).cpu() == ys).float().mean())
    return pd.DataFrame([dict(seed=seed, model=k, metric="accuracy", value=v) for k, v in acc.items()])


def pgr_table(df: pd.DataFrame) -> pd.DataFrame:
    """PGR per seed and student kind from the weak-to-strong rows: (seed, model, metric='pgr', value)."""
    wide = df[df["metric"] == "accuracy"].pivot_table(index="seed", columns="model", values="value")
    rows = []
    for seed, r in wide.iterrows():
        for name in [c for c in wide.columns if c.startswith("student")]:
            rows.append(dict(seed=seed, model=name, metric="pgr",
                             value=performance_gap_recovered(r["weak"], r[name], r["ceiling"])))
    return pd.DataFrame(rows)


_PARTS = {"kd": KDConfig, "pskd": PSKDConfig, "w2s": W2SConfig}


# Settings the notebook's exercise solutions run (each applied to its config; a dict value
# changes only those fields of a part):
# weak-to-strong with a weak supervisor trained on 1,000 true labels instead of 200.
EXERCISES = ({"w2s": {"weak_train_size": 1000}},)


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """One unit per part (kd, pskd, w2s) and seed."""
    return [make_unit(NAME, {"part": part, "dataset": config.dataset, **asdict(getattr(config, part))}, seed, device)
            for part in _PARTS for seed in config.seeds]


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One part for one seed."""
    settings = dict(config)
    part, data = settings.pop("part"), cached_dataset(settings.pop("dataset"))
    settings = _PARTS[part](**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    if part == "kd":
        return {"kd": kd_rows(settings, data, seed)}
    if part == "pskd":
        rows, bins = pskd_rows(settings, data, seed)
        return {"pskd": rows, "reliability": bins}
    return {"weak_to_strong": w2s_rows(settings, data, seed)}


class DistillationResults(Results):
    """`kd`, `pskd`, `reliability` (PS-KD's confidence bins per seed) and `weak_to_strong` tables."""

    name = "distillation"
    table_names = ('kd', 'pskd', 'reliability', 'weak_to_strong')

    def findings(self) -> pd.DataFrame:
        return distillation_findings(self.tables["kd"], self.tables["pskd"], self.tables["weak_to_strong"])


def run(config: Config, *, device: str = "auto", **options) -> DistillationResults:
    """All three experiments for every seed, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, DistillationResults, **options)


# --------------------------------------------------------------------------- findings


def _source(ref_row: pd.Series) -> str:
    first = str(ref_row["authors"]).split(",")[0].split()[-1]
    return f"{first} et al. ({int(ref_row['year'])}; {ref_row['where']})"


def distillation_findings(
    kd: pd.DataFrame | None = None,
    pskd: pd.DataFrame | None = None,
    w2s: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One measured sentence per comparison the papers make (key, finding), each checked
    against the direction in `data/references/distillation.csv`."""
    ref = (reference if reference is not None else load_reference("distillation")).set_index("key")
    rows = []
    if kd is not None:
        grid = kd[kd["model"] == "distilled"]
        means = grid.groupby(["temperature", "alpha"])["value"].mean()
        t, a = means.idxmax()
        best = grid[(grid["temperature"] == t) & (grid["alpha"] == a)]
        both = pd.concat([best, kd[kd["model"] == "labels only"]])
        c = compare_paired(both, "model", "distilled", "labels only", metric="student test accuracy", decimals=4,
                    labels=(f"the best distilled student (T={t:g}, alpha={a:g}; picked on the test set, so optimistic)",
                            "the label-only student"))
        rows.append(("kd_vs_labels", against_reference(c, ref.loc["kd_vs_labels", "expected"], _source(ref.loc["kd_vs_labels"]))))
    for key, data in (("pskd_accuracy", pskd), ("pskd_ece", pskd), ("w2s_student_vs_weak", w2s), ("w2s_confidence", w2s)):
        if data is None:
            continue
        r = ref.loc[key]
        part = data[data["metric"] == r["metric"]]
        col = "method" if "method" in part.columns else "model"
        # runs of one seed share the data split and the initialisation, so the gap is judged per seed
        c = compare_paired(part, col, r["a"], r["b"], metric=f"test {r['metric']}", decimals=4)
        rows.append((key, against_reference(c, r["expected"], _source(r))))
    if w2s is not None:
        p = summarize(pgr_table(w2s), ["model"])
        text = "; ".join(f"{m}: PGR {mu:.2f} ± {sd:.2f}" for m, mu, sd in zip(p["model"], p["mean"], p["std"]))
        r = ref.loc["w2s_confidence"]
        rows.append(("w2s_pgr", f"Performance gap recovered: {text}. For reference, {_source(r)} report about "
                                f"{r['value']:.0%} with the confidence loss for GPT-4 supervised by a GPT-2-level model."))
    return pd.DataFrame(rows, columns=["key", "finding"])
