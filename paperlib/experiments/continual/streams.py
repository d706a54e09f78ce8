"""Continual-learning task streams, the three scenarios, the stream runner and its metrics.

Tasks come from a `Dataset` (permuted pixels or classes in pairs); a scenario (van de Ven &
Tolias: "task", "domain", "class") decides which output units each task trains and is scored
on; `run_stream` trains one model task after task with a `Strategy` (see
`paperlib.experiments.continual.strategies`) and returns tidy tables: the accuracy matrix and the curves.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from paperlib.experiments.training import (
    LoopConfig,
    make_mlp,
    make_optimizer,
    predict_logits,
    train_loop,
)

SCENARIOS = ("task", "domain", "class")


@dataclass(frozen=True)
class Task:
    """One task of a stream: its train/test tensors and the output units (`classes`) its labels use."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[int, ...]


# --- task streams -----------------------------------------------------------------------


def permuted_tasks(dataset, n_tasks: int, *, seed: int, identity_first: bool = True) -> list[Task]:
    """`n_tasks` copies of the data set, each with its pixels shuffled by a permutation drawn from `seed`."""
    if n_tasks < 1:
        raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
    gen = torch.Generator().manual_seed(seed)
    n_features = dataset.x_train.shape[1]
    classes = tuple(int(c) for c in torch.unique(dataset.y_train).tolist())
    tasks = []
    for t in range(n_tasks):
        perm = torch.randperm(n_features, generator=gen)
        if t == 0 and identity_first:
            perm = torch.arange(n_features)
        tasks.append(
            Task(f"permuted-{t + 1}", dataset.x_train[:, perm], dataset.y_train, dataset.x_test[:, perm], dataset.y_test, classes)
        )
    return tasks


def split_tasks(dataset, classes_per_task: int = 2) -> list[Task]:
    """Tasks of consecutive classes (0-1, 2-3, ...): split MNIST for `classes_per_task=2`."""
    classes = sorted(int(c) for c in torch.unique(dataset.y_train).tolist())
    if classes_per_task < 1 or len(classes) % classes_per_task:
        raise ValueError(f"{len(classes)} classes cannot be split into tasks of {classes_per_task}")
    tasks = []
    for start in range(0, len(classes), classes_per_task):
        group = tuple(classes[start : start + classes_per_task])
        keep_tr = torch.isin(dataset.y_train, torch.tensor(group))
        keep_te = torch.isin(dataset.y_test, torch.tensor(group))
        tasks.append(
            Task(
                "split-" + "".join(str(c) for c in group) if max(group) < 10 else "split-" + "-".join(map(str, group)),
                dataset.x_train[keep_tr],
                dataset.y_train[keep_tr],
                dataset.x_test[keep_te],
                dataset.y_test[keep_te],
                group,
            )
        )
    return tasks


# --- scenarios --------------------------------------------------------------------------


