"""Rehearsal schedules for a stream of permuted tasks: which old task comes back, and when.

At every step of the stream a fixed number of stored examples (the rehearsal budget, equal for
all schedules) is drawn from ONE old task, picked with probability that decays with the time
since that task was last seen: "uniform" (no decay), "exponential" exp(-dt / tau), or
"power-law" (1 + dt)^(-exponent), as in naturalistic environments where the chance of meeting
a task again falls as a power law of the time since it was last met. By default a task is
"seen" when it is trained on as the current task; with `refresh_on_rehearsal=True` every
rehearsal of it also counts (then, with rehearsal at every step, all clocks stay near zero and
the schedules become almost alike). Time is counted in tasks (one task = `steps_per_task` steps). EWC runs on the same stream as
a reference line. A schedule is a sampler plugged into the replay buffer (`ScheduleSampler`).
One unit is one (method, seed) stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from paperlib.experiments.continual.strategies import EWC, Replay, Strategy
from paperlib.experiments.continual.streams import (
    StreamConfig,
    permuted_tasks,
    run_stream,
)
from paperlib.experiments.datasets import cached_dataset
from paperlib.experiments.findings import against_reference, compare_paired
from paperlib.experiments.runner import Results, Unit, make_unit, run_experiment
from paperlib.store import load_reference

NAME = "continual.rehearsal"
CODE_VERSION = 2

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


class ScheduleSampler:
    """A replay-batch sampler (see `Replay`) that picks one old task by a rehearsal schedule.

    The clock counts time in tasks (one task = `steps_per_task` steps); a task is "seen" when it
    finishes training, and with `refresh_on_rehearsal` also when it is rehearsed. `revisits_`
    logs (time in tasks, task rehearsed).
    """

    def __init__(self, schedule: str, *, steps_per_task: int, tau: float = 1.0, exponent: float = 1.0,
                 refresh_on_rehearsal: bool = False):
        if schedule not in SCHEDULES[1:]:
            raise ValueError(f"unknown schedule {schedule!r}: expected one of {SCHEDULES[1:]}")
        if steps_per_task < 1:
            raise ValueError("steps_per_task must be >= 1")
        self.name = f"rehearsal: {schedule}"
        self.schedule = schedule
        self.steps_per_task = steps_per_task
        self.tau = tau
        self.exponent = exponent
        self.refresh_on_rehearsal = refresh_on_rehearsal
        self.last_seen_: list[float] = []
        self.revisits_: list[tuple[float, int]] = []
        self._steps = 0

    @property
    def clock(self) -> float:
        """Time in tasks: steps taken over steps per task (exact at task boundaries)."""
        return self._steps / self.steps_per_task

    def pick(self, n_tasks: int, gen: torch.Generator) -> int:
        """The stored task to rehearse at this step."""
        since = torch.tensor([self.clock - t for t in self.last_seen_[:n_tasks]])
        p = revisit_probabilities(since, self.schedule, tau=self.tau, exponent=self.exponent)
        j = int(torch.multinomial(p, 1, generator=gen))
        if self.refresh_on_rehearsal:
            self.last_seen_[j] = self.clock
        self.revisits_.append((self.clock, j))
        return j

    def after_step(self, ctx) -> None:
        self._steps += 1

    def after_task(self, ctx) -> None:
        self.last_seen_.append(self.clock)


def scheduled_rehearsal(schedule: str, *, rehearsal_size: int = 16, memory_per_task: int = 200, steps_per_task: int,
                        tau: float = 1.0, exponent: float = 1.0, refresh_on_rehearsal: bool = False,
                        seed: int = 0) -> Strategy:
    """Replay of `rehearsal_size` stored examples of one old task per step, the task drawn by `schedule`
    (`memory_per_task` examples kept per task; losses weighted by their numbers of rows).
    "none" is plain fine-tuning, named "no rehearsal"."""
    if schedule == "none":
        strategy = Strategy()
        strategy.name = "no rehearsal"
        return strategy
    if rehearsal_size < 1 or memory_per_task < 1:
        raise ValueError("rehearsal_size and memory_per_task must be >= 1")
    sampler = ScheduleSampler(schedule, steps_per_task=steps_per_task, tau=tau, exponent=exponent,
                              refresh_on_rehearsal=refresh_on_rehearsal)
    return Replay(memory_per_task, selection="per-task", sampler=sampler, replay_size=rehearsal_size,
                  weighting="size", seed=seed)


@dataclass(frozen=True)
class Config:
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

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: three short tasks, a 32-unit network and one seed."""
        base = dict(seeds=(0,), n_tasks=3, hidden=(32,), steps_per_task=30, eval_every=15, eval_size=100,
                    memory_per_task=50)
        return cls(**{**base, **changes})

    def stream(self) -> StreamConfig:
        return StreamConfig(hidden=tuple(self.hidden), steps_per_task=self.steps_per_task, batch_size=self.batch_size,
                            lr=self.lr, eval_every=self.eval_every, eval_size=self.eval_size)


# Settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# a three times slower exponential decay, and clocks reset by every rehearsal.
EXERCISES = ({"tau": 3.0}, {"refresh_on_rehearsal": True})


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """One unit per seed and method (every schedule, then EWC), all on the same stream of a seed."""
    common = {"dataset": config.dataset, "n_tasks": config.n_tasks, "hidden": list(config.hidden),
              "steps_per_task": config.steps_per_task, "batch_size": config.batch_size, "lr": config.lr,
              "eval_every": config.eval_every, "eval_size": config.eval_size}
    out = []
    for seed in config.seeds:
        for schedule in config.schedules:
            unit = {**common, "method": schedule}
            if schedule != "none":
                unit.update(rehearsal_size=config.rehearsal_size, memory_per_task=config.memory_per_task,
                            refresh_on_rehearsal=config.refresh_on_rehearsal)
                if schedule == "exponential":
                    unit["tau"] = config.tau
                if schedule == "power-law":
                    unit["exponent"] = config.exponent
            out.append(make_unit(NAME, unit, seed, device))
        out.append(make_unit(NAME, {**common, "method": "ewc", "ewc_strength": config.ewc_strength}, seed, device))
    return out


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One stream: final accuracies, curves (time in tasks) and, for a schedule, its rehearsal log."""
    data = cached_dataset(config["dataset"])
    tasks = permuted_tasks(data, config["n_tasks"], seed=seed)
    stream = StreamConfig(hidden=tuple(config["hidden"]), steps_per_task=config["steps_per_task"],
                          batch_size=config["batch_size"], lr=config["lr"], eval_every=config["eval_every"],
                          eval_size=config["eval_size"])
    if config["method"] == "ewc":
        strategy = EWC(config["ewc_strength"], seed=seed)
        label = f"EWC (strength {config['ewc_strength']:g})"
    else:
        strategy = scheduled_rehearsal(config["method"], rehearsal_size=config.get("rehearsal_size", 16),
                                       memory_per_task=config.get("memory_per_task", 200),
                                       steps_per_task=config["steps_per_task"], tau=config.get("tau", 1.0),
                                       exponent=config.get("exponent", 1.0),
                                       refresh_on_rehearsal=config.get("refresh_on_rehearsal", False), seed=seed)
        label = strategy.name
    res = run_stream(tasks, strategy, scenario="domain", config=stream, seed=seed)
    final = res.accuracy.assign(method=label)[["method", "seed", "after_task", "task", "accuracy"]]
    c = res.curves.assign(method=label, time=res.curves["step"] / config["steps_per_task"])
    log = getattr(getattr(strategy, "sampler", None), "revisits_", [])
    revisits = pd.DataFrame(log, columns=["time", "task"]).assign(method=label, seed=seed)
    return {"final": final, "curves": c[["method", "seed", "time", "task", "accuracy"]],
            "revisits": revisits[["method", "seed", "time", "task"]]}


class RehearsalResults(Results):
    """`final` (accuracy per task after each task), `curves` and `revisits` (the rehearsal logs)."""

    name = "rehearsal"
    table_names = ('final', 'curves', 'revisits')

    def findings(self) -> pd.DataFrame:
        return rehearsal_findings(self.tables["final"])


def run(config: Config, *, device: str = "auto", **options) -> RehearsalResults:
    """Every schedule and EWC on the same stream per seed, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, RehearsalResults, **options)


def final_average_accuracy(final: pd.DataFrame) -> pd.DataFrame:
    """Per method and seed: mean accuracy over all tasks after the last task (metric='average accuracy')."""
    last = final[final["after_task"] == final["after_task"].max()]
    out = last.groupby(["method", "seed"], sort=False)["accuracy"].mean().reset_index(name="value")
    return out.assign(metric="average accuracy")


def rehearsal_findings(final: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Measured sentences (key, finding): each schedule against the others and EWC, beside the paper's claim."""
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
