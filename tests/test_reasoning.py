"""RL for reasoning: pass@k against brute force, GRPO's advantages and loss by hand, the
zero-variance share, the curricula's choices, exact-match rollouts with a scripted model, and a
tiny end-to-end run through the store."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from paperlib.experiments.lm import ADDITION_SYMBOLS, EOS, Vocab
from paperlib.experiments.reasoning import analysis
from paperlib.experiments.reasoning.experiment import Config, compute_unit, problem_examples, run, units
from paperlib.experiments.reasoning.methods import (
    PacedLevels,
    UCBLevels,
    UniformLevels,
    clipped_policy_loss,
    correctness,
    draw_problems,
    group_advantages,
    make_level_sampler,
    pass_at_k,
    pass_at_k_curve,
    reinforce_loss,
    rollouts,
    zero_variance_share,
)
from paperlib.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB = Vocab(ADDITION_SYMBOLS)


def test_pass_at_k_matches_brute_force():
    for n, c in ((5, 0), (5, 2), (6, 3), (4, 4)):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            brute = np.mean([any(outcomes[i] for i in idx) for idx in combinations(range(n), k)])
            assert pass_at_k(n, c, k) == pytest.approx(brute)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    curve = pass_at_k_curve(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], bool), (1, 4))
    assert curve == {1: pytest.approx(0.125), 4: pytest.approx(0.5)}
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_group_advantages_and_zero_variance_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    adv = group_advantages(rewards, groups, eps=0.0)
    std = math.sqrt(((0.75**2) + 3 * 0.25**2) / 3)  # unbiased std of (1, 0, 0, 0)
    assert adv[:4].tolist() == pytest.approx([0.75 / std, -0.25 / std, -0.25 / std, -0.25 / std])
    assert group_advantages(rewards, groups)[4:].abs().max().item() == 0.0  # an all-correct group has no advantage
    assert zero_variance_share(rewards, groups) == 0.5
    assert zero_variance_share(torch.tensor([0.0, 1.0]), torch.tensor([0, 0])) == 0.0


def test_grpo_loss_by_hand():
    mask = torch.tensor([[True, True], [True, False]])
    old = torch.zeros(2, 2)
    logp = torch.log(torch.tensor([[1.5, 1.0], [0.5, 1.0]]))
    adv = torch.tensor([1.0, -1.0])
    # row 0: min(1.5, 1.2) = 1.2 and 1.0 -> mean 1.1; row 1 (one token): min(-0.5, -0.8) = -0.8
    assert clipped_policy_loss(logp, old, adv, mask, 0.2).item() == pytest.approx(-(1.1 - 0.8) / 2)
    # the k3 KL estimate is zero where the policy equals the reference and positive elsewhere
    assert clipped_policy_loss(old, old, adv, mask, 0.2, ref_logp=old, kl_coef=1.0).item() == pytest.approx(0.0)
    assert clipped_policy_loss(old, old, torch.zeros(2), mask, 0.2, ref_logp=old - 1.0, kl_coef=1.0).item() > 0
    # REINFORCE: -A x mean token log-probability
    assert reinforce_loss(logp, adv, mask).item() == pytest.approx(-(math.log(1.5) / 2 - math.log(0.5)) / 2)


def test_level_samplers():
    rng = np.random.default_rng(0)
    assert UniformLevels((1, 2, 3)).probabilities(1, 30).tolist() == pytest.approx([1 / 3] * 3)
    paced = PacedLevels((1, 2, 3))
    assert paced.probabilities(1, 30).tolist() == [1.0, 0.0, 0.0]
    assert paced.probabilities(11, 30).tolist() == [0.5, 0.5, 0.0]
    assert paced.probabilities(30, 30).tolist() == pytest.approx([1 / 3] * 3)
    ucb = UCBLevels((1, 2, 3), window=10, c=0.0, temperature=0.1)
    assert ucb.probabilities(1, 10).tolist() == pytest.approx([1 / 3] * 3)  # all unvisited: tried first
    ucb.update(np.array([1, 2]), np.array([0.0, 1.0]))
    assert ucb.probabilities(1, 10).tolist() == [0.0, 0.0, 1.0]  # the one level never tried
    ucb.update(np.array([3]), np.array([0.5]))
    p = ucb.probabilities(2, 10)
    assert p[1] > p[2] > p[0]  # higher mean |advantage|, higher probability
    assert set(ucb.draw(50, 2, 10, rng)) <= {1, 2, 3}
    with pytest.raises(ValueError):
        make_level_sampler("nope", (1,))
    prompts, answers = draw_problems(np.array([1, 3, 2]), rng)
    assert [len(p.split("+")[0]) for p in prompts] == [1, 3, 2] and all(str(eval(p[:-1])) == a for p, a in zip(prompts, answers))


class Scripted(nn.Module):
    """Always writes "5" then <eos> (logits 20 for the scripted token, 0 elsewhere)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.five, self.eos = VOCAB.id("5"), EOS

    def forward(self, tokens):
        logits = torch.zeros(*tokens.shape, len(VOCAB))
        last_is_five = tokens == self.five
        logits[..., self.five] = torch.where(last_is_five, 0.0, 20.0)
        logits[..., self.eos] = torch.where(last_is_five, 20.0, 0.0)
        return logits + 0 * self.dummy


