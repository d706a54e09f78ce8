"""Continual-learning strategies: small objects that own their state and plug into `run_stream`.

Hooks (all optional, Avalanche-plugin shape), each given the same `StreamContext` (the model,
the tasks, the current task and its scenario): `before_task`, `train_data` (what the task
trains on), `batch_sampler`, `batch_loss` (reweight or add to a batch's loss: LwF, replay),
`penalty` (a term added to the loss: L2, EWC, SI), `after_step`, `after_task` (consolidate:
Fisher, anchors, buffer). `Compose` runs several in one stream (EWC plus replay). Replay's
buffer and its batch sampler are plug-ins: the rehearsal schedules are a sampler. A strategy
is used for one run; make a fresh one per run.
"""
from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import nn

from paperlib.experiments.continual.streams import (
    StreamContext,
    decode_labels,
    encode_labels,
    fisher_diagonal,
)
from paperlib.experiments.losses import soft_target_cross_entropy


class Strategy:
    """Fine-tuning: train on each task in turn with nothing to protect old tasks (the lower bound)."""

    name = "none"

    def before_task(self, ctx: StreamContext) -> None:
        pass

    def train_data(self, ctx: StreamContext) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Inputs and task-encoded labels (see `encode_labels`) the task trains on; None: the task's own."""
        return None

    def batch_sampler(self, ctx: StreamContext):
        """How batches are drawn from the training data (a `train_loop` batch_sampler); None: uniformly."""
        return None

    def batch_loss(self, ctx: StreamContext, x: torch.Tensor, loss: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return loss

    def penalty(self, ctx: StreamContext) -> torch.Tensor | None:
        return None

    def after_step(self, ctx: StreamContext) -> None:
        pass

    def after_task(self, ctx: StreamContext) -> None:
        pass


class Compose(Strategy):
    """Several strategies in one stream: losses chained in order, penalties summed, every hook called.

    At most one member may choose the training data and at most one the batch sampler.
    """

    def __init__(self, *strategies: Strategy):
        if not strategies:
            raise ValueError("Compose needs at least one strategy")
        self.strategies = strategies
        self.name = "+".join(s.name for s in strategies)

    def _one(self, hook: str, ctx: StreamContext):
        found = [(s, out) for s in self.strategies if (out := getattr(s, hook)(ctx)) is not None]
        if len(found) > 1:
            raise ValueError(f"{' and '.join(s.name for s, _ in found)} both set {hook}; compose at most one of them")
        return found[0][1] if found else None

    def before_task(self, ctx):
        for s in self.strategies:
            s.before_task(ctx)

    def train_data(self, ctx):
        return self._one("train_data", ctx)

    def batch_sampler(self, ctx):
        return self._one("batch_sampler", ctx)

    def batch_loss(self, ctx, x, loss, logits):
        for s in self.strategies:
            loss = s.batch_loss(ctx, x, loss, logits)
        return loss

    def penalty(self, ctx):
        terms = [p for s in self.strategies if (p := s.penalty(ctx)) is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def after_step(self, ctx):
        for s in self.strategies:
            s.after_step(ctx)

    def after_task(self, ctx):
        for s in self.strategies:
            s.after_task(ctx)


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

    def penalty(self, ctx):
        if self.anchor_ is None:
            return None
        total = sum(((p - self.anchor_[k]) ** 2).sum() for k, p in _params(ctx.model).items())
        return 0.5 * self.strength * total

    def after_task(self, ctx):
        self.anchor_ = {k: p.detach().clone() for k, p in _params(ctx.model).items()}


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

    def penalty(self, ctx):
        if self.fisher_ is None:
            return None
        return 0.5 * self.strength * quadratic_penalty(ctx.model, self.fisher_, self.anchor_)

    def after_task(self, ctx):
        task = ctx.task
        f = fisher_diagonal(ctx.model, task.x_train, task.y_train, n_samples=self.n_samples, fisher=self.fisher,
                            seed=self.seed + ctx.task_index, classes=ctx.scenario.active_classes())
        theta = {k: p.detach().clone() for k, p in _params(ctx.model).items()}
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

    def before_task(self, ctx):
        self._start = {k: p.detach().clone() for k, p in _params(ctx.model).items()}
        self._prev = {k: v.clone() for k, v in self._start.items()}
        self._w = {k: torch.zeros_like(v) for k, v in self._start.items()}

    def after_step(self, ctx):
        with torch.no_grad():
            for k, p in _params(ctx.model).items():
                if p.grad is not None:
                    self._w[k] -= p.grad * (p - self._prev[k])
                self._prev[k].copy_(p)

    def penalty(self, ctx):
        if self.omega_ is None:
            return None
        return self.strength * quadratic_penalty(ctx.model, self.omega_, self.anchor_)

    def after_task(self, ctx):
        with torch.no_grad():
            now = {k: p.detach().clone() for k, p in _params(ctx.model).items()}
            omega = {k: self._w[k] / ((now[k] - self._start[k]) ** 2 + self.damping) for k in now}
            self.omega_ = omega if self.omega_ is None else {k: self.omega_[k] + omega[k] for k in now}
            self.anchor_ = now


class LwF(Strategy):
    """Learning without forgetting (Li & Hoiem 2017): distil the previous model's outputs on the new inputs."""

    name = "lwf"

    def __init__(self, *, temperature: float = 2.0):
        self.temperature = temperature
        self.teacher_: nn.Module | None = None

    def batch_loss(self, ctx, x, loss, logits):
        if self.teacher_ is None:
            return loss
        with torch.no_grad():
            old = self.teacher_(x)
        t, scen = ctx.task_index, ctx.scenario
        if scen.scenario == "task":
            heads = [list(scen.task_classes[k]) for k in range(t)]
        elif scen.scenario == "class":
            heads = [[c for cl in scen.task_classes[:t] for c in cl]]
        else:
            heads = [list(range(scen.n_outputs))]
        kd = sum(soft_target_cross_entropy(logits[:, h], old[:, h], self.temperature) for h in heads) / len(heads)
        share = 1.0 / (t + 1)
        return share * loss + (1 - share) * kd

    def after_task(self, ctx):
        self.teacher_ = copy.deepcopy(ctx.model).eval()
        for p in self.teacher_.parameters():
            p.requires_grad_(False)


class TaskSampler(Protocol):
    """A replay plug-in that picks which stored task a replay batch comes from (e.g. `rehearsal.ScheduleSampler`)."""

    name: str

    def pick(self, n_tasks: int, gen: torch.Generator) -> int: ...

    def after_step(self, ctx: StreamContext) -> None: ...

    def after_task(self, ctx: StreamContext) -> None: ...


class Replay(Strategy):
    """Experience replay: a buffer of stored examples, a batch of them replayed at every step.

    Two plug-ins decide what is stored and what comes back. `selection` is the buffer:
    "balanced" (the same number of examples per class seen, `memory` in all), "reservoir"
    (reservoir sampling over the stream) or "per-task" (`memory` examples of each finished
    task). `sampler` draws each replay batch: None draws uniformly from the whole buffer; a
    `ScheduleSampler` first picks one old task by a rehearsal schedule. `replay_size` rows are
    replayed per step (None: as many as the current batch). `weighting="task-share"` weights the
    current and replayed losses 1/t and 1 - 1/t after t tasks (van de Ven & Tolias);
    `"size"` weights them by their numbers of rows.
    """

    name = "replay"

    def __init__(self, memory: int = 500, *, selection: str = "balanced", sampler: TaskSampler | None = None,
                 replay_size: int | None = None, weighting: str = "task-share", seed: int = 0):
        if selection not in ("balanced", "reservoir", "per-task"):
            raise ValueError(f"selection must be 'balanced', 'reservoir' or 'per-task', got {selection!r}")
        if weighting not in ("task-share", "size"):
            raise ValueError(f"weighting must be 'task-share' or 'size', got {weighting!r}")
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        if replay_size is not None and replay_size < 1:
            raise ValueError(f"replay_size must be >= 1, got {replay_size}")
        if sampler is not None and selection != "per-task":
            raise ValueError("a task sampler needs selection='per-task' (it picks among the stored tasks)")
        self.memory = memory
        self.selection = selection
        self.sampler = sampler
        self.replay_size = replay_size
        self.weighting = weighting
        self.seed = seed
        if sampler is not None:
            self.name = sampler.name
        self.x_: torch.Tensor | None = None
        self.y_: torch.Tensor | None = None  # task-encoded labels
        self.tasks_: list[tuple[torch.Tensor, torch.Tensor]] = []  # per-task memories (selection="per-task")
        self._seen = 0
        self._gen = torch.Generator().manual_seed(seed)

    def _draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.selection == "per-task":
            if not self.tasks_:
                return None
            j = self.sampler.pick(len(self.tasks_), self._gen) if self.sampler is not None else \
                int(torch.randint(0, len(self.tasks_), (1,), generator=self._gen))
            mx, my = self.tasks_[j]
            idx = torch.randint(0, len(mx), (n,), generator=self._gen)
            return mx[idx], my[idx]
        if self.x_ is None:
            return None
        idx = torch.randint(0, len(self.x_), (n,), generator=self._gen)
        return self.x_[idx], self.y_[idx]

    def batch_loss(self, ctx, x, loss, logits):
        r = self.replay_size or len(x)
        drawn = self._draw(r)
        if drawn is None:
            return loss
        rx, ry = drawn
        labels, owner = decode_labels(ry, ctx.scenario.n_outputs)
        dev = logits.device
        replay_logits = ctx.model(rx.to(dev))
        replayed = nn.functional.cross_entropy(ctx.scenario.masked_logits(replay_logits, owner.to(dev)), labels.to(dev))
        if self.weighting == "size":
            b = len(x)
            return (b * loss + r * replayed) / (b + r)
        share = 1.0 / (ctx.task_index + 1)
        return share * loss + (1 - share) * replayed

    def after_step(self, ctx):
        if self.sampler is not None:
            self.sampler.after_step(ctx)

    def after_task(self, ctx):
        t = ctx.task_index
        x = ctx.task.x_train
        y = encode_labels(ctx.task.y_train, t, ctx.scenario.n_outputs)
        if self.selection == "per-task":
            rows = torch.randperm(len(x), generator=self._gen)[: self.memory]
            self.tasks_.append((x[rows].clone(), y[rows]))
        elif self.selection == "reservoir":
            self._reservoir(x, y)
        else:
            self._balanced(x, y)
        if self.sampler is not None:
            self.sampler.after_task(ctx)

    def _balanced(self, x, y):
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

    def batch_sampler(self, ctx):
        if not self.balanced:
            return None
        t, tasks = ctx.task_index, ctx.tasks
        sizes = [len(tasks[k].x_train) for k in range(t + 1)]
        starts = [sum(sizes[:k]) for k in range(t + 1)]

        def sample(step: int, batch_size: int, gen: torch.Generator) -> torch.Tensor:
            shares = [batch_size // (t + 1) + (k < batch_size % (t + 1)) for k in range(t + 1)]
            return torch.cat([start + torch.randint(0, size, (share,), generator=gen)
                              for start, size, share in zip(starts, sizes, shares)])

        return sample

    def train_data(self, ctx):
        t, tasks, n_out = ctx.task_index, ctx.tasks, ctx.scenario.n_outputs
        xs = torch.cat([tasks[k].x_train for k in range(t + 1)])
        ys = torch.cat([encode_labels(tasks[k].y_train, k, n_out) for k in range(t + 1)])
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
    """A fresh strategy by name (see `STRATEGIES`) with its parameters; "a+b" composes several
    (each takes the parameters it names, e.g. make_strategy("ewc+replay", ewc={...}, replay={...}))."""
    if "+" in name:
        parts = name.split("+")
        unknown = set(params) - set(parts)
        if unknown:
            raise ValueError(f"parameters for {sorted(unknown)} given, but {name!r} composes {parts}")
        return Compose(*(make_strategy(p, **params.get(p, {})) for p in parts))
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: expected one of {sorted(STRATEGIES)} or several joined by '+'")
    return STRATEGIES[name](**params)
