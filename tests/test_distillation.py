"""Distillation losses, PS-KD targets, PGR and calibration against hand computations; tiny runs for determinism."""
from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch
from tiny import blobs

from paperlib.experiments.calibration import expected_calibration_error, reliability_table
from paperlib.experiments.distillation.experiment import (
    Config,
    KDConfig,
    PSKDConfig,
    W2SConfig,
    epoch_sampler,
    kd_rows,
    performance_gap_recovered,
    pgr_table,
    pskd_alpha,
    pskd_rows,
    pskd_targets,
    reliability_by_method,
    run,
    units,
    w2s_rows,
)
from paperlib.experiments.findings import against_reference, compare, compare_paired, summarize
from paperlib.experiments.losses import confidence_loss, distillation_loss, soft_cross_entropy
from paperlib.store import ResultStore


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_data(n: int = 120, seed: int = 0):
    return blobs(n, noise=0.12, seed=seed)


# ---------------------------------------------------------------- losses by hand


def test_soft_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = (1/4, 3/4)
    q = torch.tensor([[0.5, 0.5]])
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert soft_cross_entropy(logits, q).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_by_hand():
    s = torch.tensor([[0.0, math.log(3.0)]])  # at T=2: softmax(s/2) = (1/(1+sqrt3), sqrt3/(1+sqrt3))
    t = torch.tensor([[0.0, 0.0]])  # teacher: (1/2, 1/2) at any T
    y = torch.tensor([1])
    r3 = math.sqrt(3.0)
    ps = [1 / (1 + r3), r3 / (1 + r3)]
    kl = sum(0.5 * math.log(0.5 / p) for p in ps)
    ce = -math.log(0.75)
    expected = 0.3 * 4.0 * kl + 0.7 * ce
    got = distillation_loss(s, t, y, temperature=2.0, alpha=0.3).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_limits_and_errors():
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    assert distillation_loss(s, t, y, temperature=3.0, alpha=0.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(s, y).item())
    assert distillation_loss(s, s, y, temperature=3.0, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, y, temperature=0.0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, y, temperature=1.0, alpha=1.5)


def test_pskd_alpha_schedule_is_linear_to_alpha_final():
    assert [pskd_alpha(t, 4, 0.8) for t in range(5)] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    with pytest.raises(ValueError):
        pskd_alpha(5, 4)


def test_pskd_targets_by_hand():
    past = torch.tensor([[0.6, 0.3, 0.1]])
    got = pskd_targets(torch.tensor([2]), past, 0.25)
    assert got.tolist()[0] == pytest.approx([0.15, 0.075, 0.775])
    assert got.sum().item() == pytest.approx(1.0)


def test_confidence_loss_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0]])  # p = (3/4, 1/4); hardened target class 0
    weak = torch.tensor([[0.0, 1.0]])
    expected = 0.6 * -math.log(0.25) + 0.4 * -math.log(0.75)
    assert confidence_loss(logits, weak, 0.4).item() == pytest.approx(expected, rel=1e-6)


def test_pgr():
    assert performance_gap_recovered(0.6, 0.7, 0.9) == pytest.approx(1 / 3)
    assert performance_gap_recovered(0.6, 0.6, 0.9) == 0.0
    assert performance_gap_recovered(0.6, 0.9, 0.9) == 1.0
    with pytest.raises(ValueError, match="undefined"):
        performance_gap_recovered(0.8, 0.9, 0.8)


def test_pgr_table_from_rows():
    rows = pd.DataFrame({
        "seed": [0] * 4, "metric": ["accuracy"] * 4,
        "model": ["weak", "student", "student + confidence loss", "ceiling"],
        "value": [0.5, 0.6, 0.7, 0.9],
    })
    got = pgr_table(rows).set_index("model")["value"]
    assert got["student"] == pytest.approx(0.25)
    assert got["student + confidence loss"] == pytest.approx(0.5)


# ---------------------------------------------------------------- calibration by hand


def test_reliability_and_ece_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = torch.tensor([0, 1, 1, 1])
    table = reliability_table(probs, y, n_bins=2)
    # bin (0, .5]: empty; bin (.5, 1]: all four, confidence .75, accuracy .75 -> ECE 0
    assert table["count"].tolist() == [0, 4]
    assert expected_calibration_error(probs, y, n_bins=2) == pytest.approx(0.0)
    # five bins: (.6,.8] holds conf .8,.7,.6? .6 falls in (.4,.6]
    ece = expected_calibration_error(probs, y, n_bins=5)
    # bins: .9 -> (.8,1] acc 1; .8,.7 -> (.6,.8] acc .5 conf .75; .6 -> (.4,.6] acc 1
    expected = 0.25 * abs(1 - 0.9) + 0.5 * abs(0.5 - 0.75) + 0.25 * abs(1 - 0.6)
    assert ece == pytest.approx(expected)


def test_reliability_rejects_bad_shapes():
    with pytest.raises(ValueError, match="probs"):
        reliability_table(torch.rand(3, 2), torch.tensor([0, 1]))