def test_rollouts_reward_exact_answers_only():
    model = Scripted()
    r = rollouts(model, VOCAB, ["2+3=", "1+1=", "0+5="], ["5", "2", "5"], group=2, max_new_tokens=3, temperature=1.0,
                 generator=torch.Generator().manual_seed(0))
    assert r.rewards.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert r.groups.tolist() == [0, 0, 1, 1, 2, 2] and r.responses[0] == "5"
    c = correctness(model, VOCAB, ["2+3=", "1+1="], ["5", "2"], samples=3, seed=0, temperature=1.0, max_new_tokens=3)
    assert c.tolist() == [[True] * 3, [False] * 3]


def test_claims_on_hand_made_tables():
    rows = []
    for seed in (0, 1, 2):
        for method, p1, p16 in (("SFT", 0.5, 0.9), ("GRPO", 0.7 + 0.01 * seed, 0.92)):
            for d in (1, 2):
                rows += [dict(method=method, seed=seed, digits=d, k=1, metric="pass@1", value=p1),
                         dict(method=method, seed=seed, digits=d, k=16, metric="pass@16", value=p16 + 0.005 * seed)]
    passk = pd.DataFrame(rows)
    claims = analysis.reasoning_claims(passk, Config(train_digits=(1, 2), ks=(1, 16))).set_index("key")["verdict"]
    assert claims.to_dict() == {"grpo_pass1": "holds", "sharpening": "holds"}
    one = analysis.reasoning_claims(passk[passk["seed"] == 0], Config(train_digits=(1, 2), ks=(1, 16)))
    assert set(one["verdict"]) == {"unresolved"}


def test_unit_keys_follow_the_config_and_the_method():
    base = {u.config["method"]: u.key for u in units(Config.quick())}
    assert len(base) == 7
    kl = {u.config["method"]: u.key for u in units(Config.quick(kl_coef=0.0))}
    assert kl["GRPO"] != base["GRPO"] and kl["REINFORCE"] == base["REINFORCE"] and kl["SFT"] == base["SFT"]
    sft = {u.config["method"]: u.key for u in units(Config.quick(sft_target=0.3))}
    assert all(sft[m] != base[m] for m in base)
    assert set(problem_examples(Config.quick())["digits"]) == set(Config.quick().test_digits)


TINY = dict(d_model=16, n_head=2, n_layer=1, sft_examples=100, sft_max_steps=6, sft_check_every=3, sft_check_problems=4,
            rl_steps=2, prompts=2, group=2, test_problems=4, eval_samples=4, ks=(1, 4), curve_every=1, curve_problems=2,
            curve_samples=2, train_digits=(1, 2), test_digits=(1, 2, 3))


def test_units_are_deterministic_and_tidy():
    from paperlib.experiments.reasoning import experiment

    for u in units(Config.quick(**TINY)):
        experiment._start.cache_clear()
        a = compute_unit(u.config, 0)
        experiment._start.cache_clear()
        b = compute_unit(u.config, 0)
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name])
            assert {"method", "seed", "metric", "value"} <= set(a[name].columns)
        assert set(a["passk"]["metric"]) == {"pass@1", "pass@4"}


def test_run_through_the_store_findings_and_figures(tmp_path):
    from paperlib.experiments.reasoning import figures

    config = Config.quick(**TINY, seeds=(0, 1))
    store = ResultStore(tmp_path)
    first = run(config, store=store, progress=False)
    assert first.report.computed == len(units(config))
    again = run(config, store=store, progress=False)
    assert again.report.computed == 0
    pd.testing.assert_frame_equal(first["passk"], again["passk"])
    keys = set(first.findings()["key"])
    assert {"claim_grpo_pass1", "claim_sharpening", "gain_by_k", "longer", "zero_variance", "ucb", "paced"} <= keys
    assert set(first.claims()["verdict"]) <= {"holds", "fails", "unresolved"}
    for fig in (figures.plot_passk(first["passk"]), figures.plot_gain_by_k(first["passk"]),
                figures.plot_training(first["training"], config.train_digits), figures.plot_level_shares(first["training"])):
        assert len(fig.data) > 0
    assert len(analysis.passk_table(first["passk"])) > 0
