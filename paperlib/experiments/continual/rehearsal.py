"""Rehearsal schedules for a stream of permuted tasks: which old task comes back, and when.

At every step of the stream a fixed number of stored examples (the rehearsal budget, equal for
all schedules) is drawn from ONE old task, picked with probability that decays with the time
since that task was last seen: "uniform" (no decay), "exponential" exp(-dt / tau), or
"power-law" (1 + dt)^(-exponent), as in naturalistic environments where the chance of meeting
a task again falls as a power law of the time since it was last met. By default a task is
"seen" when it is trained on as the current task; with `refresh_on_rehearsal=True` every
rehearsal of it also counts (then, with rehearsal at every step, all clocks stay near zero and
the schedules become almost alike). Time is counted in tasks (one task = `steps_per_task` steps). EWC runs on the same stream as
a reference line. Training goes through `continual.run_stream`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from paperlib.experiments.continual.streams import StreamConfig, decode_labels, encode_labels, permuted_tasks, run_stream
from paperlib.experiments.datasets import Dataset, load_dataset
from paperlib.experiments.continual.strategies import EWC, Strategy

SCHEDULES = ("none", "uniform", "exponential", "power-law")


def revisit_weights(since: torch.Tensor, schedule: str, *, tau: float = 1.0, exponent: float = 1.0) -> torch.Tensor:
    """Unnormalised weight of revisiting each old task given the time since it was last seen (in tasks)."""
    since = torch.as_tensor(since, dtype=torch.float64)
    if (since < 0).any():
        raise ValueError("time since last seen must be >= 0")
    if schedule == "uniform":
        return torch.ones_like(since)
    if schedule == "exponential":
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        return torch.exp(-since / tau)
    if schedule == "power-law":
        if exponent <= 0:
            raise ValueError(f"exponent must be > 0, got {exponent}")
        return (1.0 + since) ** (-exponent)
    raise ValueError(f"unknown schedule {schedule!r}: expected one of {SCHEDULES[1:]}")


def revisit_probabilities(since: torch.Tensor, schedule: str, *, tau: float = 1.0, exponent: float = 1.0) -> torch.Tensor:
    """Probability of rehearsing each old task next: the weights normalised to sum to 1."""
    w = revisit_weights(since, schedule, tau=tau, exponent=exponent)
    return w / w.sum()


class ScheduledRehearsal(Strategy):
    """Rehearse `rehearsal_size` stored examples of one old task per step, the task drawn by `schedule`.

    After each task, `memory_per_task` of its examples are stored. The batch loss becomes the
    size-weighted mean of the new-task and rehearsal cross-entropies. `revisits_` logs
    (time in tasks, task rehearsed).
    """

    def __init__(self, schedule: str, *, rehearsal_size: int = 16, memory_per_task: int = 200, steps_per_task: int,
                 tau: float = 1.0, exponent: float = 1.0, refresh_on_rehearsal: bool = False, seed: int = 0):
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}: expected one of {SCHEDULES}")
        if rehearsal_size < 1 or memory_per_task < 1 or steps_per_task < 1:
            raise ValueError("rehearsal_size, memory_per_task and steps_per_task must be >= 1")
        self.name = f"rehearsal: {schedule}" if schedule != "none" else "no rehearsal"
        self.schedule = schedule
        self.rehearsal_size = rehearsal_size
        self.memory_per_task = memory_per_task
        self.steps_per_task = steps_per_task
        self.tau = tau
        self.exponent = exponent
        self.refresh_on_rehearsal = refresh_on_rehearsal
        self._gen = torch.Generator().manual_seed(seed)
        self.memory_: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.last_seen_: list[float] = []
        self.revisits_: list[tuple[float, int]] = []
        self._clock = 0.0

    def batch_loss(self, model, x, loss, logits, ctx):
        if self.schedule == "none" or not self.memory_:
            return loss
        since = torch.tensor([self._clock - t for t in self.last_seen_])
        p = revisit_probabilities(since, self.schedule, tau=self.tau, exponent=self.exponent)
        j = int(torch.multinomial(p, 1, generator=self._gen))
        mx, my = self.memory_[j]
        idx = torch.randint(0, len(mx), (self.rehearsal_size,), generator=self._gen)
        labels, owner = decode_labels(my[idx], ctx.n_outputs)
        dev = logits.device
        r_logits = model(mx[idx].to(dev))
        r_loss = nn.functional.cross_entropy(ctx.masked_logits(r_logits, owner.to(dev)), labels.to(dev))
        if self.refresh_on_rehearsal:
            self.last_seen_[j] = self._clock
        self.revisits_.append((self._clock, j))
        b, r = len(x), self.rehearsal_size
        return (b * loss + r * r_loss) / (b + r)

    def after_step(self, model):
        self._clock += 1.0 / self.steps_per_task

    def after_task(self, model, t, tasks, ctx):
        rows = torch.randperm(len(tasks[t].x_train), generator=self._gen)[: self.memory_per_task]
        self.memory_.append((tasks[t].x_train[rows].clone(), encode_labels(tasks[t].y_train[rows], t, ctx.n_outputs)))
        self.last_seen_.append(self._clock)


@dataclass(frozen=True)
class RehearsalConfig:
    """Permuted-task stream, equal rehearsal budget for every schedule, EWC as the reference."""

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    n_tasks: int = 5
    hidden: tuple[int, ...] = (100, 100)
    steps_per_task: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    schedules: tuple[str, ...] = SCHEDULES
    rehearsal_size: int = 16  # rehearsed examples per step (the equal budget)
    memory_per_task: int = 200
    tau: float = 1.0  # exponential decay time, in tasks
    exponent: float = 1.0  # power-law exponent
    ewc_strength: float = 100.0  # one-seed trial on mnist-5k: 10, 30, 100 all give 0.83-0.84; 1000, 10000 are worse
    refresh_on_rehearsal: bool = False  # does a rehearsal reset the task's clock (see the module docstring)
    eval_every: int = 50
    eval_size: int = 300  # test rows per task in the curves (final accuracies use all)


def make_config(dataset: str, seeds: Sequence[int], quick: bool) -> RehearsalConfig:
    """The notebook's config from its parameters; `quick` shrinks the stream for tests."""
    cfg = RehearsalConfig(dataset=dataset, seeds=tuple(int(s) for s in seeds))
    if quick:
        cfg = replace(cfg, seeds=cfg.seeds[:1], n_tasks=3, hidden=(32,), steps_per_task=30, eval_every=15,
                      eval_size=100, memory_per_task=50)
    return cfg