def test_reliability_by_method_pools_the_seeds_by_hand():
    # seed 0: .9 (right), .6 (wrong); seed 1: .7 (right). Two bins: (0, .5] and (.5, 1].
    seed0 = reliability_table(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1]), n_bins=2)
    seed1 = reliability_table(torch.tensor([[0.3, 0.7]]), torch.tensor([1]), n_bins=2)
    bins = pd.concat([seed0.assign(method="plain", seed=0), seed1.assign(method="plain", seed=1),
                      seed1.assign(method="PS-KD", seed=1)], ignore_index=True)
    pooled = reliability_by_method(bins)
    assert list(pooled) == ["plain", "PS-KD"]
    top = pooled["plain"].iloc[1]
    # three predictions in (.5, 1]: confidence (.9 + .6 + .7) / 3, two of three right
    assert top["count"] == 3 and top["confidence"] == pytest.approx(2.2 / 3) and top["accuracy"] == pytest.approx(2 / 3)
    assert pooled["plain"].iloc[0]["count"] == 0 and pd.isna(pooled["plain"].iloc[0]["accuracy"])
    pd.testing.assert_frame_equal(pooled["PS-KD"], seed1[pooled["PS-KD"].columns], check_dtype=False)


# ---------------------------------------------------------------- sampler and findings


def test_epoch_sampler_visits_each_row_once_per_epoch():
    sample, per_epoch = epoch_sampler(10, 3)
    assert per_epoch == 3
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([sample(s, 3, gen) for s in range(1, 4)])
    assert len(set(seen.tolist())) == 9


def test_compare_refuses_gaps_within_spread():
    df = pd.DataFrame({"m": ["a"] * 3 + ["b"] * 3, "value": [0.90, 0.91, 0.92, 0.905, 0.915, 0.925]})
    c = compare(df, "m", "a", "b")
    assert not c.decided and "not distinguishable" in c.sentence()
    df2 = pd.DataFrame({"m": ["a"] * 3 + ["b"] * 3, "value": [0.90, 0.91, 0.92, 0.80, 0.81, 0.82]})
    c2 = compare(df2, "m", "a", "b")
    assert c2.decided and "higher" in c2.sentence()
    one = compare(df2.iloc[[0, 3]], "m", "a", "b")
    assert not one.decided and "single seed" in one.sentence()
    with pytest.raises(ValueError, match="no rows"):
        compare(df, "m", "a", "zzz")


def test_compare_paired_uses_the_spread_of_per_seed_gaps():
    # a is always 0.01 above b, though both vary a lot across seeds
    df = pd.DataFrame({"m": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2],
                       "value": [0.81, 0.80, 0.91, 0.90, 0.71, 0.70]})
    assert compare(df, "m", "a", "b").verdict == "within seed spread"
    paired = compare_paired(df, "m", "a", "b")
    assert paired.spread == pytest.approx(0.0, abs=1e-9) and paired.verdict == "higher"
    assert "agree" in against_reference(paired, "higher", "X")
    assert "other way" in against_reference(paired, "lower", "X")
    assert "do not show" in against_reference(compare(df, "m", "a", "b"), "higher", "X")
    assert "agree" in against_reference(compare(df, "m", "a", "b"), "higher|within seed spread", "X")


def test_summarize_mean_std_n():
    df = pd.DataFrame({"g": ["x", "x", "y"], "value": [1.0, 3.0, 5.0]})
    s = summarize(df, ["g"]).set_index("g")
    assert s.loc["x", "mean"] == 2.0 and s.loc["x", "std"] == pytest.approx(math.sqrt(2)) and s.loc["y", "std"] == 0.0


# ---------------------------------------------------------------- tiny end-to-end runs


def test_kd_rows_are_deterministic_and_tidy():
    data = _tiny_data()
    cfg = KDConfig(teacher_hidden=(16,), student_hidden=(4,), teacher_steps=30, student_steps=20,
                   batch_size=32, temperatures=(2.0,), alphas=(0.5,))
    a, b = kd_rows(cfg, data, 0), kd_rows(cfg, data, 0)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["seed", "model", "temperature", "metric", "alpha", "value"]
    assert a["model"].tolist() == ["teacher", "labels only", "distilled"]
    assert a["value"].between(0, 1).all()


def test_pskd_rows_are_deterministic_and_differ_from_plain():
    data = _tiny_data()
    cfg = PSKDConfig(hidden=(8,), epochs=4, batch_size=32, n_bins=5)
    a, bins_a = pskd_rows(cfg, data, 1)
    b, bins_b = pskd_rows(cfg, data, 1)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(bins_a, bins_b)
    assert set(a["metric"]) == {"accuracy", "ece", "nll"} and set(a["seed"]) == {1}
    assert bins_a.groupby("method")["count"].sum().to_dict() == {"PS-KD": len(data.y_test), "plain": len(data.y_test)}
    # the refined targets change training, so the two methods' test probabilities differ
    nll = a[a["metric"] == "nll"].set_index("method")["value"]
    assert nll["plain"] != nll["PS-KD"]
    conf = bins_a.pivot_table(index="bin", columns="method", values="confidence")
    assert not conf["plain"].equals(conf["PS-KD"])


