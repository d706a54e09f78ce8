"""Teacher-student transfer on a small image data set: knowledge distillation with soft targets
(Hinton-style T and alpha), progressive self-knowledge distillation (PS-KD) and weak-to-strong
supervision with the performance gap recovered (PGR).

Every run uses `training.train_loop`. Per-example targets (teacher logits, past predictions)
are looked up by row id: the loop is given `y = arange(n)` and the loss reads the targets of
the batch's ids.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from paperlib.experiments.calibration import expected_calibration_error
from paperlib.experiments.datasets import Dataset, load_dataset
from paperlib.experiments.training import LoopConfig, accuracy, make_mlp, predict_logits, train_loop

# --------------------------------------------------------------------------- losses


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution per row: mean of -sum_k q_k log p_k."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, y).

    The T^2 factor keeps the soft-target gradients on the scale of the hard-label ones.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1), reduction="batchmean"
    )
    hard = F.cross_entropy(student_logits, y)
    return alpha * t * t * soft + (1.0 - alpha) * hard


def pskd_alpha(epoch: int, n_epochs: int, alpha_final: float = 0.8) -> float:
    """PS-KD's weight on past predictions: alpha_t = alpha_T * t / T, growing linearly from 0."""
    if not 0 <= epoch <= n_epochs:
        raise ValueError(f"epoch must be in [0, {n_epochs}], got {epoch}")
    return alpha_final * epoch / n_epochs


def pskd_targets(y: torch.Tensor, past_probs: torch.Tensor, alpha_t: float) -> torch.Tensor:
    """Refined targets (1 - alpha_t) * onehot(y) + alpha_t * p_{t-1}(x)."""
    one_hot = F.one_hot(y, past_probs.shape[1]).to(past_probs.dtype)
    return (1.0 - alpha_t) * one_hot + alpha_t * past_probs


def confidence_loss(logits: torch.Tensor, weak_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """Burns et al.'s auxiliary confidence loss: (1 - a) CE(f, weak) + a CE(f, hardened f).

    The student's own argmax (detached) is the hardened target, so it may disagree with the weak labels.
    """
    hardened = logits.detach().argmax(1)
    return (1.0 - alpha) * soft_cross_entropy(logits, weak_probs) + alpha * F.cross_entropy(logits, hardened)


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

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    teacher_hidden: tuple[int, ...] = (128, 128)
    student_hidden: tuple[int, ...] = (32,)
    teacher_steps: int = 1000
    student_steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    alphas: tuple[float, ...] = (0.5, 0.9)
    train_size: int = 0  # 0: the whole training split


def _subset(data: Dataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if n <= 0 or n >= len(data.x_train):
        return data.x_train, data.y_train
    idx = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(seed))[:n]
    return data.x_train[idx], data.y_train[idx]


def run_kd(config: KDConfig, *, data: Dataset | None = None) -> pd.DataFrame:
    """Tidy rows (seed, model, temperature, alpha, metric='accuracy', value) of teacher, label-only student and KD students."""
    data = data or load_dataset(config.dataset)
    rows = []
    loop = lambda steps: LoopConfig(steps=steps, batch_size=config.batch_size, lr=config.lr)
    for seed in config.seeds:
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


@dataclass(frozen=True)
class PSKDConfig:
    """Progressive self-knowledge distillation against plain training, same model and epochs."""

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    alpha_final: float = 0.8  # alpha_T in the paper
    n_bins: int = 15
    train_size: int = 0  # 0: the whole training split


def run_pskd(config: PSKDConfig, *, data: Dataset | None = None) -> tuple[pd.DataFrame, dict[tuple[str, int], torch.Tensor]]:
    """Rows (seed, method, metric in accuracy/ece/nll, value) and the test probabilities of each (method, seed)."""
    data = data or load_dataset(config.dataset)
    rows, probs = [], {}
    for seed in config.seeds:
        x, y = _subset(data, config.train_size, seed)
        for method, a in (("plain", 0.0), ("PS-KD", config.alpha_final)):
            model = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed)
            train_pskd(model, x, y, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                       alpha_final=a, seed=seed)
            logits = predict_logits(model, data.x_test).cpu()
            p = torch.softmax(logits, 1)
            probs[(method, seed)] = p
            rows += [
                dict(seed=seed, method=method, metric="accuracy", value=float((p.argmax(1) == data.y_test).float().mean())),
                dict(seed=seed, method=method, metric="ece", value=expected_calibration_error(p, data.y_test, n_bins=config.n_bins)),
                dict(seed=seed, method=method, metric="nll", value=float(F.cross_entropy(logits, data.y_test))),
            ]
    return pd.DataFrame(rows), probs


