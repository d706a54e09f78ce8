"""Curriculum learning: pacing functions, difficulty scores, orderings, label noise and a paced trainer.

A curriculum has three parts (Hacohen & Weinshall 2019; Wu, Dyer & Neyshabur 2021,
"When do curricula work?"): a *scoring* function that rates how hard each training example
is, an *ordering* of the examples built from those scores, and a *pacing* function
g(step) -> how many of the first examples of the ordering the batch may be drawn from.
The experiment compares curriculum (easy first), anti-curriculum (hard first), random
curriculum (a random ordering, same pacing) and standard training (no pacing) with a full
budget, a limited budget and noisy labels, and states its findings from the measured numbers.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from paperlib.experiments.datasets import cached_dataset
from paperlib.experiments.findings import Comparison, summarize
from paperlib.experiments.runner import Results, Unit, make_unit, run_experiment
from paperlib.experiments.training import (
    LoopConfig,
    accuracy,
    make_mlp,
    predict_logits,
    train_loop,
)
from paperlib.store import load_reference

NAME = "curriculum.experiment"
CODE_VERSION = 1
REFERENCE = "curriculum_wu2021"

EXP_LOG_C = 10.0  # the constant c of Wu et al.'s exp and log pacing families

# ---------------------------------------------------------------------------------------------
# Pacing functions: g(step) -> number of easiest examples available at that step.
# ---------------------------------------------------------------------------------------------


def _clip(size: float, n: int, min_size: int) -> int:
    """Round down and clip to [min(min_size, n), n]."""
    return int(min(n, max(min(min_size, n), math.floor(size + 1e-9))))


def _check_ab(n: int, total_steps: int, a: float, b: float) -> None:
    if n < 1 or total_steps < 1:
        raise ValueError(f"pacing needs n >= 1 and total_steps >= 1, got n={n}, total_steps={total_steps}")
    if not a > 0:
        raise ValueError(f"a (fraction of training until all data are used; > 1: never all) must be > 0, got {a}")
    if not 0 <= b <= 1:
        raise ValueError(f"b (starting fraction of the data) must be in [0, 1], got {b}")


def _wu_progress(step: int, total_steps: int, a: float) -> float:
    """u = step / (a T) of Wu et al.'s pacing families."""
    return max(step, 0) / (a * total_steps)


def pace_linear(step: int, *, n: int, total_steps: int, a: float, b: float, min_size: int = 1) -> int:
    """Wu et al. linear pacing: bN + (N - bN) u, clipped to [min_size, N]."""
    _check_ab(n, total_steps, a, b)
    u = _wu_progress(step, total_steps, a)
    return _clip(b * n + (n - b * n) * u, n, min_size)


def pace_quad(step: int, *, n: int, total_steps: int, a: float, b: float, min_size: int = 1) -> int:
    """Wu et al. quadratic pacing: bN + (N - bN) u^2, clipped to [min_size, N]."""
    _check_ab(n, total_steps, a, b)
    u = _wu_progress(step, total_steps, a)
    return _clip(b * n + (n - b * n) * u**2, n, min_size)


def pace_root(step: int, *, n: int, total_steps: int, a: float, b: float, min_size: int = 1) -> int:
    """Wu et al. square-root pacing: bN + (N - bN) sqrt(u), clipped to [min_size, N]."""
    _check_ab(n, total_steps, a, b)
    u = _wu_progress(step, total_steps, a)
    return _clip(b * n + (n - b * n) * math.sqrt(u), n, min_size)


def pace_step(step: int, *, n: int, total_steps: int, a: float, b: float, min_size: int = 1) -> int:
    """Wu et al. step pacing: bN + N floor(u), clipped to [min_size, N] (all data from step aT on)."""
    _check_ab(n, total_steps, a, b)
    u = _wu_progress(step, total_steps, a)
    return _clip(b * n + n * math.floor(u + 1e-12), n, min_size)


