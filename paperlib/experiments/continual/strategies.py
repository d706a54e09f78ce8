"""Continual-learning strategies: small objects that own their state and plug into `run_stream`.

Hooks (all optional, Avalanche-plugin shape): `before_task`, `train_data` (what the task
trains on), `batch_loss` (reweight or add to a batch's loss: LwF, replay), `penalty` (a
term added to the loss: L2, EWC, SI), `after_step`, `after_task` (consolidate: Fisher,
anchors, buffer). A strategy is used for one run; make a fresh one per run.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from paperlib.experiments.continual.streams import ScenarioContext, decode_labels, encode_labels, fisher_diagonal


class Strategy:
    """Fine-tuning: train on each task in turn with nothing to protect old tasks (the lower bound)."""

    name = "none"

    def before_task(self, model: nn.Module, t: int, tasks, ctx: ScenarioContext) -> None:
        pass

    def train_data(self, t: int, tasks, ctx: ScenarioContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and task-encoded labels (see `encode_labels`) the task trains on."""
        return tasks[t].x_train, encode_labels(tasks[t].y_train, t, ctx.n_outputs)

    def batch_sampler(self, t: int, tasks):
        """How batches are drawn from `train_data` (a `train_loop` batch_sampler); None: uniformly."""
        return None

    def batch_loss(self, model: nn.Module, x: torch.Tensor, loss: torch.Tensor, logits: torch.Tensor, ctx: ScenarioContext) -> torch.Tensor:
        return loss

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def after_step(self, model: nn.Module) -> None:
        pass

    def after_task(self, model: nn.Module, t: int, tasks, ctx: ScenarioContext) -> None:
        pass


Finetune = Strategy


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p for k, p in model.named_parameters() if p.requires_grad}