def apply_scenario(tasks: Sequence[Task], scenario: str) -> tuple[list[Task], int]:
    """Relabel tasks into the output space of a scenario; returns the tasks and the number of output units.

    Domain-IL: every task uses the same units (a label becomes its position in the task's
    classes). Task-IL and Class-IL: every task gets its own units (labels shifted when tasks
    reuse the same classes, as in permuted MNIST); they differ in which units are active.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: expected one of {SCENARIOS}")
    if scenario == "domain":
        width = len(tasks[0].classes)
        out = []
        for t in tasks:
            if len(t.classes) != width:
                raise ValueError("Domain-IL needs the same number of classes in every task")
            lut = torch.full((max(t.classes) + 1,), -1, dtype=torch.long)
            lut[list(t.classes)] = torch.arange(width)
            out.append(replace(t, y_train=lut[t.y_train], y_test=lut[t.y_test], classes=tuple(range(width))))
        return out, width
    all_classes = [c for t in tasks for c in t.classes]
    if len(set(all_classes)) == len(all_classes):
        return list(tasks), max(all_classes) + 1
    out, offset = [], 0
    for t in tasks:
        lut = torch.full((max(t.classes) + 1,), -1, dtype=torch.long)
        lut[list(t.classes)] = torch.arange(offset, offset + len(t.classes))
        out.append(replace(t, y_train=lut[t.y_train], y_test=lut[t.y_test], classes=tuple(range(offset, offset + len(t.classes)))))
        offset += len(t.classes)
    return out, offset


@dataclass(frozen=True)
class ScenarioContext:
    """What a strategy needs to know about the scenario while task `task_index` trains."""

    scenario: str
    task_index: int
    n_outputs: int
    task_classes: tuple[tuple[int, ...], ...]  # the output units of every task of the stream

    def active_classes(self, task_of_row: int | None = None) -> tuple[int, ...]:
        """Units a row of task `task_of_row` (default: the current task) is trained and scored on."""
        t = self.task_index if task_of_row is None else task_of_row
        if self.scenario == "task":
            return self.task_classes[t]
        if self.scenario == "class":
            return tuple(c for cl in self.task_classes[: self.task_index + 1] for c in cl)
        return tuple(range(self.n_outputs))

    @cached_property
    def _table(self) -> torch.Tensor:
        table = torch.zeros(len(self.task_classes), self.n_outputs, dtype=torch.bool)
        for t in range(len(self.task_classes)):
            table[t, list(self.active_classes(t))] = True
        return table

    def mask(self, task_of_rows: torch.Tensor) -> torch.Tensor:
        """Boolean (rows, outputs) mask of the active units of each row."""
        return self._table.to(task_of_rows.device)[task_of_rows]

    def masked_logits(self, logits: torch.Tensor, task_of_rows: torch.Tensor) -> torch.Tensor:
        """Logits with inactive units at -inf (softmax gives them zero probability)."""
        return logits.masked_fill(~self.mask(task_of_rows), float("-inf"))


@dataclass(frozen=True)
class StreamContext:
    """What every strategy hook is given while task `task_index` of a stream trains."""

    model: nn.Module
    tasks: tuple[Task, ...]
    task_index: int
    scenario: ScenarioContext

    @property
    def task(self) -> Task:
        return self.tasks[self.task_index]


# --- Fisher information -----------------------------------------------------------------


def fisher_diagonal(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    n_samples: int | None = 1024,
    fisher: str = "exact",
    seed: int = 0,
    classes: Sequence[int] | None = None,
    method: str = "auto",
    chunk_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information of the model's parameters, averaged over up to `n_samples` rows of x.

    `fisher="exact"`: E_x sum_c p(c|x) (d log p(c|x)/d theta)^2, the expectation over the model's
    own predictive distribution; `"empirical"`: the squared gradient of log p(y|x) at the true
    labels y. With `classes`, the predictive distribution is restricted to those output units
    (Task-IL / Class-IL heads). `method="func"`: per-sample gradients from torch.func (any
    model); `"linear"`: the same numbers for models whose parameters all sit in nn.Linear
    layers, from per-sample gradients in factored form (outer product of a layer's input and
    output gradient), about 50x faster; `"auto"` picks "linear" when it applies.
    """
    if fisher not in ("exact", "empirical"):
        raise ValueError(f"fisher must be 'exact' or 'empirical', got {fisher!r}")
    if fisher == "empirical" and y is None:
        raise ValueError("fisher='empirical' needs the true labels y")
    if method not in ("auto", "func", "linear"):
        raise ValueError(f"method must be 'auto', 'func' or 'linear', got {method!r}")
    dev = next(model.parameters()).device
    n = len(x)
    if n == 0:
        raise ValueError("fisher_diagonal needs at least one row of x")
    if n_samples is not None and n_samples < n:
        rows = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_samples]
        x = x[rows]
        y = y[rows] if y is not None else None
    x = x.to(dev)
    active = None if classes is None else torch.tensor(list(classes), device=dev)
    if fisher == "exact":
        y = None  # the exact Fisher never looks at the labels
    if y is not None:
        y = y.to(dev)
        if active is not None:  # label -> its position among the active units
            hit = y.unsqueeze(1) == active.unsqueeze(0)
            if not bool(hit.any(1).all()):
                raise ValueError("some labels are not among `classes`")
            y = hit.float().argmax(1)
    linear_only = all(
        isinstance(m, nn.Linear) for m in model.modules() if any(True for _ in m.parameters(recurse=False))
    )
    if method == "linear" and not linear_only:
        raise ValueError("method='linear' needs a model whose parameters all belong to nn.Linear layers")
    use = "linear" if method == "linear" or (method == "auto" and linear_only) else "func"
    was_training = model.training
    model.eval()
    try:
        impl = _fisher_linear if use == "linear" else _fisher_func
        total = impl(model, x, y, fisher, active, chunk_size)
    finally:
        model.train(was_training)
    return {k: v / len(x) for k, v in total.items()}


def _class_weights(logp: torch.Tensor, y: torch.Tensor | None, fisher: str) -> torch.Tensor:
    """(rows, classes) weight of each class's squared gradient: p(c|x), or one-hot true labels."""
    if fisher == "empirical":
        return nn.functional.one_hot(y, logp.shape[1]).to(logp.dtype)
    return logp.detach().exp()


