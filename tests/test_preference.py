"""Preference optimisation: the losses, the gold reward, Bradley-Terry labels, best-of-n's
estimator and Gao et al.'s fit checked by hand; GAE and the clipped surrogate on tiny cases; the
one-step case against its closed form; a tiny end-to-end run through the store."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from paperlib.experiments.preference import analysis, bandit
from paperlib.experiments.preference.experiment import Config, compute_unit, run, units
from paperlib.experiments.preference.methods import (
    GoldReward,
    best_of_n_curve,
    best_of_n_expectation,
    best_of_n_kl,
    bradley_terry_labels,
    bradley_terry_loss,
    clipped_surrogate,
    dpo_loss,
    fit_gao_bon,
    gae,
    ipo_loss,
    last_index,
    rrhf_loss,
    whiten,
)
from paperlib.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_gold_reward_by_hand():
    gold = GoldReward(good="ae", target_length=4, length_penalty=1.0)
    assert gold(["", "abc", "aeae", "aeaeb", "bbbbbb"]).tolist() == [0.0, 1.0, 4.0, 3.0, -2.0]
    assert gold.best(10) == 4.0 and gold.best(3) == 3.0


def test_pairwise_losses_by_hand():
    hc, hr = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    beta = 0.5
    expected = np.mean([-math.log(1 / (1 + math.exp(-0.5))), -math.log(1 / (1 + math.exp(1.0)))])
    assert dpo_loss(hc, hr, beta).item() == pytest.approx(expected)
    tau = 0.25  # target margin 1/(2 tau) = 2
    assert ipo_loss(hc, hr, tau).item() == pytest.approx(((1 - 2) ** 2 + (-2 - 2) ** 2) / 2)
    assert rrhf_loss(torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])).item() == pytest.approx((0 + 1.0) / 2)
    assert bradley_terry_loss(torch.tensor([2.0]), torch.tensor([2.0])).item() == pytest.approx(math.log(2))


def test_bradley_terry_labels_follow_the_sigmoid_and_the_noise():
    n = 20000
    r1, r2 = np.full(n, 1.0), np.zeros(n)
    first = bradley_terry_labels(r1, r2, seed=0)
    assert first.mean() == pytest.approx(1 / (1 + math.exp(-1)), abs=0.01)
    noisy = bradley_terry_labels(r1, r2, noise=0.5, seed=0)
    assert noisy.mean() == pytest.approx(0.5, abs=0.015)
    assert (bradley_terry_labels(r1, r2, seed=3) == bradley_terry_labels(r1, r2, seed=3)).all()
    with pytest.raises(ValueError):
        bradley_terry_labels(r1, r2, noise=0.7, seed=0)


def test_best_of_n_estimator_by_brute_force():
    from itertools import combinations

    rng = np.random.default_rng(0)
    proxy, gold = rng.normal(size=7), rng.normal(size=7)
    for n in (1, 2, 3, 7):
        brute = np.mean([gold[list(c)][np.argmax(proxy[list(c)])] for c in combinations(range(7), n)])
        assert best_of_n_expectation(proxy, gold, n) == pytest.approx(brute)
    assert best_of_n_kl(1) == 0.0 and best_of_n_kl(4) == pytest.approx(math.log(4) - 0.75)
    curve = best_of_n_curve(proxy, gold, [1, 2, 4])
    assert curve["proxy_reward"].is_monotonic_increasing and list(curve.columns) == ["n", "kl_to_ref", "gold_reward", "proxy_reward"]
    with pytest.raises(ValueError):
        best_of_n_expectation(proxy, gold, 8)


def test_gao_fit_recovers_alpha_and_beta():
    kl = best_of_n_kl(np.array([1, 2, 4, 8, 16, 64, 256, 1024]))
    d = np.sqrt(kl)
    fit = fit_gao_bon(kl, d * (1.5 - 0.4 * d))
    assert fit["alpha"] == pytest.approx(1.5) and fit["beta"] == pytest.approx(0.4) and fit["r2"] == pytest.approx(1.0)
    assert fit["peak_kl"] == pytest.approx((1.5 / 0.8) ** 2)
    assert fit_gao_bon(kl, 2 * d)["peak_kl"] == math.inf


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.4, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the fourth position is padding
    adv, ret = gae(rewards, values, mask, lam=1.0)
    assert adv.tolist()[0] == pytest.approx([0.5, 0.8, 0.6, 0.0])  # return-to-go (1) minus the value
    assert ret.tolist()[0] == pytest.approx([1.0, 1.0, 1.0, 0.0])
    adv0, _ = gae(rewards, values, mask, lam=0.0)  # one-step TD errors
    assert adv0.tolist()[0] == pytest.approx([0.2 - 0.5, 0.4 - 0.2, 1.0 - 0.4, 0.0])
    w = whiten(adv, mask)
    assert float((w * mask).sum()) == pytest.approx(0.0, abs=1e-6)


def test_clipped_surrogate_by_hand():
    mask = torch.ones(1, 2)
    old = torch.zeros(1, 2)
    adv = torch.tensor([[1.0, -1.0]])
    new = torch.log(torch.tensor([[1.5, 0.5]]))  # ratios 1.5 and 0.5
    # positive advantage: min(1.5, 1.2) = 1.2; negative: min(-0.5, -0.8) = -0.8
    assert clipped_surrogate(new, old, adv, mask, 0.2).item() == pytest.approx(-(1.2 - 0.8) / 2)


def test_last_index():
    m = torch.tensor([[False, True, True, False], [False, False, False, False], [True, True, True, True]])
    assert last_index(m).tolist() == [2, 0, 3]


def test_bandit_optimum_and_identity():
    pi_ref = np.array([0.5, 0.3, 0.2])
    r = np.array([1.0, 0.0, -1.0])
    beta = 0.5
    opt = bandit.kl_optimum(pi_ref, r, beta)
    w = pi_ref * np.exp(r / beta)
    assert opt == pytest.approx(w / w.sum())
    best = bandit.regularised_objective(opt, pi_ref, r, beta)
    for p in (pi_ref, np.array([0.9, 0.05, 0.05]), np.array([1 / 3] * 3)):
        # J(pi*) - J(pi) = beta KL(pi || pi*): the optimum is unique
        assert best - bandit.regularised_objective(p, pi_ref, r, beta) == pytest.approx(beta * bandit.kl_divergence(p, opt))


def test_dpo_reaches_the_optimum_with_many_pairs_and_not_with_noisy_labels():
    pi_ref = np.array([0.4, 0.3, 0.2, 0.1])
    r = np.array([0.0, 1.0, -0.5, 0.5])
    opt = bandit.kl_optimum(pi_ref, r, 1.0)
    ch, rj = bandit.sample_pairs(pi_ref, r, 30000, noise=0.0, seed=0)
    assert bandit.kl_divergence(bandit.dpo_bandit(pi_ref, ch, rj, 1.0), opt) < 1e-3
    ch, rj = bandit.sample_pairs(pi_ref, r, 30000, noise=0.3, seed=0)
    noisy = bandit.dpo_bandit(pi_ref, ch, rj, 1.0)
    assert bandit.kl_divergence(noisy, opt) > 0.01  # flipped labels flatten the implied reward
    assert bandit.kl_divergence(noisy, pi_ref) < bandit.kl_divergence(opt, pi_ref)


def _frontier(gold_dpo, gold_ppo, bon, seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for s in seeds:
        rows.append(dict(method="reference", seed=s, knob="none", setting=0.0, rm_pairs=100, metric="gold_reward", value=1.0))
        for method, golds in (("DPO", gold_dpo), ("PPO", gold_ppo)):
            for kl, g in zip((1.0, 2.0), golds):
                rows += [dict(method=method, seed=s, knob="beta", setting=1 / kl, rm_pairs=100, metric="kl_to_ref", value=kl),
                         dict(method=method, seed=s, knob="beta", setting=1 / kl, rm_pairs=100, metric="gold_reward", value=g + 0.01 * s)]
        for n, g in bon:
            rows += [dict(method="best-of-n", seed=s, knob="n", setting=n, rm_pairs=100, metric="kl_to_ref", value=float(best_of_n_kl(n))),
                     dict(method="best-of-n", seed=s, knob="n", setting=n, rm_pairs=100, metric="gold_reward", value=g + 0.01 * s),
                     dict(method="best-of-n", seed=s, knob="n", setting=n, rm_pairs=100, metric="proxy_reward", value=float(n))]
    return pd.DataFrame(rows)


def test_claims_on_hand_made_frontiers():
    df = _frontier((2.0, 3.0), (1.5, 2.0), [(1, 1.0), (4, 2.0), (16, 1.5)])
    claims = analysis.preference_claims(df).set_index("key")["verdict"]
    assert claims.to_dict() == {"raise": "holds", "frontier": "holds", "overoptimisation": "holds"}
    df = _frontier((1.5, 2.0), (2.0, 3.0), [(1, 1.0), (4, 2.0), (16, 3.0)])
    claims = analysis.preference_claims(df).set_index("key")["verdict"]
    assert claims["frontier"] == "fails" and claims["overoptimisation"] == "fails"
    one = analysis.preference_claims(_frontier((2.0, 3.0), (1.5, 2.0), [(1, 1.0), (4, 2.0), (16, 1.5)], seeds=(0,)))
    assert set(one["verdict"]) == {"unresolved"}
    # the gold reward at matched KL interpolates between the reference (KL 0) and the settings
    at = analysis.gold_at_kl(df, "DPO", 0.5)
    assert at[at["seed"] == 0]["value"].iloc[0] == pytest.approx(1.25)


def test_gold_at_matched_kl_interpolates_and_does_not_extrapolate():
    from paperlib.experiments.preference.experiment import gold_at_matched_kl

    df = _frontier((2.0, 3.0), (1.5, 2.0), [(1, 1.0), (4, 2.0), (16, 1.5)])
    table = gold_at_matched_kl(df, kls=(1.0, 1.5, 2.5)).set_index("method")
    assert list(table.columns) == ["KL 1", "KL 1.5", "KL 2.5"]
    # the seeds add 0, 0.01 and 0.02 to every gold reward: mean +0.01, std 0.01
    assert table.loc["DPO", "KL 1"] == "2.01 ± 0.01"
    assert table.loc["PPO", "KL 1.5"] == "1.76 ± 0.01"  # halfway between 1.5 (KL 1) and 2.0 (KL 2)
    # nothing beyond a method's largest KL: 2 for DPO and PPO, log 16 - 15/16 = 1.84 for best-of-n
    assert (table["KL 2.5"] == "").all() and table.loc["best-of-n", "KL 1.5"] != ""

def test_unit_keys_follow_the_config_and_the_method():
    base = {u.config["method"]: u.key for u in units(Config.quick())}
    assert set(base) == {"best-of-n", "PPO", "DPO", "IPO", "RRHF", "bandit"}
    ppo_only = {u.config["method"]: u.key for u in units(Config.quick(ppo_lr=1e-3))}
    assert ppo_only["PPO"] != base["PPO"] and ppo_only["DPO"] == base["DPO"]  # a PPO setting leaves DPO alone
    shared = {u.config["method"]: u.key for u in units(Config.quick(pairs=150))}
    assert all(shared[m] != base[m] for m in base if m != "bandit") and shared["bandit"] == base["bandit"]


TINY = dict(d_model=16, n_head=2, n_layer=1, sft_examples=200, sft_steps=15, pairs=60, eval_samples=40, curve_samples=20,
            bon_pool=100, bon_n=(1, 4, 16), bon_rm_pairs=(30,), betas=(0.5,), ppo_iterations=2, ppo_batch=8, ppo_minibatch=8,
            ppo_eval_every=1, dpo_steps=4, dpo_eval_every=2, pair_batch=8, ipo_taus=(0.5,), rrhf_steps=(2, 4),
            bandit_pairs=(50,), bandit_iterations=20, max_new_tokens=10, max_length=8)


def test_units_are_deterministic_and_tidy():
    from paperlib.experiments.preference import experiment

    config = Config.quick(**TINY)
    for u in units(config):
        experiment._world.cache_clear()  # recompute the shared reference and reward model too
        a = compute_unit(u.config, 0)
        experiment._world.cache_clear()
        b = compute_unit(u.config, 0)
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name])
            assert {"method", "seed", "metric", "value"} <= set(a[name].columns)


def test_run_through_the_store_findings_and_figures(tmp_path):
    from paperlib.experiments.preference import figures

    config = Config.quick(**TINY, seeds=(0, 1))
    store = ResultStore(tmp_path)
    first = run(config, store=store, progress=False)
    assert first.report.computed == len(units(config))
    again = run(config, store=store, progress=False)
    assert again.report.computed == 0
    pd.testing.assert_frame_equal(first["frontier"], again["frontier"])
    findings = first.findings()
    assert {"setup", "claim_raise", "claim_frontier", "claim_overoptimisation", "bandit"} <= set(findings["key"])
    assert set(first.claims()["verdict"]) <= {"holds", "fails", "unresolved"}
    for fig in (figures.plot_frontier(first["frontier"]), figures.plot_overoptimisation(first["frontier"]),
                figures.plot_training(first["training"]), figures.plot_reward_model(first["reward_model"]),
                figures.plot_bandit(first["bandit"])):
        assert len(fig.data) > 0
    assert len(analysis.frontier_table(first["frontier"])) > 0
