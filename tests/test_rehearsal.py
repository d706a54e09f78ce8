"""Revisit probabilities by hand, the scheduled rehearsal strategy's budget and log, a tiny stream."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from tiny import blobs

from paperlib.experiments.continual.rehearsal import (
    RehearsalConfig,
    ScheduledRehearsal,
    final_average_accuracy,
    rehearsal_findings,
    revisit_probabilities,
    revisit_weights,
    run_rehearsal,
)


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
        ScheduledRehearsal("weekly", steps_per_task=10)


def _tiny_data(n: int = 150, seed: int = 0):
    return blobs(n, noise=0.1, seed=seed)


def _cfg(**kw):
    base = dict(seeds=(0,), n_tasks=3, hidden=(8,), steps_per_task=20, batch_size=16, rehearsal_size=4,
                memory_per_task=10, eval_every=10, eval_size=30, ewc_strength=10.0)
    base.update(kw)
    return RehearsalConfig(**base)


def test_equal_budget_every_schedule_rehearses_once_per_step_after_the_first_task():
    final, curves, revisits = run_rehearsal(_cfg(), data=_tiny_data())
    counts = revisits.groupby("method").size()
    # tasks 2 and 3 rehearse at every step: 2 * 20 steps for each schedule, none for "no rehearsal"
    assert counts.to_dict() == {"rehearsal: uniform": 40, "rehearsal: exponential": 40, "rehearsal: power-law": 40}
    # only tasks already finished are rehearsed
    assert (revisits["task"] < revisits["time"]).all()
    assert set(final["method"]) == {"no rehearsal", "rehearsal: uniform", "rehearsal: exponential",
                                    "rehearsal: power-law", "EWC (strength 10)"}
    assert curves["time"].max() == pytest.approx(3.0)


def test_stream_is_deterministic():
    a = run_rehearsal(_cfg(schedules=("power-law",)), data=_tiny_data())
    b = run_rehearsal(_cfg(schedules=("power-law",)), data=_tiny_data())
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)


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


def test_figures():
    from paperlib.experiments.continual.rehearsal_figures import plot_final_accuracy, plot_revisit_weights, plot_revisits, plot_stream_accuracy

    w = plot_revisit_weights(tau=1.0, exponent=1.0).to_dict()
    assert [t["name"] for t in w["data"]] == ["uniform", "exponential", "power-law"]
    assert all(_arr(t["y"])[0] == pytest.approx(1.0) for t in w["data"])
    final, curves, revisits = run_rehearsal(_cfg(schedules=("none", "power-law")), data=_tiny_data())
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