def _fisher_func(model, x, y, fisher, active, chunk_size):
    """Sum over rows of the weighted squared per-sample gradients, from torch.func."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def log_prob(p, xi, c):
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))[0]
        if active is not None:
            logits = logits[active]
        return torch.log_softmax(logits, dim=0).gather(0, c.unsqueeze(0))[0]

    per_sample = vmap(grad(log_prob), in_dims=(None, 0, 0))
    total = {k: torch.zeros_like(v) for k, v in params.items()}
    for start in range(0, len(x), chunk_size):
        xb = x[start : start + chunk_size]
        with torch.no_grad():
            logits = model(xb)
            logp = torch.log_softmax(logits if active is None else logits[:, active], dim=1)
        w = _class_weights(logp, None if y is None else y[start : start + chunk_size], fisher)
        for c in range(w.shape[1]):
            if not bool((w[:, c] > 0).any()):
                continue
            cb = torch.full((len(xb),), c, dtype=torch.long, device=x.device)
            for k, g in per_sample(params, xb, cb).items():
                total[k] += torch.einsum("n,n...->...", w[:, c], g**2)
    return total


def _fisher_linear(model, x, y, fisher, active, chunk_size):
    """Same sum for all-Linear models: a row's gradient of W is delta a^T, so its square is delta^2 (a^2)^T."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    names = {id(p): k for k, p in model.named_parameters()}
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].detach(), out))) for m in layers]
    total = {k: torch.zeros_like(p) for k, p in model.named_parameters() if p.requires_grad}
    try:
        for start in range(0, len(x), chunk_size):
            seen.clear()
            xb = x[start : start + chunk_size]
            with torch.enable_grad():
                logits = model(xb)
                logp = torch.log_softmax(logits if active is None else logits[:, active], dim=1)
                w = _class_weights(logp, None if y is None else y[start : start + chunk_size], fisher)
                outs = [out for _, out in seen]
                d2 = [torch.zeros_like(o) for o in outs]
                for c in range(w.shape[1]):
                    if not bool((w[:, c] > 0).any()):
                        continue
                    deltas = torch.autograd.grad(logp[:, c].sum(), outs, retain_graph=True)
                    for acc, d in zip(d2, deltas):
                        acc += w[:, c : c + 1] * d.detach() ** 2
            for layer, (a, _), dd in zip(layers, seen, d2):
                if layer.weight.requires_grad:
                    total[names[id(layer.weight)]] += dd.T @ (a**2)
                if layer.bias is not None and layer.bias.requires_grad:
                    total[names[id(layer.bias)]] += dd.sum(0)
    finally:
        for h in hooks:
            h.remove()
    return total


# --- the stream runner ------------------------------------------------------------------


@dataclass(frozen=True)
class StreamConfig:
    """Model and optimiser of a continual-learning run (defaults: van de Ven & Tolias's split MNIST)."""

    hidden: tuple[int, ...] = (400, 400)
    steps_per_task: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    eval_every: int = 0  # steps between evaluations of every task (curves); 0: only at task ends
    eval_size: int = 0  # test rows per task in the curves (0: all)
    optimizer_per_task: bool = True  # False: one optimiser for the whole stream, as the paper's reference code


@dataclass(frozen=True)
class StreamResult:
    """Outcome of one run: `accuracy` (after_task, task, accuracy: the matrix R, tidy) and `curves`."""

    strategy: str
    scenario: str
    seed: int
    accuracy: pd.DataFrame
    curves: pd.DataFrame
    model: nn.Module = field(repr=False)
    strategy_object: object = field(repr=False, default=None)

    def matrix(self) -> np.ndarray:
        return accuracy_matrix(self.accuracy)

    def summary(self) -> dict[str, float]:
        r = self.matrix()
        return {
            "average_accuracy": average_accuracy(r),
            "backward_transfer": backward_transfer(r),
            "forgetting": forgetting(r),
        }


def encode_labels(y: torch.Tensor, task_index: int | torch.Tensor, n_outputs: int) -> torch.Tensor:
    """Pack the task of each row into its label (label + n_outputs * task), so batches carry it."""
    return y + n_outputs * task_index