def pace_exp(step: int, *, n: int, total_steps: int, a: float, b: float, min_size: int = 1, c: float = EXP_LOG_C) -> int:
    """Wu et al. exponential pacing: bN + (N - bN)(e^{cu} - 1)/(e^c - 1), clipped to [min_size, N]."""
    _check_ab(n, total_steps, a, b)
    u = min(_wu_progress(step, total_steps, a), 2.0)  # beyond u = 1 the size is clipped to N anyway
    return _clip(b * n + (n - b * n) * (math.exp(c * u) - 1) / (math.exp(c) - 1), n, min_size)


def pace_log(step: int, *, n: int, total_steps: int, a: float, b: float, min_size: int = 1, c: float = EXP_LOG_C) -> int:
    """Wu et al. logarithmic pacing: bN + (N - bN)(1 + ln(u + e^{-c}) / c), clipped to [min_size, N]."""
    _check_ab(n, total_steps, a, b)
    u = _wu_progress(step, total_steps, a)
    return _clip(b * n + (n - b * n) * (1 + math.log(u + math.exp(-c)) / c), n, min_size)


WU_FAMILIES: dict[str, Callable[..., int]] = {
    "linear": pace_linear,
    "quad": pace_quad,
    "root": pace_root,
    "step": pace_step,
    "exp": pace_exp,
    "log": pace_log,
}


def pace_fixed_exponential(
    step: int, *, n: int, starting_fraction: float, increase: float, step_length: int, min_size: int = 1
) -> int:
    """Hacohen & Weinshall fixed exponential pacing: N * min(1, start * increase^floor(step / step_length))."""
    if step_length < 1 or increase < 1 or not 0 < starting_fraction <= 1:
        raise ValueError(
            "fixed exponential pacing needs step_length >= 1, increase >= 1 and 0 < starting_fraction <= 1, "
            f"got {step_length}, {increase}, {starting_fraction}"
        )
    stage = max(step, 0) // step_length
    return _clip(n * min(1.0, starting_fraction * increase**stage), n, min_size)


def pace_varied_exponential(
    step: int, *, n: int, starting_fraction: float, increase: float, step_lengths: Sequence[int], min_size: int = 1
) -> int:
    """Hacohen & Weinshall varied exponential pacing: as the fixed one, but stage k lasts step_lengths[k] steps.

    After the listed stages the last length repeats.
    """
    if not step_lengths or min(step_lengths) < 1 or increase < 1 or not 0 < starting_fraction <= 1:
        raise ValueError("varied exponential pacing needs positive step_lengths, increase >= 1 and 0 < starting_fraction <= 1")
    remaining, stage = max(step, 0), 0
    lengths = list(step_lengths)
    while True:
        length = lengths[min(stage, len(lengths) - 1)]
        if remaining < length or starting_fraction * increase**stage >= 1:
            break
        remaining -= length
        stage += 1
    return _clip(n * min(1.0, starting_fraction * increase**stage), n, min_size)


def pace_single_step(step: int, *, n: int, starting_fraction: float, step_length: int, min_size: int = 1) -> int:
    """Hacohen & Weinshall single-step pacing: the easiest start * N examples until step_length, then all."""
    if step_length < 0 or not 0 < starting_fraction <= 1:
        raise ValueError(f"single-step pacing needs step_length >= 0 and 0 < starting_fraction <= 1, got {step_length}, {starting_fraction}")
    return _clip(n * starting_fraction if step < step_length else n, n, min_size)


PACING_FAMILIES = (*WU_FAMILIES, "fixed_exponential", "varied_exponential", "single_step")


