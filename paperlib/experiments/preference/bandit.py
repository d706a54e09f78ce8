"""The one-step (bandit) case, where everything is exact: K responses, a reference policy
pi_ref, a reward r. The optimum of E_pi[r] - beta KL(pi || pi_ref) is

    pi*(y) = pi_ref(y) exp(r(y) / beta) / Z,

and DPO on Bradley-Terry pairs drawn from pi_ref should reach it as the pairs grow: its
population loss is minimised where beta log(pi / pi_ref) equals r up to a constant.
"""
from __future__ import annotations

import numpy as np
import torch

from paperlib.experiments.preference.methods import bradley_terry_labels


def kl_optimum(pi_ref: np.ndarray, reward: np.ndarray, beta: float) -> np.ndarray:
    """pi_ref * exp(reward / beta), normalised: the maximiser of E[r] - beta KL(pi || pi_ref)."""
    logits = np.log(np.asarray(pi_ref, float)) + np.asarray(reward, float) / beta
    logits -= logits.max()
    p = np.exp(logits)
    return p / p.sum()


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats (terms with p = 0 contribute 0)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    ok = p > 0
    return float((p[ok] * (np.log(p[ok]) - np.log(q[ok]))).sum())


def regularised_objective(pi: np.ndarray, pi_ref: np.ndarray, reward: np.ndarray, beta: float) -> float:
    """E_pi[r] - beta KL(pi || pi_ref)."""
    return float((np.asarray(pi) * np.asarray(reward)).sum() - beta * kl_divergence(pi, pi_ref))


def sample_pairs(pi_ref: np.ndarray, reward: np.ndarray, n: int, *, noise: float, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """n pairs (chosen, rejected) of actions drawn independently from pi_ref and ordered by
    Bradley-Terry on the reward, with label noise."""
    rng = np.random.default_rng(seed)
    a = rng.choice(len(pi_ref), size=n, p=pi_ref)
    b = rng.choice(len(pi_ref), size=n, p=pi_ref)
    first = bradley_terry_labels(reward[a], reward[b], noise=noise, seed=seed + 1)
    return np.where(first, a, b), np.where(first, b, a)


def dpo_bandit(pi_ref: np.ndarray, chosen: np.ndarray, rejected: np.ndarray, beta: float, *,
               max_iter: int = 200) -> np.ndarray:
    """The tabular policy (one logit per action, started at log pi_ref) that minimises the DPO loss
    over all the pairs, by L-BFGS on the full batch. The pairs enter through their K x K win counts,
    which give the same loss as the list of pairs. When a response never loses a comparison the
    minimum is at infinity; the search then stops after `max_iter` iterations. Returns the probabilities."""
    k = len(pi_ref)
    wins = np.zeros((k, k))
    np.add.at(wins, (np.asarray(chosen), np.asarray(rejected)), 1.0)
    wins = torch.as_tensor(wins / max(len(chosen), 1))
    log_ref = torch.log(torch.as_tensor(pi_ref, dtype=torch.float64))
    logits = log_ref.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([logits], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        h = torch.log_softmax(logits, 0) - log_ref
        loss = -(wins * torch.nn.functional.logsigmoid(beta * (h[:, None] - h[None, :]))).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.softmax(logits.detach(), 0).numpy()