def quadratic_penalty(model: nn.Module, weights: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_k weights_k * (theta_k - anchor_k)^2 over all parameters."""
    total = None
    for k, p in _params(model).items():
        term = (weights[k] * (p - anchor[k]) ** 2).sum()
        total = term if total is None else total + term
    return total


class L2(Strategy):
    """Pull every weight towards its value after the previous task: strength/2 * ||theta - theta*||^2."""

    name = "l2"

    def __init__(self, strength: float = 1.0):
        self.strength = strength
        self.anchor_: dict[str, torch.Tensor] | None = None

    def penalty(self, model):
        if self.anchor_ is None:
            return None
        total = sum(((p - self.anchor_[k]) ** 2).sum() for k, p in _params(model).items())
        return 0.5 * self.strength * total

    def after_task(self, model, t, tasks, ctx):
        self.anchor_ = {k: p.detach().clone() for k, p in _params(model).items()}


class EWC(Strategy):
    """Elastic weight consolidation (Kirkpatrick et al. 2017): strength/2 * sum_i F_i (theta_i - theta*_i)^2.

    Offline (default): one Fisher and anchor per past task; their quadratic penalties are kept
    summed as one (`fisher_` = sum of Fishers, `anchor_` = Fisher-weighted mean anchor), which
    equals the sum of per-task penalties up to a constant. `online=True` (Schwarz et al. 2018):
    one running Fisher, decayed by `gamma` each task, anchored at the latest weights.
    """

    name = "ewc"

    def __init__(self, strength: float, *, fisher: str = "exact", n_samples: int | None = 1024,
                 online: bool = False, gamma: float = 1.0, seed: int = 0, keep_fishers: bool = False):
        self.strength = strength
        self.keep_fishers = keep_fishers
        self.task_fishers_: list[dict[str, torch.Tensor]] = []  # each task's own Fisher, when keep_fishers
        self.fisher = fisher
        self.n_samples = n_samples
        self.online = online
        self.gamma = gamma
        self.seed = seed
        self.fisher_: dict[str, torch.Tensor] | None = None
        self.anchor_: dict[str, torch.Tensor] | None = None
        if online:
            self.name = "online-ewc"

    def penalty(self, model):
        if self.fisher_ is None:
            return None
        return 0.5 * self.strength * quadratic_penalty(model, self.fisher_, self.anchor_)

    def after_task(self, model, t, tasks, ctx):
        task = tasks[t]
        f = fisher_diagonal(model, task.x_train, task.y_train, n_samples=self.n_samples, fisher=self.fisher,
                            seed=self.seed + t, classes=ctx.active_classes())
        theta = {k: p.detach().clone() for k, p in _params(model).items()}
        if self.keep_fishers:
            self.task_fishers_.append(f)
        if self.fisher_ is None:
            self.fisher_, self.anchor_ = f, theta
        elif self.online:
            self.fisher_ = {k: self.gamma * self.fisher_[k] + f[k] for k in f}
            self.anchor_ = theta
        else:
            total = {k: self.fisher_[k] + f[k] for k in f}
            self.anchor_ = {
                k: torch.where(total[k] > 0, (self.fisher_[k] * self.anchor_[k] + f[k] * theta[k]) / total[k].clamp_min(1e-30), theta[k])
                for k in f
            }
            self.fisher_ = total


class SI(Strategy):
    """Synaptic intelligence (Zenke et al. 2017): importance from each weight's path integral of the loss."""

    name = "si"

    def __init__(self, strength: float, *, damping: float = 0.1):
        self.strength = strength
        self.damping = damping
        self.omega_: dict[str, torch.Tensor] | None = None
        self.anchor_: dict[str, torch.Tensor] | None = None
        self._start = self._prev = self._w = None

    def before_task(self, model, t, tasks, ctx):
        self._start = {k: p.detach().clone() for k, p in _params(model).items()}
        self._prev = {k: v.clone() for k, v in self._start.items()}
        self._w = {k: torch.zeros_like(v) for k, v in self._start.items()}

    def after_step(self, model):
        with torch.no_grad():
            for k, p in _params(model).items():
                if p.grad is not None:
                    self._w[k] -= p.grad * (p - self._prev[k])
                self._prev[k].copy_(p)

    def penalty(self, model):
        if self.omega_ is None:
            return None
        return self.strength * quadratic_penalty(model, self.omega_, self.anchor_)

    def after_task(self, model, t, tasks, ctx):
        with torch.no_grad():
            now = {k: p.detach().clone() for k, p in _params(model).items()}
            omega = {k: self._w[k] / ((now[k] - self._start[k]) ** 2 + self.damping) for k in now}
            self.omega_ = omega if self.omega_ is None else {k: self.omega_[k] + omega[k] for k in now}
            self.anchor_ = now


def distillation_loss(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of softened targets (Hinton et al.), times T^2 so gradients keep their scale."""
    target = torch.softmax(target_logits / temperature, dim=1)
    return -(target * torch.log_softmax(logits / temperature, dim=1)).sum(1).mean() * temperature**2


class LwF(Strategy):
    """Learning without forgetting (Li & Hoiem 2017): distil the previous model's outputs on the new inputs."""

    name = "lwf"

    def __init__(self, *, temperature: float = 2.0):
        self.temperature = temperature
        self.teacher_: nn.Module | None = None

    def batch_loss(self, model, x, loss, logits, ctx):
        if self.teacher_ is None:
            return loss
        with torch.no_grad():
            old = self.teacher_(x)
        t = ctx.task_index
        if ctx.scenario == "task":
            heads = [list(ctx.task_classes[k]) for k in range(t)]
        elif ctx.scenario == "class":
            heads = [[c for cl in ctx.task_classes[:t] for c in cl]]
        else:
            heads = [list(range(ctx.n_outputs))]
        kd = sum(distillation_loss(logits[:, h], old[:, h], self.temperature) for h in heads) / len(heads)
        share = 1.0 / (t + 1)
        return share * loss + (1 - share) * kd

    def after_task(self, model, t, tasks, ctx):
        self.teacher_ = copy.deepcopy(model).eval()
        for p in self.teacher_.parameters():
            p.requires_grad_(False)


class Replay(Strategy):
    """Experience replay: a buffer of `memory` stored examples, mixed into every batch.

    `selection="balanced"`: the same number of examples per class seen; `"reservoir"`:
    reservoir sampling over the stream. The current and replayed losses are weighted
    1/t and 1 - 1/t after t tasks, as in van de Ven & Tolias.
    """

    name = "replay"

    def __init__(self, memory: int = 500, *, selection: str = "balanced", seed: int = 0):
        if selection not in ("balanced", "reservoir"):
            raise ValueError(f"selection must be 'balanced' or 'reservoir', got {selection!r}")
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        self.memory = memory
        self.selection = selection
        self.seed = seed
        self.x_: torch.Tensor | None = None
        self.y_: torch.Tensor | None = None  # task-encoded labels
        self._seen = 0
        self._gen = torch.Generator().manual_seed(seed)

    def batch_loss(self, model, x, loss, logits, ctx):
        if self.x_ is None:
            return loss
        idx = torch.randint(0, len(self.x_), (len(x),), generator=self._gen)
        labels, owner = decode_labels(self.y_[idx], ctx.n_outputs)
        dev = logits.device
        replay_logits = model(self.x_[idx].to(dev))
        replayed = nn.functional.cross_entropy(ctx.masked_logits(replay_logits, owner.to(dev)), labels.to(dev))
        share = 1.0 / (ctx.task_index + 1)
        return share * loss + (1 - share) * replayed

    def after_task(self, model, t, tasks, ctx):
        x = tasks[t].x_train
        y = encode_labels(tasks[t].y_train, t, ctx.n_outputs)
        if self.selection == "reservoir":
            self._reservoir(x, y)
        else:
            self._balanced(x, y, ctx.n_outputs)

    def _balanced(self, x, y, n_outputs):
        xs = x if self.x_ is None else torch.cat([self.x_, x])
        ys = y if self.y_ is None else torch.cat([self.y_, y])
        keys = torch.unique(ys)
        per_class = max(1, self.memory // len(keys))
        keep = []
        for k in keys.tolist():
            rows = torch.nonzero(ys == k).flatten()
            keep.append(rows[torch.randperm(len(rows), generator=self._gen)[:per_class]])
        keep = torch.cat(keep)
        self.x_, self.y_ = xs[keep].clone(), ys[keep].clone()

    def _reservoir(self, x, y):
        order = torch.randperm(len(x), generator=self._gen)
        bx = [] if self.x_ is None else list(self.x_)
        by = [] if self.y_ is None else list(self.y_)
        draws = torch.rand(len(x), generator=self._gen).tolist()
        for i, row in enumerate(order.tolist()):
            self._seen += 1
            if len(bx) < self.memory:
                bx.append(x[row]); by.append(y[row])
            else:
                j = int(draws[i] * self._seen)
                if j < self.memory:
                    bx[j], by[j] = x[row], y[row]
        self.x_, self.y_ = torch.stack(bx), torch.stack(by)


class Joint(Strategy):
    """Train on all data seen so far at every task (the upper bound, "offline" in van de Ven & Tolias).

    `balanced`: each batch takes an equal share from every task so far, as the paper's
    reference code does; by default batches are drawn uniformly from all the data.
    """

    name = "joint"

    def __init__(self, balanced: bool = False):
        self.balanced = balanced

    def batch_sampler(self, t, tasks):
        if not self.balanced:
            return None
        sizes = [len(tasks[k].x_train) for k in range(t + 1)]
        starts = [sum(sizes[:k]) for k in range(t + 1)]

        def sample(step: int, batch_size: int, gen: torch.Generator) -> torch.Tensor:
            shares = [batch_size // (t + 1) + (k < batch_size % (t + 1)) for k in range(t + 1)]
            return torch.cat([start + torch.randint(0, size, (share,), generator=gen)
                              for start, size, share in zip(starts, sizes, shares)])

        return sample

    def train_data(self, t, tasks, ctx):
        xs = torch.cat([tasks[k].x_train for k in range(t + 1)])
        ys = torch.cat([encode_labels(tasks[k].y_train, k, ctx.n_outputs) for k in range(t + 1)])
        return xs, ys


STRATEGIES = {
    "none": Strategy,
    "l2": L2,
    "ewc": EWC,
    "online-ewc": lambda **kw: EWC(online=True, **kw),
    "si": SI,
    "lwf": LwF,
    "replay": Replay,
    "joint": Joint,
}


def make_strategy(name: str, **params) -> Strategy:
    """A fresh strategy by name (see `STRATEGIES`) with its parameters."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: expected one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](**params)