@dataclass(frozen=True)
class Pacing:
    """One pacing function with its parameters; `size(step)` is g(step)."""

    family: str = "linear"  # one of PACING_FAMILIES
    a: float = 0.8  # Wu families: fraction of training until the full data are used (> 1: never all of it)
    b: float = 0.2  # Wu families: starting fraction; Hacohen families use it as the starting fraction too
    increase: float = 1.9  # Hacohen exponential families: growth factor per stage
    step_fraction: float = 0.1  # Hacohen families: stage length as a fraction of the total steps
    min_size: int = 1  # never fewer examples than this (the batch size in training)

    def __post_init__(self):
        if self.family not in PACING_FAMILIES:
            raise ValueError(f"unknown pacing family {self.family!r}: expected one of {', '.join(PACING_FAMILIES)}")

    def size(self, step: int, *, n: int, total_steps: int) -> int:
        """Number of easiest examples available at `step` (0-based) of `total_steps`."""
        if self.family in WU_FAMILIES:
            return WU_FAMILIES[self.family](step, n=n, total_steps=total_steps, a=self.a, b=self.b, min_size=self.min_size)
        length = max(1, round(self.step_fraction * total_steps))
        start = max(self.b, 1 / n)  # Hacohen families grow a positive start: b = 0 means one example
        if self.family == "fixed_exponential":
            return pace_fixed_exponential(step, n=n, starting_fraction=start, increase=self.increase, step_length=length, min_size=self.min_size)
        if self.family == "varied_exponential":
            # stages that get longer: the first lasts half a stage, each next one half a stage longer
            lengths = [max(1, round(length * (k + 1) / 2)) for k in range(64)]
            return pace_varied_exponential(step, n=n, starting_fraction=start, increase=self.increase, step_lengths=lengths, min_size=self.min_size)
        return pace_single_step(step, n=n, starting_fraction=start, step_length=length, min_size=self.min_size)


def pacing_curves(
    pacings: Sequence[Pacing], *, n: int, total_steps: int, points: int = 101
) -> pd.DataFrame:
    """Tidy table of g(step) for each pacing: columns family, step, size, fraction."""
    steps = np.unique(np.linspace(0, total_steps, points).round().astype(int))
    rows = [
        {"family": p.family, "step": int(s), "size": p.size(int(s), n=n, total_steps=total_steps)}
        for p in pacings
        for s in steps
    ]
    df = pd.DataFrame(rows)
    df["fraction"] = df["size"] / n
    return df


# ---------------------------------------------------------------------------------------------
# Scoring functions: difficulty of each training example (higher = harder).
# ---------------------------------------------------------------------------------------------