def reliability_by_method(probs: dict[tuple[str, int], torch.Tensor], y: torch.Tensor, *, n_bins: int = 15) -> dict[str, pd.DataFrame]:
    """Reliability table per method, pooling the test predictions of all its seeds."""
    from paperlib.experiments.calibration import reliability_table

    methods = dict.fromkeys(m for m, _ in probs)
    out = {}
    for m in methods:
        keys = [k for k in probs if k[0] == m]
        out[m] = reliability_table(torch.cat([probs[k] for k in keys]), y.repeat(len(keys)), n_bins=n_bins)
    return out


@dataclass(frozen=True)
class W2SConfig:
    """Weak-to-strong: a small supervisor trained on few labels labels a held-out half for a wide student."""

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    weak_hidden: tuple[int, ...] = (8,)
    weak_train_size: int = 200  # true labels the weak supervisor sees
    weak_steps: int = 300
    strong_hidden: tuple[int, ...] = (128, 128)
    strong_steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    aux_alpha: float = 0.75  # final weight of the confidence loss
    warmup_fraction: float = 0.2


def run_weak_to_strong(config: W2SConfig, *, data: Dataset | None = None) -> pd.DataFrame:
    """Rows (seed, model in weak/student/student + confidence loss/ceiling, metric='accuracy', value)."""
    data = data or load_dataset(config.dataset)
    rows = []
    n = len(data.x_train)
    for seed in config.seeds:
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
        rows += [dict(seed=seed, model=k, metric="accuracy", value=v) for k, v in acc.items()]
    return pd.DataFrame(rows)


def pgr_table(df: pd.DataFrame) -> pd.DataFrame:
    """PGR per seed and student kind from `run_weak_to_strong` rows: (seed, model, metric='pgr', value)."""
    wide = df[df["metric"] == "accuracy"].pivot_table(index="seed", columns="model", values="value")
    rows = []
    for seed, r in wide.iterrows():
        for name in [c for c in wide.columns if c.startswith("student")]:
            rows.append(dict(seed=seed, model=name, metric="pgr",
                             value=performance_gap_recovered(r["weak"], r[name], r["ceiling"])))
    return pd.DataFrame(rows)


def make_configs(dataset: str, seeds: Sequence[int], quick: bool) -> tuple[KDConfig, PSKDConfig, W2SConfig]:
    """The notebook's three experiment configs from its parameters; `quick` shrinks every run for tests."""
    seeds = tuple(int(s) for s in seeds)
    kd, pskd, w2s = KDConfig(dataset=dataset, seeds=seeds), PSKDConfig(dataset=dataset, seeds=seeds), W2SConfig(dataset=dataset, seeds=seeds)
    if quick:
        seeds = seeds[:1]
        kd = replace(kd, seeds=seeds, teacher_hidden=(32,), student_hidden=(8,), teacher_steps=60, student_steps=40,
                     temperatures=(1.0, 4.0), alphas=(0.9,), train_size=1000)
        pskd = replace(pskd, seeds=seeds, hidden=(32,), epochs=3, batch_size=100, train_size=600)
        w2s = replace(w2s, seeds=seeds, weak_steps=40, strong_hidden=(32,), strong_steps=40)
    return kd, pskd, w2s


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
    from paperlib.experiments.findings import against_reference, compare_paired, load_reference

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
        from paperlib.experiments.findings import summarize

        p = summarize(pgr_table(w2s), ["model"])
        text = "; ".join(f"{m}: PGR {mu:.2f} ± {sd:.2f}" for m, mu, sd in zip(p["model"], p["mean"], p["std"]))
        r = ref.loc["w2s_confidence"]
        rows.append(("w2s_pgr", f"Performance gap recovered: {text}. For reference, {_source(r)} report about "
                                f"{r['value']:.0%} with the confidence loss for GPT-4 supervised by a GPT-2-level model."))
    return pd.DataFrame(rows, columns=["key", "finding"])
