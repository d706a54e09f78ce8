"""Revisit probabilities by hand, the schedule sampler's picks, the rehearsal budget and log, a tiny stream."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from tiny import blobs

from paperlib.experiments.continual.rehearsal import (
    Config,
    ScheduleSampler,
    final_average_accuracy,
    rehearsal_findings,
    revisit_probabilities,
    revisit_weights,
    run,
    scheduled_rehearsal,
    units,
)
from paperlib.experiments.continual.strategies import Replay
from paperlib.experiments.continual.streams import StreamConfig, permuted_tasks, run_stream
from paperlib.store import ResultStore


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_revisit_probabilities_by_hand():
    since = torch.tensor([0.0, 1.0, 3.0])
    assert revisit_probabilities(since, "uniform").tolist() == pytest.approx([1 / 3] * 3)
    # power law, exponent 1: weights 1, 1/2, 1/4 -> / 1.75
    assert revisit_probabilities(since, "power-law", exponent=1.0).tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    # exponential, tau 1: 1, e^-1, e^-3
    w = [1.0, math.exp(-1), math.exp(-3)]
    assert revisit_probabilities(since, "exponential", tau=1.0).tolist() == pytest.approx([v / sum(w) for v in w])


def test_power_law_tail_is_heavier_than_exponential():
    far = torch.tensor([10.0])
    assert revisit_weights(far, "power-law", exponent=1.0).item() > 100 * revisit_weights(far, "exponential", tau=1.0).item()


def test_revisit_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        revisit_weights(torch.tensor([1.0]), "poisson")
    with pytest.raises(ValueError, match=">= 0"):
        revisit_weights(torch.tensor([-1.0]), "uniform")
    with pytest.raises(ValueError, match="tau"):
        revisit_weights(torch.tensor([1.0]), "exponential", tau=0.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        ScheduleSampler("weekly", steps_per_task=10)
    with pytest.raises(ValueError, match="unknown schedule"):
        scheduled_rehearsal("weekly", steps_per_task=10)
    with pytest.raises(ValueError, match="selection='per-task'"):
        Replay(10, sampler=ScheduleSampler("uniform", steps_per_task=10))


# --- the schedule sampler ------------------------------------------------------------------


def _clocked(schedule: str, *, steps_per_task: int = 10, n_tasks: int = 3, **kw) -> ScheduleSampler:
    """A sampler whose clock has run through `n_tasks` tasks of `steps_per_task` steps each."""
    sampler = ScheduleSampler(schedule, steps_per_task=steps_per_task, **kw)
    for _ in range(n_tasks):
        for _ in range(steps_per_task):
            sampler.after_step(None)
        sampler.after_task(None)
    return sampler


def test_sampler_clock_counts_tasks_and_picks_follow_the_schedule():
    sampler = _clocked("power-law", exponent=1.0)
    assert sampler.last_seen_ == pytest.approx([1.0, 2.0, 3.0]) and sampler.name == "rehearsal: power-law"
    gen = torch.Generator().manual_seed(0)
    picks = torch.tensor([sampler.pick(3, gen) for _ in range(4000)])
    # at time 3 the tasks were last seen 2, 1 and 0 tasks ago: weights 1/3, 1/2, 1 -> 2/11, 3/11, 6/11
    share = torch.bincount(picks, minlength=3) / len(picks)
    assert share.tolist() == pytest.approx([2 / 11, 3 / 11, 6 / 11], abs=0.03)
    assert sampler.revisits_[0][0] == pytest.approx(3.0) and len(sampler.revisits_) == 4000
    assert sampler.last_seen_ == pytest.approx([1.0, 2.0, 3.0])  # rehearsing does not reset the clocks by default


def test_sampler_clock_is_exact_at_task_boundaries():
    """Time in tasks is steps over steps per task, not a running sum of 1/steps_per_task."""
    sampler = ScheduleSampler("uniform", steps_per_task=7)
    for task in range(3):
        for _ in range(7):
            sampler.after_step(None)
        sampler.after_task(None)
    assert sampler.last_seen_ == [1.0, 2.0, 3.0] and sampler.clock == 3.0


def test_tiny_tau_sends_every_revisit_to_the_newest_task_and_uniform_spreads_them():
    gen = torch.Generator().manual_seed(0)
    newest = _clocked("exponential", tau=0.01)
    # exp(-1 / 0.01) = e^-100: an older task is as good as never picked
    assert {newest.pick(3, gen) for _ in range(500)} == {2}
    uniform = _clocked("uniform")
    counts = torch.bincount(torch.tensor([uniform.pick(3, gen) for _ in range(3000)]), minlength=3)
    assert (counts / 3000).tolist() == pytest.approx([1 / 3] * 3, abs=0.03)
    # only the tasks stored so far are candidates
    assert {uniform.pick(2, gen) for _ in range(200)} == {0, 1}


def test_refresh_on_rehearsal_resets_the_clock_of_the_rehearsed_task():
    sampler = _clocked("exponential", tau=0.01, refresh_on_rehearsal=True)
    sampler.last_seen_ = [2.5, 1.0, 0.0]  # task 0 seen most recently
    j = sampler.pick(3, torch.Generator().manual_seed(0))
    assert j == 0 and sampler.last_seen_ == pytest.approx([3.0, 1.0, 0.0])


def test_scheduled_rehearsal_in_a_stream_rehearses_by_the_schedule():
    # permuted blob tasks, 40 steps each: the revisit log says which stored task came back when
    tasks = permuted_tasks(_tiny_data(), 3, seed=0)
    cfg = StreamConfig(hidden=(8,), steps_per_task=40, batch_size=16)
    logs = {}
    for schedule, kw in (("exponential", {"tau": 0.01}), ("uniform", {})):
        strategy = scheduled_rehearsal(schedule, rehearsal_size=4, memory_per_task=10, steps_per_task=40, seed=0, **kw)
        assert isinstance(strategy, Replay) and strategy.selection == "per-task" and strategy.replay_size == 4
        run_stream(tasks, strategy, scenario="domain", config=cfg, seed=0)
        assert [len(x) for x, _ in strategy.tasks_] == [10, 10, 10]
        logs[schedule] = pd.DataFrame(strategy.sampler.revisits_, columns=["time", "task"])
    exp, uni = logs["exponential"], logs["uniform"]
    # one revisit per step from the second task on; during task k the newest stored task is k - 1
    assert len(exp) == len(uni) == 2 * 40
    training = lambda log: (log["time"] * 40).round().astype(int) // 40  # the clock adds 1/40 per step
    assert (exp["task"] == training(exp) - 1).all()
    # uniform: during the third task both stored tasks come back, neither much more than the other
    third = uni[training(uni) == 2]["task"].value_counts()
    assert set(third.index) == {0, 1} and third.min() >= 12
    assert scheduled_rehearsal("none", steps_per_task=40).name == "no rehearsal"


def _tiny_data(n: int = 150, seed: int = 0):
    return blobs(n, noise=0.1, seed=seed)


def _cfg(**kw):
    base = dict(dataset="digits", hidden=(8,), steps_per_task=20, batch_size=16, rehearsal_size=4,
                memory_per_task=10, eval_every=10, eval_size=30, ewc_strength=10.0)
    return Config.quick(**{**base, **kw})


def _run(config: Config, store_dir) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    result = run(config, store=ResultStore(store_dir), progress=False)
    return result["final"], result["curves"], result["revisits"]


def test_equal_budget_every_schedule_rehearses_once_per_step_after_the_first_task(tmp_path):
    final, curves, revisits = _run(_cfg(), tmp_path)
    counts = revisits.groupby("method").size()
    # tasks 2 and 3 rehearse at every step: 2 * 20 steps for each schedule, none for "no rehearsal"
    assert counts.to_dict() == {"rehearsal: uniform": 40, "rehearsal: exponential": 40, "rehearsal: power-law": 40}
    # only tasks already finished are rehearsed
    assert (revisits["task"] < revisits["time"]).all()
    assert set(final["method"]) == {"no rehearsal", "rehearsal: uniform", "rehearsal: exponential",
                                    "rehearsal: power-law", "EWC (strength 10)"}
    assert curves["time"].max() == pytest.approx(3.0)


def test_stream_is_deterministic(tmp_path):
    a = _run(_cfg(schedules=("power-law",)), tmp_path / "a")
    b = _run(_cfg(schedules=("power-law",)), tmp_path / "b")  # a fresh store: computed again
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)


def test_unit_keys_follow_the_config_and_the_seed():
    keys = lambda config: [u.key for u in units(config)]
    methods = lambda config: [u.config["method"] for u in units(config)]
    base = keys(Config.quick())
    assert base == keys(Config.quick()) and len(set(base)) == len(base) == 5  # four schedules and EWC
    assert not set(base) & set(keys(Config.quick(seeds=(1,))))
    assert set(base) < set(keys(Config.quick(seeds=(0, 1))))
    assert not set(base) & set(keys(Config.quick(steps_per_task=31)))
    # tau is an input of the exponential schedule only, the EWC strength of EWC only
    for change, method in ((dict(tau=0.5), "exponential"), (dict(ewc_strength=10.0), "ewc"),
                           (dict(exponent=2.0), "power-law")):
        changed = keys(Config.quick(**change))
        assert [m for m, a, b in zip(methods(Config.quick()), base, changed) if a != b] == [method], change


def test_final_average_and_findings_on_hand_made_rows():
    rows = []
    for seed, (p, u) in enumerate([(0.80, 0.70), (0.82, 0.71), (0.81, 0.69)]):
        for task in range(2):
            rows.append(dict(method="rehearsal: power-law", seed=seed, after_task=1, task=task, accuracy=p))
            rows.append(dict(method="rehearsal: uniform", seed=seed, after_task=1, task=task, accuracy=u))
    final = pd.DataFrame(rows)
    avg = final_average_accuracy(final)
    assert avg.loc[(avg["method"] == "rehearsal: uniform") & (avg["seed"] == 1), "value"].item() == pytest.approx(0.71)
    text = rehearsal_findings(final).set_index("key").loc["powerlaw_vs_uniform", "finding"]
    assert "higher" in text and "agree" in text and "do not agree" not in text


def test_figures(tmp_path):
    from paperlib.experiments.continual.rehearsal_figures import plot_final_accuracy, plot_revisit_weights, plot_revisits, plot_stream_accuracy

    w = plot_revisit_weights(tau=1.0, exponent=1.0).to_dict()
    assert [t["name"] for t in w["data"]] == ["uniform", "exponential", "power-law"]
    assert all(_arr(t["y"])[0] == pytest.approx(1.0) for t in w["data"])
    final, curves, revisits = _run(_cfg(schedules=("none", "power-law")), tmp_path)
    acc = plot_stream_accuracy(curves).to_dict()
    methods = 3  # none, power-law, EWC
    assert len(acc["data"]) == methods * (1 + 3)  # "tasks seen so far" + one view per task
    assert len(acc["layout"]["updatemenus"][0]["buttons"]) == 4
    assert sum(t["visible"] for t in acc["data"]) == methods
    assert len(plot_final_accuracy(final).to_dict()["data"]) == methods
    rev = plot_revisits(revisits).to_dict()
    assert {t["name"] for t in rev["data"]} <= {"task 1", "task 2"}


def _arr(v):
    """A figure dict's array: plotly may store numbers as base64 typed arrays ({'dtype', 'bdata'})."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)