def _confidence_difficulty(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 - probability given to the true label."""
    return 1.0 - proba[np.arange(len(y)), y]


def transfer_scores(
    x: torch.Tensor, y: torch.Tensor, *, folds: int = 2, steps: int = 300, lr: float = 1e-2, seed: int = 0
) -> np.ndarray:
    """Difficulty from a simple teacher: 1 - held-out confidence of a logistic regression in the true label.

    The teacher is multinomial logistic regression on the raw inputs (a linear layer trained with
    Adam). Each example is scored by a teacher fitted on the other folds, so the teacher cannot
    simply memorise it (with folds=1 it is fitted on everything).
    """
    n, n_classes = len(y), int(y.max().item()) + 1
    perm = np.random.default_rng(seed).permutation(n)
    parts = [np.arange(n)] if folds <= 1 else np.array_split(perm, folds)
    proba = np.zeros((n, n_classes))
    loop = LoopConfig(steps=steps, batch_size=min(256, n), lr=lr)
    for k, score_idx in enumerate(parts):
        fit_idx = np.arange(n) if folds <= 1 else np.setdiff1d(perm, score_idx)
        fit = torch.as_tensor(fit_idx)
        teacher = train_loop(make_mlp(x.shape[1], (), n_classes, seed=seed + k), x[fit], y[fit], loop, seed=seed + k)
        proba[score_idx] = torch.softmax(predict_logits(teacher, x[torch.as_tensor(score_idx)]), dim=1).cpu().numpy()
    return _confidence_difficulty(proba, y.cpu().numpy())


def self_taught_scores(
    x: torch.Tensor, y: torch.Tensor, *, hidden: Sequence[int], loop: LoopConfig, seed: int = 0
) -> np.ndarray:
    """Difficulty from the same network trained without a curriculum: 1 - its confidence in the true label."""
    n_classes = int(y.max().item()) + 1
    model = train_loop(make_mlp(x.shape[1], hidden, n_classes, seed=seed), x, y, loop, seed=seed)
    proba = torch.softmax(predict_logits(model, x), dim=1).cpu().numpy()
    return _confidence_difficulty(proba, y.cpu().numpy())


def loss_scores(
    x: torch.Tensor, y: torch.Tensor, *, hidden: Sequence[int], steps: int = 50, batch_size: int = 128, lr: float = 1e-3, seed: int = 0
) -> np.ndarray:
    """Difficulty as the cross-entropy of each example under a network trained for only `steps` steps."""
    n_classes = int(y.max().item()) + 1
    model = train_loop(
        make_mlp(x.shape[1], hidden, n_classes, seed=seed), x, y, LoopConfig(steps=steps, batch_size=batch_size, lr=lr), seed=seed
    )
    logits = predict_logits(model, x)
    return torch.nn.functional.cross_entropy(logits, y.to(logits.device), reduction="none").cpu().numpy()


def random_scores(n: int, *, seed: int) -> np.ndarray:
    """Uniform random difficulties: the 'random curriculum' control."""
    return np.random.default_rng(seed).random(n)


SCORINGS = ("transfer", "self_taught", "loss", "random")


def score_examples(
    scoring: str, x: torch.Tensor, y: torch.Tensor, *, hidden: Sequence[int] = (128,), steps: int | None = None, seed: int = 0
) -> np.ndarray:
    """Difficulty of every example by the named scoring function (see SCORINGS); `steps` trains the scorer's model."""
    if scoring == "transfer":
        return transfer_scores(x, y, steps=steps or 300, seed=seed)
    if scoring == "self_taught":
        return self_taught_scores(x, y, hidden=hidden, loop=LoopConfig(steps=steps or 300), seed=seed)
    if scoring == "loss":
        return loss_scores(x, y, hidden=hidden, steps=steps or 50, seed=seed)
    if scoring == "random":
        return random_scores(len(y), seed=seed)
    raise ValueError(f"unknown scoring {scoring!r}: expected one of {', '.join(SCORINGS)}")


# ---------------------------------------------------------------------------------------------
# Orderings and label noise.
# ---------------------------------------------------------------------------------------------

ORDERINGS = ("curriculum", "anti_curriculum", "random_curriculum", "standard")


def order_examples(
    difficulty: np.ndarray, ordering: str, *, seed: int = 0, labels: np.ndarray | torch.Tensor | None = None
) -> np.ndarray | None:
    """Indices of the examples in training order; None for standard training (no pacing).

    curriculum: easiest first; anti_curriculum: hardest first (ties keep index order);
    random_curriculum: a random permutation from `seed`. With `labels`, the (anti-)curriculum is
    class-balanced as in Hacohen & Weinshall: every prefix holds the classes in their overall
    proportions, each class in its own difficulty order, so "easy first" cannot mean "one class first".
    """
    difficulty = np.asarray(difficulty, dtype=float)
    if ordering == "standard":
        return None
    if ordering == "random_curriculum":
        return np.random.default_rng(seed).permutation(len(difficulty))
    if ordering not in ("curriculum", "anti_curriculum"):
        raise ValueError(f"unknown ordering {ordering!r}: expected one of {', '.join(ORDERINGS)}")
    key = difficulty if ordering == "curriculum" else -difficulty
    if labels is None:
        return np.argsort(key, kind="stable")
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if len(labels) != len(key):
        raise ValueError(f"labels ({len(labels)}) and difficulty ({len(key)}) differ in length")
    position = np.empty(len(key))  # (rank within its class + 0.5) / class size: a class-free clock
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        ranked = members[np.argsort(key[members], kind="stable")]
        position[ranked] = (np.arange(len(ranked)) + 0.5) / len(ranked)
    return np.lexsort((key, position))


def flip_labels(y: torch.Tensor, fraction: float, *, n_classes: int | None = None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip round(fraction * n) labels, chosen with `seed`, each to a different class drawn uniformly.

    Returns (noisy labels, boolean mask of the flipped rows); y itself is not changed.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction of flipped labels must be in [0, 1], got {fraction}")
    k = int(n_classes if n_classes is not None else y.max().item() + 1)
    if k < 2 and fraction > 0:
        raise ValueError("flipping labels needs at least two classes")
    rng = np.random.default_rng(seed)
    yn = y.cpu().numpy().copy()
    flip = rng.choice(len(yn), size=round(fraction * len(yn)), replace=False)
    yn[flip] = (yn[flip] + rng.integers(1, k, size=len(flip))) % k  # an offset in 1..k-1: never the same class
    mask = np.zeros(len(yn), dtype=bool)
    mask[flip] = True
    return torch.from_numpy(yn).to(y.dtype), torch.from_numpy(mask)


# ---------------------------------------------------------------------------------------------
# The paced trainer.
# ---------------------------------------------------------------------------------------------


def paced_sampler(order: np.ndarray, pacing: Pacing, total_steps: int) -> Callable[[int, int, torch.Generator], torch.Tensor]:
    """A `train_loop` batch sampler: step s (1-based) draws uniformly from the first g(s - 1) examples of `order`."""
    order_t = torch.as_tensor(np.asarray(order), dtype=torch.long)
    n = len(order_t)

    def sample(step: int, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        available = pacing.size(step - 1, n=n, total_steps=total_steps)
        return order_t[torch.randint(0, available, (batch_size,), generator=gen)]

    return sample


def train_paced(
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    order: np.ndarray | None,
    pacing: Pacing,
    loop: LoopConfig,
    hidden: Sequence[int],
    seed: int,
    progress: bool | str = False,
) -> pd.DataFrame:
    """Train an MLP with batches paced along `order` (None: standard uniform sampling).

    Returns the test-accuracy curve: columns step, test_accuracy (every `loop.eval_every` steps and at the end).
    """
    n_classes = int(torch.cat([y, y_test]).max().item()) + 1
    model = make_mlp(x.shape[1], hidden, n_classes, seed=seed)
    curve: list[dict] = []

    def on_eval(step: int) -> None:
        curve.append({"step": step, "test_accuracy": accuracy(model, x_test, y_test)})

    sampler = None if order is None else paced_sampler(order, pacing, loop.steps)
    train_loop(model, x, y, loop, seed=seed, batch_sampler=sampler, on_eval=on_eval, progress=progress)
    if not curve or curve[-1]["step"] != loop.steps:
        on_eval(loop.steps)
    return pd.DataFrame(curve)


# ---------------------------------------------------------------------------------------------
# The experiment: config, run, summary, findings.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One curriculum experiment: data, network, budgets, noise levels, scoring and pacing."""

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    hidden: tuple[int, ...] = (128,)
    full_steps: int = 600  # the full budget (about 19 epochs of mnist-5k at batch 128)
    limited_fraction: float = 0.08  # the limited budget as a fraction of full_steps
    noise_fractions: tuple[float, ...] = (0.2, 0.4)  # label-noise regimes, each run with the full budget
    noise_seed: int = 0  # which labels are flipped (the same for every training seed)
    batch_size: int = 128
    lr: float = 1e-3
    evals: int = 20  # test-accuracy points per curve
    scoring: str = "transfer"
    scorer_steps: int = 0  # training steps of the scoring model; 0: the scoring function's default
    pacing: Pacing = field(default_factory=Pacing)
    orderings: tuple[str, ...] = ORDERINGS
    train_subset: int = 0  # 0: all training examples; else the first k (for quick runs)
    class_balanced: bool = True  # (anti-)curricula keep the class proportions in every prefix

    def __post_init__(self):
        if self.scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {self.scoring!r}: expected one of {', '.join(SCORINGS)}")
        bad = [o for o in self.orderings if o not in ORDERINGS]
        if bad:
            raise ValueError(f"unknown orderings {bad}: expected some of {', '.join(ORDERINGS)}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if not 0 < self.limited_fraction <= 1:
            raise ValueError(f"limited_fraction must be in (0, 1], got {self.limited_fraction}")

    @classmethod
    def quick(cls, **changes) -> "Config":
        """The same experiment shrunk for tests: one seed, one noise level, 40 steps, 600 examples."""
        base = dict(seeds=(0,), noise_fractions=(0.2,), full_steps=40, limited_fraction=0.25, train_subset=600,
                    evals=4, scorer_steps=60)
        return cls(**{**base, **changes})

    @property
    def regimes(self) -> list[tuple[str, int, float]]:
        """(name, steps, noise fraction) of each regime, in the order they are run."""
        limited = max(1, round(self.limited_fraction * self.full_steps))
        out = [("full budget", self.full_steps, 0.0), ("limited budget", limited, 0.0)]
        out += [(f"{round(100 * f)}% noisy labels", self.full_steps, f) for f in self.noise_fractions]
        return out


def training_data(config: Config):
    """The data set of the experiment with its training part cut to `train_subset` (when set)."""
    data = cached_dataset(config.dataset)
    if config.train_subset:
        data = replace(data, x_train=data.x_train[: config.train_subset], y_train=data.y_train[: config.train_subset])
    return data


def flipped_share_in_hardest(difficulty: np.ndarray, flipped: np.ndarray | torch.Tensor, *, fraction: float) -> float:
    """Share of the flipped (noisy) labels that the score puts among the hardest `fraction` of the examples."""
    flipped = np.asarray(flipped.cpu() if isinstance(flipped, torch.Tensor) else flipped, dtype=bool)
    if not flipped.any():
        raise ValueError("no flipped labels to look for")
    hardest = np.argsort(-np.asarray(difficulty), kind="stable")[: round(fraction * len(flipped))]
    return float(flipped[hardest].sum() / flipped.sum())


_UNIT_FIELDS = ("dataset", "hidden", "noise_seed", "batch_size", "lr", "evals", "scoring", "scorer_steps",
                "train_subset", "class_balanced")


# Settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# linear pacing with a = 1.5 (the hardest 27% of the ordering are never used) under 40% noisy labels,
# for the curriculum, the random curriculum and standard training.
EXERCISES = ({"pacing": Pacing("linear", a=1.5, b=0.2), "noise_fractions": (0.4,),
              "orderings": ("curriculum", "random_curriculum", "standard")},)


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """One unit per regime, ordering and seed (labels flipped with `noise_seed`, the same for every seed)."""
    common = {k: getattr(config, k) for k in _UNIT_FIELDS}
    common["pacing"] = asdict(config.pacing)
    return [make_unit(NAME, {**common, "regime": regime, "steps": steps, "noise": noise, "ordering": ordering}, seed, device)
            for regime, steps, noise in config.regimes for ordering in config.orderings for seed in config.seeds]


@functools.lru_cache(maxsize=8)
def _scored(dataset: str, train_subset: int, noise: float, noise_seed: int, scoring: str, hidden: tuple,
            scorer_steps: int) -> tuple[torch.Tensor, np.ndarray]:
    """Training labels (flipped at `noise`) and their difficulty scores, kept for the units of one process."""
    data = cached_dataset(dataset)
    x, y = data.x_train, data.y_train
    if train_subset:
        x, y = x[:train_subset], y[:train_subset]
    y_train = flip_labels(y, noise, n_classes=data.n_classes, seed=noise_seed)[0] if noise else y
    scores = score_examples(scoring, x, y_train, hidden=hidden, steps=scorer_steps or None, seed=noise_seed)
    return y_train, scores


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One paced (or standard) training run: its test-accuracy curve."""
    data = cached_dataset(config["dataset"])
    x = data.x_train[: config["train_subset"]] if config["train_subset"] else data.x_train
    y_train, scores = _scored(config["dataset"], config["train_subset"], float(config["noise"]), config["noise_seed"],
                              config["scoring"], tuple(config["hidden"]), config["scorer_steps"])
    pacing = Pacing(**{**config["pacing"], "min_size": config["batch_size"]})
    steps = config["steps"]
    loop = LoopConfig(steps=steps, batch_size=config["batch_size"], lr=config["lr"], eval_every=max(1, steps // config["evals"]))
    order = order_examples(scores, config["ordering"], seed=seed, labels=y_train if config["class_balanced"] else None)
    curve = train_paced(x, y_train, data.x_test, data.y_test, order=order, pacing=pacing, loop=loop,
                        hidden=tuple(config["hidden"]), seed=seed)
    curve = curve.assign(regime=config["regime"], ordering=config["ordering"], seed=seed, budget=steps)
    return {"curves": curve[["regime", "ordering", "seed", "budget", "step", "test_accuracy"]]}


class CurriculumResults(Results):
    """`curves`: test accuracy during training per regime, ordering and seed."""

    name = "curriculum"
    table_names = ('curves',)

    @property
    def curves(self) -> pd.DataFrame:
        return self.tables["curves"]

    def summary(self) -> pd.DataFrame:
        return final_accuracy(self.curves)

    def findings(self) -> pd.DataFrame:
        return curriculum_findings(self.curves)


def run(config: Config, *, device: str = "auto", **options) -> CurriculumResults:
    """Every regime x ordering x seed, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, CurriculumResults, **options)


def final_accuracy(curves: pd.DataFrame) -> pd.DataFrame:
    """Per regime and ordering: mean, seed standard deviation and count of the final test accuracy."""
    last = curves.loc[curves["step"] == curves["budget"]]
    return summarize(last, ["regime", "ordering"], value="test_accuracy")


def compare_to_standard(summary: pd.DataFrame, *, baseline: str = "standard") -> pd.DataFrame:
    """Each ordering against the baseline in each regime: gap of the means and whether it exceeds the seed spread.

    A gap counts only when it is larger than the sum of the two seed standard deviations
    (the ±1 std error bars do not overlap); otherwise the verdict is "within seed spread",
    and with fewer than two seeds on either side it is "single seed".
    """
    rows = []
    for regime, part in summary.groupby("regime", sort=False):
        base = part.loc[part["ordering"] == baseline]
        if base.empty:
            raise ValueError(f"regime {regime!r} has no {baseline!r} runs to compare against")
        b = base.iloc[0]
        for _, r in part.loc[part["ordering"] != baseline].iterrows():
            c = Comparison(r["ordering"], baseline, r["mean"], r["std"], int(r["n"]), b["mean"], b["std"], int(b["n"]),
                           metric="final test accuracy")
            rows.append({"regime": regime, "ordering": r["ordering"], "mean": r["mean"], "baseline_mean": b["mean"],
                         "gap": c.gap, "spread": c.spread, "verdict": c.verdict})
    return pd.DataFrame(rows)


def _expected_verdicts(reference: pd.DataFrame) -> dict[str, str]:
    """Regime -> the curriculum-vs-standard verdict the reference reports ("noisy labels" covers every noise level)."""
    ref = reference.loc[reference["ordering"] == "curriculum"]
    return dict(zip(ref["regime"], ref["expected_vs_standard"]))


def curriculum_findings(curves: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """One sentence per regime, computed from the runs: does curriculum beat standard training, and does
    that agree with the published finding (`data/references/curriculum_wu2021.csv` by default)?"""
    expected_by_regime = _expected_verdicts(load_reference(REFERENCE) if reference is None else reference)
    comp = compare_to_standard(final_accuracy(curves))
    rows = []
    for regime, part in comp.groupby("regime", sort=False):
        cur = part.loc[part["ordering"] == "curriculum"]
        others = "; ".join(
            f"{r.ordering.replace('_', ' ')} {100 * r.gap:+.1f} points ({r.verdict})" for r in part.itertuples() if r.ordering != "curriculum"
        )
        expected = expected_by_regime.get("noisy labels" if "noisy" in regime else regime)
        if cur.empty:
            rows.append({"regime": regime, "verdict": "", "expected": expected, "agrees": None, "finding": f"{regime}: vs standard, {others}."})
            continue
        c = cur.iloc[0]
        what = {"higher": "beats", "lower": "trails", "within seed spread": "is level with",
                "single seed": "cannot yet be told apart from"}[c.verdict]
        text = (
            f"{regime}: curriculum {what} standard training "
            f"({100 * c['mean']:.1f}% vs {100 * c.baseline_mean:.1f}%, gap {100 * c.gap:+.1f} points"
            + (")" if c.verdict == "single seed" else f", seed spread {100 * c.spread:.1f})")
        )
        if others:
            text += f"; vs standard, {others}"
        agrees = None if expected is None or c.verdict == "single seed" else c.verdict == expected
        if c.verdict == "single seed":
            text += "; with a single seed there is no spread to judge the gap by, so nothing is claimed"
        elif expected is not None:
            wu = {"within seed spread": "no real difference", "higher": "a gain from the curriculum", "lower": "a loss from the curriculum"}[expected]
            text += f". Wu et al. (2021) report {wu} here; our runs {'agree' if agrees else 'do not agree'}"
        rows.append({"regime": regime, "verdict": c.verdict, "expected": expected, "agrees": agrees, "finding": text + "."})
    return pd.DataFrame(rows)