def decode_labels(y: torch.Tensor, n_outputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `encode_labels`: (labels, task of each row)."""
    return y % n_outputs, torch.div(y, n_outputs, rounding_mode="floor")


@torch.no_grad()
def task_accuracy(model: nn.Module, task: Task, ctx: ScenarioContext, task_index: int, *, limit: int = 0) -> float:
    """Test accuracy on one task, predictions restricted to the units the scenario allows."""
    x, y = task.x_test, task.y_test
    if limit:
        x, y = x[:limit], y[:limit]
    logits = predict_logits(model, x).cpu()
    rows = torch.full((len(y),), task_index, dtype=torch.long)
    pred = ctx.masked_logits(logits, rows).argmax(1)
    return (pred == y).float().mean().item()


def run_stream(
    tasks: Sequence[Task],
    strategy,
    *,
    scenario: str,
    config: StreamConfig = StreamConfig(),
    seed: int,
    model: nn.Module | None = None,
    progress: bool = False,
) -> StreamResult:
    """Train one model on the tasks in order with `strategy`; returns the accuracy matrix and curves.

    The model (an MLP of `config.hidden`, built from `seed` unless given) has one output per
    unit of the scenario. Each task gets `config.steps_per_task` steps, with a fresh optimiser
    unless `config.optimizer_per_task` is False.
    """
    tasks, n_out = apply_scenario(tasks, scenario)
    if model is None:
        model = make_mlp(tasks[0].x_train.shape[1], config.hidden, n_out, seed=seed)
    task_classes = tuple(t.classes for t in tasks)
    loop = LoopConfig(config.steps_per_task, config.batch_size, config.lr, config.optimizer, config.eval_every)
    stream_optimizer = None if config.optimizer_per_task else make_optimizer(config.optimizer, model, config.lr)
    rows, curve = [], []
    tasks = tuple(tasks)
    for i, task in enumerate(tasks):
        ctx = StreamContext(model, tasks, i, ScenarioContext(scenario, i, n_out, task_classes))
        strategy.before_task(ctx)
        data = strategy.train_data(ctx)
        x, y = data if data is not None else (task.x_train, encode_labels(task.y_train, i, n_out))
        dev = next(model.parameters()).device

        def loss_fn(m, xb, yb, ctx=ctx):
            labels, owner = decode_labels(yb, n_out)
            logits = m(xb)
            ce = nn.functional.cross_entropy(ctx.scenario.masked_logits(logits, owner), labels)
            loss = strategy.batch_loss(ctx, xb, ce, logits)
            pen = strategy.penalty(ctx)
            return loss if pen is None else loss + pen

        def on_eval(step, i=i, ctx=ctx):
            for j, other in enumerate(tasks):
                acc = task_accuracy(model, other, ctx.scenario, j, limit=config.eval_size)
                curve.append((i, i * config.steps_per_task + step, j, acc))

        train_loop(
            model,
            x,
            y,
            loop,
            seed=seed * 1009 + i,
            loss_fn=loss_fn,
            batch_sampler=strategy.batch_sampler(ctx),
            optimizer=stream_optimizer,
            after_step=lambda step, ctx=ctx: strategy.after_step(ctx),
            on_eval=on_eval if config.eval_every else None,
            progress=f"{strategy.name} task {i + 1}/{len(tasks)}" if progress else False,
        )
        model.to(dev)
        strategy.after_task(ctx)
        for j, other in enumerate(tasks):
            rows.append((i, j, task_accuracy(model, other, ctx.scenario, j)))
    acc = pd.DataFrame(rows, columns=["after_task", "task", "accuracy"])
    curves = pd.DataFrame(curve, columns=["training_task", "step", "task", "accuracy"])
    for df in (acc, curves):
        df.insert(0, "seed", seed)
        df.insert(0, "scenario", scenario)
        df.insert(0, "strategy", strategy.name)
    return StreamResult(strategy.name, scenario, seed, acc, curves, model, strategy)


# --- metrics ----------------------------------------------------------------------------


def accuracy_matrix(accuracy: pd.DataFrame) -> np.ndarray:
    """R[i, j]: accuracy on task j after training task i, from the tidy table."""
    return accuracy.pivot_table(index="after_task", columns="task", values="accuracy").to_numpy(dtype=float)


def average_accuracy(r: np.ndarray) -> float:
    """Mean accuracy over all tasks after the last one."""
    return float(np.mean(r[-1]))


def backward_transfer(r: np.ndarray) -> float:
    """BWT (Lopez-Paz & Ranzato): mean of R[T-1, j] - R[j, j] over j < T-1 (negative = forgetting)."""
    t = r.shape[0]
    if t < 2:
        return 0.0
    return float(np.mean([r[-1, j] - r[j, j] for j in range(t - 1)]))


def forgetting(r: np.ndarray) -> float:
    """Average forgetting (Chaudhry et al.): mean over j < T-1 of max_{l < T-1} R[l, j] - R[T-1, j]."""
    t = r.shape[0]
    if t < 2:
        return 0.0
    return float(np.mean([r[j : t - 1, j].max() - r[-1, j] for j in range(t - 1)]))