def run_rehearsal(config: RehearsalConfig, *, data: Dataset | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run every schedule and EWC on the same stream per seed.

    Returns (final, curves, revisits): final accuracy per task after each task (method, seed,
    after_task, task, accuracy), the accuracy curves (method, seed, time, task, accuracy; time in
    tasks) and the rehearsal log (method, seed, time, task).
    """
    data = data or load_dataset(config.dataset)
    stream = StreamConfig(hidden=config.hidden, steps_per_task=config.steps_per_task, batch_size=config.batch_size,
                          lr=config.lr, eval_every=config.eval_every, eval_size=config.eval_size)
    finals, curves, logs = [], [], []
    for seed in config.seeds:
        tasks = permuted_tasks(data, config.n_tasks, seed=seed)
        methods: list[tuple[str, Strategy]] = [
            (s, ScheduledRehearsal(s, rehearsal_size=config.rehearsal_size, memory_per_task=config.memory_per_task,
                                   steps_per_task=config.steps_per_task, tau=config.tau, exponent=config.exponent,
                                   refresh_on_rehearsal=config.refresh_on_rehearsal, seed=seed))
            for s in config.schedules
        ]
        methods.append(("EWC", EWC(config.ewc_strength, seed=seed)))
        for name, strategy in methods:
            res = run_stream(tasks, strategy, scenario="domain", config=stream, seed=seed)
            label = strategy.name if name != "EWC" else f"EWC (strength {config.ewc_strength:g})"
            finals.append(res.accuracy.assign(method=label)[["method", "seed", "after_task", "task", "accuracy"]])
            c = res.curves.assign(method=label, time=res.curves["step"] / config.steps_per_task)
            curves.append(c[["method", "seed", "time", "task", "accuracy"]])
            if isinstance(strategy, ScheduledRehearsal) and strategy.revisits_:
                logs.append(pd.DataFrame(strategy.revisits_, columns=["time", "task"]).assign(method=label, seed=seed))
    revisits = pd.concat(logs, ignore_index=True)[["method", "seed", "time", "task"]] if logs else pd.DataFrame(columns=["method", "seed", "time", "task"])
    return pd.concat(finals, ignore_index=True), pd.concat(curves, ignore_index=True), revisits


def final_average_accuracy(final: pd.DataFrame) -> pd.DataFrame:
    """Per method and seed: mean accuracy over all tasks after the last task (metric='average accuracy')."""
    last = final[final["after_task"] == final["after_task"].max()]
    out = last.groupby(["method", "seed"], sort=False)["accuracy"].mean().reset_index(name="value")
    return out.assign(metric="average accuracy")


def rehearsal_findings(final: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Measured sentences (key, finding): each schedule against the others and EWC, beside the paper's claim."""
    from paperlib.experiments.findings import against_reference, compare_paired, load_reference

    ref = (reference if reference is not None else load_reference("rehearsal")).set_index("key")
    avg = final_average_accuracy(final)
    methods = list(dict.fromkeys(avg["method"]))
    ewc = next((m for m in methods if m.startswith("EWC")), None)
    rows = []
    pairs = [("rehearsal: power-law", "rehearsal: uniform", "powerlaw_vs_uniform"),
             ("rehearsal: power-law", "rehearsal: exponential", "powerlaw_vs_exponential"),
             ("rehearsal: power-law", ewc, "powerlaw_vs_ewc"),
             ("rehearsal: uniform", "no rehearsal", None)]
    for a, b, key in pairs:
        if a not in methods or b not in methods:
            continue
        # every method of a seed sees the same tasks and initial weights, so the gap is judged per seed
        c = compare_paired(avg, "method", a, b, metric="final average accuracy over all tasks")
        if key is not None and key in ref.index:
            r = ref.loc[key]
            first = str(r["authors"]).split(",")[0].split()[-1]
            rows.append((key, against_reference(c, r["expected"], f"{first} et al. ({int(r['year'])}; {r['where']})")))
        else:
            rows.append((f"{a} vs {b}", c.sentence()))
    return pd.DataFrame(rows, columns=["key", "finding"])