def test_weak_to_strong_rows_are_deterministic():
    data = _tiny_data(n=160)
    cfg = W2SConfig(weak_hidden=(2,), weak_train_size=20, weak_steps=10, strong_hidden=(16,),
                    strong_steps=20, batch_size=32)
    a, b = w2s_rows(cfg, data, 0), w2s_rows(cfg, data, 0)
    pd.testing.assert_frame_equal(a, b)
    assert {"weak", "student", "student + confidence loss", "ceiling"} <= set(a["model"])


def _quick(**changes) -> Config:
    """Config.quick shrunk further: every part runs in about a second on the digits."""
    return Config.quick(dataset="digits",
                        kd=KDConfig(teacher_hidden=(16,), student_hidden=(8,), teacher_steps=20, student_steps=10,
                                    temperatures=(4.0,), alphas=(0.9,), train_size=300),
                        pskd=PSKDConfig(hidden=(16,), epochs=2, batch_size=100, train_size=300),
                        w2s=W2SConfig(weak_steps=10, strong_hidden=(16,), strong_steps=10), **changes)


def test_run_assembles_every_part_and_loads_it_back(tmp_path):
    store = ResultStore(tmp_path)
    result = run(_quick(), store=store, progress=False)
    assert result.report.computed == 3  # kd, pskd and weak-to-strong for one seed
    assert set(result.tables) == {"kd", "pskd", "reliability", "weak_to_strong"}
    assert set(result["reliability"]["method"]) == {"plain", "PS-KD"}
    keys = result.findings()["key"].tolist()
    assert keys == ["kd_vs_labels", "pskd_accuracy", "pskd_ece", "w2s_student_vs_weak", "w2s_confidence", "w2s_pgr"]
    again = run(_quick(), store=store, progress=False)
    assert again.report.computed == 0
    for name in result.tables:
        pd.testing.assert_frame_equal(again[name], result[name], check_dtype=False)


def test_unit_keys_follow_the_config_and_the_seed():
    parts = lambda config: [u.config["part"] for u in units(config)]
    keys = lambda config: [u.key for u in units(config)]
    base = keys(Config.quick())
    assert base == keys(Config.quick()) and parts(Config.quick()) == ["kd", "pskd", "w2s"]
    assert not set(base) & set(keys(Config.quick(seeds=(1,))))
    assert set(base) < set(keys(Config.quick(seeds=(0, 1))))
    assert not set(base) & set(keys(Config.quick(dataset="digits")))
    # each part's settings change that part's unit only
    quick = Config.quick()
    for part, changed in (("kd", replace(quick.kd, alphas=(0.5,))), ("pskd", replace(quick.pskd, epochs=4)),
                          ("w2s", replace(quick.w2s, aux_alpha=0.5))):
        other = keys(replace(quick, **{part: changed}))
        assert [p for p, a, b in zip(parts(quick), base, other) if a != b] == [part]


# ---------------------------------------------------------------- figures


def test_figures_show_the_measured_numbers():
    from paperlib.experiments.calibration import reliability_table
    from paperlib.experiments.distillation.figures import plot_kd_grid, plot_metric_bars, plot_reliability, plot_weak_to_strong

    kd = pd.DataFrame({
        "seed": [0, 0, 0, 1, 1, 1], "model": ["teacher", "labels only", "distilled"] * 2,
        "temperature": [float("nan"), float("nan"), 2.0] * 2, "metric": "accuracy",
        "alpha": [float("nan"), 0.0, 0.5] * 2, "value": [0.95, 0.90, 0.91, 0.97, 0.92, 0.93],
    })
    fig = plot_kd_grid(kd).to_dict()
    assert len(fig["data"]) == 1 and _arr(fig["data"][0]["y"]) == pytest.approx([0.92])
    assert any("labels only: 0.9100" in a["text"] for a in fig["layout"]["annotations"])

    rows = pd.DataFrame({"seed": [0, 0], "method": ["plain", "PS-KD"], "metric": ["ece", "ece"], "value": [0.05, 0.03]})
    bars = plot_metric_bars(rows, metrics=("ece",)).to_dict()
    assert _arr(bars["data"][0]["y"]) == pytest.approx([0.05, 0.03])

    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
    rel = plot_reliability({"plain": reliability_table(probs, torch.tensor([0, 1]), n_bins=5)}).to_dict()
    assert len(rel["data"]) == 2 and _arr(rel["data"][1]["y"]) == pytest.approx([0.0, 1.0])

    w2s = pd.DataFrame({"seed": 0, "metric": "accuracy", "model": ["weak", "student", "ceiling"], "value": [0.6, 0.7, 0.9]})
    bar = plot_weak_to_strong(w2s, pgr_table(w2s)).to_dict()["data"][0]
    assert _arr(bar["x"]) == ["weak", "student", "ceiling"] and bar["text"][1].startswith("PGR 0.33")


def _arr(v):
    """A figure dict's array: plotly may store numbers as base64 typed arrays ({'dtype', 'bdata'})."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)
