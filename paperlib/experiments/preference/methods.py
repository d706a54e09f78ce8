"""Learning from preferences on a tiny language model: a gold reward, Bradley-Terry pairs, a
learned reward model, best-of-n, PPO with a KL penalty, and the pairwise losses of DPO, IPO and
RRHF.

Conventions: a sequence is `<bos> response <eos>` (no prompt); masks are True on the response
tokens; "log-ratio" means log pi(y) - log pi_ref(y) summed over the response.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from paperlib.experiments.lm import (
    BOS,
    TinyLM,
    Vocab,
    sample,
    sequence_logprob,
    token_logprobs,
)
from paperlib.experiments.training import LoopConfig, make_optimizer, train_loop

# --------------------------------------------------------------------------- the gold reward and the pairs


@dataclass(frozen=True)
class GoldReward:
    """r*(y) = (number of letters of y in `good`) - `length_penalty` * max(0, len(y) - `target_length`):
    good letters are worth one each, but every letter past `target_length` costs `length_penalty`."""

    good: str = "ae"
    target_length: int = 8
    length_penalty: float = 1.0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty(len(texts))
        for i, t in enumerate(texts):
            out[i] = sum(c in self.good for c in t) - self.length_penalty * max(0, len(t) - self.target_length)
        return out

    def best(self, max_length: int) -> float:
        """The largest reward any string of at most `max_length` letters can get."""
        return float(self([self.good[0] * min(self.target_length, max_length)])[0])


def bradley_terry_labels(r_first: np.ndarray, r_second: np.ndarray, *, noise: float = 0.0, seed: int) -> np.ndarray:
    """True where the first response is preferred: drawn with P = sigmoid(r_first - r_second)
    (Bradley-Terry on the gold reward), then flipped with probability `noise`."""
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"label noise must be in [0, 0.5], got {noise}")
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-(np.asarray(r_first, float) - np.asarray(r_second, float))))
    first = rng.random(len(p)) < p
    flip = rng.random(len(p)) < noise
    return first ^ flip


@dataclass(frozen=True)
class Pairs:
    """Preference pairs as padded token tensors (chosen and rejected share one width)."""

    chosen: torch.Tensor
    chosen_mask: torch.Tensor
    rejected: torch.Tensor
    rejected_mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.chosen)

    @classmethod
    def from_texts(cls, vocab: Vocab, chosen: Sequence[str], rejected: Sequence[str], width: int) -> "Pairs":
        c, cm = vocab.batch(list(chosen), length=width)
        r, rm = vocab.batch(list(rejected), length=width)
        return cls(c, cm, r, rm)

    def subset(self, index) -> "Pairs":
        return Pairs(self.chosen[index], self.chosen_mask[index], self.rejected[index], self.rejected_mask[index])


def label_pairs(first: Sequence[str], second: Sequence[str], gold: GoldReward, *, noise: float, seed: int
                ) -> tuple[list[str], list[str]]:
    """(chosen, rejected) texts: each pair ordered by a Bradley-Terry draw on the gold reward."""
    first_wins = bradley_terry_labels(gold(first), gold(second), noise=noise, seed=seed)
    chosen = [a if w else b for a, b, w in zip(first, second, first_wins)]
    rejected = [b if w else a for a, b, w in zip(first, second, first_wins)]
    return chosen, rejected


# --------------------------------------------------------------------------- reward model and value model


class ScalarLM(nn.Module):
    """A language model's trunk with a scalar head: `forward(tokens)` gives one number per position
    (a value model), `score(tokens, mask)` the number at the last response token (a reward model)."""

    def __init__(self, trunk: TinyLM):
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(trunk.config.d_model, 1)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
        self.head.to(next(trunk.parameters()).device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.hidden(tokens)).squeeze(-1)

    def score(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        last = last_index(mask)
        return self(tokens[:, : int(last.max()) + 1]).gather(1, last.unsqueeze(1)).squeeze(1)


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last True in each row (0 for a row without one)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).max(1).values


def bradley_terry_loss(score_chosen: torch.Tensor, score_rejected: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r(chosen) - r(rejected)), averaged: the reward model's loss."""
    return -F.logsigmoid(score_chosen - score_rejected).mean()


def _pair_indices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop's x and y for pairwise losses: the pair indices (the loss looks the pairs up)."""
    idx = torch.arange(n)
    return idx, idx


def train_reward_model(reference: TinyLM, pairs: Pairs, *, epochs: int, batch_size: int, lr: float, seed: int,
                       held_out: Pairs | None = None) -> tuple[ScalarLM, pd.DataFrame]:
    """A reward model initialised from the reference's weights, trained with the Bradley-Terry loss
    for `epochs` passes over the pairs. Returns it and its accuracy per epoch (share of pairs
    whose chosen response scores higher) on the training pairs and on `held_out`."""
    rm = ScalarLM(copy.deepcopy(reference))
    steps_per_epoch = max(1, math.ceil(len(pairs) / batch_size))

    def loss_fn(model, idx, _):
        p = pairs.subset(idx.cpu())
        return bradley_terry_loss(model.score(p.chosen, p.chosen_mask), model.score(p.rejected, p.rejected_mask))

    opt = make_optimizer("adam", rm, lr)
    history = []
    for epoch in range(1, epochs + 1):
        x, y = _pair_indices(len(pairs))
        train_loop(rm, x, y, LoopConfig(steps=steps_per_epoch, batch_size=batch_size, lr=lr), seed=seed + epoch,
                   loss_fn=loss_fn, optimizer=opt, batch_sampler=_epoch_sampler(len(pairs), seed + epoch))
        row = {"epoch": epoch, "train_accuracy": pair_accuracy(rm, pairs)}
        if held_out is not None:
            row["held_out_accuracy"] = pair_accuracy(rm, held_out)
        history.append(row)
    return rm, pd.DataFrame(history)


def _epoch_sampler(n: int, seed: int):
    """Batches that visit every pair once per epoch, in an order drawn from `seed`."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def sampler(step: int, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        start = (step - 1) * batch_size
        return order[start : start + batch_size] if start < n else order[:batch_size]

    return sampler


@torch.no_grad()
def pair_accuracy(rm: ScalarLM, pairs: Pairs) -> float:
    """Share of pairs whose chosen response the reward model scores higher."""
    a = rm.score(pairs.chosen, pairs.chosen_mask)
    b = rm.score(pairs.rejected, pairs.rejected_mask)
    return float((a > b).float().mean())


# --------------------------------------------------------------------------- pairwise policy losses


def dpo_loss(logratio_chosen: torch.Tensor, logratio_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023): -log sigmoid(beta * (h_chosen - h_rejected)), h = log pi/pi_ref."""
    return -F.logsigmoid(beta * (logratio_chosen - logratio_rejected)).mean()


def ipo_loss(logratio_chosen: torch.Tensor, logratio_rejected: torch.Tensor, tau: float) -> torch.Tensor:
    """IPO (Azar et al. 2023): (h_chosen - h_rejected - 1/(2 tau))^2, a squared loss with a finite target margin."""
    return ((logratio_chosen - logratio_rejected - 1.0 / (2.0 * tau)) ** 2).mean()


def rrhf_loss(mean_logp_chosen: torch.Tensor, mean_logp_rejected: torch.Tensor) -> torch.Tensor:
    """RRHF's ranking term (Yuan et al. 2023) for pairs: max(0, p_rejected - p_chosen) with p the
    length-normalised log-probability; the fine-tuning term on the chosen response is added by the caller."""
    return torch.clamp(mean_logp_rejected - mean_logp_chosen, min=0.0).mean()


def train_on_pairs(policy: TinyLM, reference: TinyLM, pairs: Pairs, method: str, strength: float, *, steps: int,
                   batch_size: int, lr: float, seed: int, checkpoints: Sequence[int] = (),
                   on_checkpoint: Callable[[int], None] | None = None) -> TinyLM:
    """Train `policy` (a copy of the reference, usually) on the pairs with "dpo" (strength = beta),
    "ipo" (strength = tau) or "rrhf" (strength = weight of the fine-tuning term on the chosen
    response). `on_checkpoint(step)` runs after each step listed in `checkpoints`."""
    with torch.no_grad():
        ref_c = sequence_logprob(reference, pairs.chosen, pairs.chosen_mask)
        ref_r = sequence_logprob(reference, pairs.rejected, pairs.rejected_mask)
    len_c = pairs.chosen_mask[:, 1:].sum(1).clamp_min(1).float()
    len_r = pairs.rejected_mask[:, 1:].sum(1).clamp_min(1).float()
    if method not in ("dpo", "ipo", "rrhf"):
        raise ValueError(f"unknown pairwise method {method!r}: expected 'dpo', 'ipo' or 'rrhf'")

    def loss_fn(model, idx, _):
        i = idx.cpu()
        p = pairs.subset(i)
        lc = sequence_logprob(model, p.chosen, p.chosen_mask)
        lr_ = sequence_logprob(model, p.rejected, p.rejected_mask)
        if method == "dpo":
            return dpo_loss(lc - ref_c[i], lr_ - ref_r[i], strength)
        if method == "ipo":
            return ipo_loss(lc - ref_c[i], lr_ - ref_r[i], strength)
        mc, mr = lc / len_c[i], lr_ / len_r[i]
        return rrhf_loss(mc, mr) - strength * mc.mean()

    x, y = _pair_indices(len(pairs))
    wanted = set(checkpoints)
    after = (lambda step: on_checkpoint(step) if step in wanted else None) if on_checkpoint else None
    return train_loop(policy, x, y, LoopConfig(steps=steps, batch_size=batch_size, lr=lr), seed=seed, loss_fn=loss_fn,
                      after_step=after)


# --------------------------------------------------------------------------- best-of-n


def best_of_n_kl(n: int | np.ndarray) -> np.ndarray:
    """log n - (n - 1)/n: the analytic KL(best-of-n || reference) that Gao et al. use; Beirami et al.
    (2024) show it is an upper bound on the true KL."""
    n = np.asarray(n, dtype=float)
    return np.log(n) - (n - 1) / n


def best_of_n_expectation(proxy: np.ndarray, values: np.ndarray, n: int) -> float:
    """E[values of the sample with the highest proxy among n drawn without replacement from the pool]:
    the unbiased estimator over a pool of m samples, sum_i C(i-1, n-1)/C(m, n) * values_(i) with i
    the rank by proxy (ascending)."""
    m = len(proxy)
    if not 1 <= n <= m:
        raise ValueError(f"n must be between 1 and the pool size {m}, got {n}")
    order = np.argsort(proxy, kind="stable")
    v = np.asarray(values, float)[order]
    i = np.arange(1, m + 1)
    logw = np.full(m, -np.inf)
    ok = i >= n
    logw[ok] = (_lgamma(i[ok]) - _lgamma(n) - _lgamma(i[ok] - n + 1)) - (_lgamma(m + 1) - _lgamma(n + 1) - _lgamma(m - n + 1))
    w = np.exp(logw)
    return float((w * v).sum() / w.sum())


def _lgamma(x):
    from scipy.special import gammaln

    return gammaln(np.asarray(x, float))


def best_of_n_curve(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> pd.DataFrame:
    """Gold and proxy reward of best-of-n against the proxy, and its KL, for each n."""
    rows = [{"n": int(n), "kl_to_ref": float(best_of_n_kl(n)), "gold_reward": best_of_n_expectation(proxy, gold, n),
             "proxy_reward": best_of_n_expectation(proxy, proxy, n)} for n in ns]
    return pd.DataFrame(rows)


def fit_gao_bon(kl: np.ndarray, gain: np.ndarray) -> dict:
    """Least-squares fit of Gao et al.'s best-of-n form R(d) = d (alpha - beta d), d = sqrt(KL), to the
    gold gain over the reference. Returns alpha, beta, r2 and the KL at the fitted peak (inf when beta <= 0)."""
    d = np.sqrt(np.asarray(kl, float))
    y = np.asarray(gain, float)
    design = np.stack([d, -(d**2)], 1)
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    pred = design @ np.array([alpha, beta])
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else float("nan")
    peak = (alpha / (2 * beta)) ** 2 if beta > 0 and alpha > 0 else float("inf")
    return {"alpha": float(alpha), "beta": float(beta), "r2": r2, "peak_kl": float(peak)}


# --------------------------------------------------------------------------- PPO


@dataclass(frozen=True)
class PPOConfig:
    """PPO for a language model with a learned reward and a per-token KL penalty to the reference."""

    beta: float  # KL penalty: every token pays beta * (log pi - log pi_ref)
    iterations: int = 100
    batch_size: int = 64  # sequences sampled per iteration
    epochs: int = 2  # passes over each batch
    minibatch: int = 32
    lr: float = 3e-4
    clip: float = 0.2
    gae_lambda: float = 0.95
    max_new_tokens: int = 16
    eval_every: int = 0


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, lam: float, gamma: float = 1.0
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the masked (contiguous) actions of each row; the value
    after the last action is 0. Returns (advantages, returns = advantages + values), 0 off the mask."""
    mask = mask.float()
    b, t = rewards.shape
    adv = torch.zeros_like(rewards)
    running = torch.zeros(b, device=rewards.device)
    for i in reversed(range(t)):
        nxt_mask = mask[:, i + 1] if i + 1 < t else torch.zeros(b, device=rewards.device)
        nxt_v = values[:, i + 1] * nxt_mask if i + 1 < t else torch.zeros(b, device=rewards.device)
        delta = rewards[:, i] + gamma * nxt_v - values[:, i]
        running = (delta + gamma * lam * running * nxt_mask) * mask[:, i]
        adv[:, i] = running
    return adv, (adv + values) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.float()
    return (x * m).sum() / m.sum().clamp_min(1.0)


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) / torch.sqrt(var + 1e-8) * mask.float()


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                      clip: float) -> torch.Tensor:
    """PPO's policy loss: -min(ratio A, clip(ratio, 1-eps, 1+eps) A), averaged over the masked tokens."""
    ratio = torch.exp(logp - old_logp)
    loss = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    return masked_mean(loss, mask)


def ppo(policy: TinyLM, reference: TinyLM, reward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        critic: ScalarLM, config: PPOConfig, *, seed: int, on_eval: Callable[[int], None] | None = None) -> TinyLM:
    """Train `policy` by PPO on `reward(tokens, mask)` (one number per sequence, given at its last
    token) minus the per-token KL penalty, with `critic` as the value baseline (GAE) and a clipped ratio."""
    gen = torch.Generator().manual_seed(seed)
    opt_p = make_optimizer("adam", policy, config.lr)
    opt_v = make_optimizer("adam", critic, config.lr)
    for it in range(1, config.iterations + 1):
        s = sample(policy, [[BOS]] * config.batch_size, max_new_tokens=config.max_new_tokens, generator=gen)
        tokens, m = s.tokens, s.mask[:, 1:].float()
        with torch.no_grad():
            old = token_logprobs(policy, tokens)
            ref = token_logprobs(reference, tokens)
            values = critic(tokens)[:, :-1] * m
            score = reward(tokens, s.mask)
        rewards = -config.beta * (old - ref) * m
        rewards[torch.arange(len(tokens)), last_index(m)] += score
        adv, returns = gae(rewards, values, m, config.gae_lambda)
        adv = whiten(adv, m)
        policy.train()
        critic.train()
        for _ in range(config.epochs):
            order = torch.randperm(len(tokens), generator=gen)
            for mb in order.split(config.minibatch):
                loss = clipped_surrogate(token_logprobs(policy, tokens[mb]), old[mb], adv[mb], m[mb], config.clip)
                opt_p.zero_grad(set_to_none=True)
                loss.backward()
                opt_p.step()
                vloss = 0.5 * masked_mean((critic(tokens[mb])[:, :-1] - returns[mb]) ** 2, m[mb])
                opt_v.zero_grad(set_to_none=True)
                vloss.backward()
                opt_v.step()
        policy.eval()
        critic.eval()
        if on_eval is not None and config.eval_every and it % config.eval_every == 0:
            on_eval(it)
    return policy


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_policy(policy: TinyLM, reference: TinyLM, reward_model: ScalarLM, gold: GoldReward, vocab: Vocab, *,
                    n: int, seed: int, max_new_tokens: int) -> dict:
    """Gold reward, proxy (reward model) reward, KL(pi || pi_ref) (Monte Carlo: the mean of
    log pi(y) - log pi_ref(y) over samples of pi) and mean length of n samples of the policy."""
    s = sample(policy, [[BOS]] * n, max_new_tokens=max_new_tokens, seed=seed)
    texts = [vocab.decode(r) for r in s.responses()]
    kl = sequence_logprob(policy, s.tokens, s.mask) - sequence_logprob(reference, s.tokens, s.mask)
    return {"gold_reward": float(gold(texts).mean()), "proxy_reward": float(reward_model.score(s.tokens, s.mask).mean()),
            "kl_to_ref": float(kl.mean()), "length": float(np.mean([len(t) for t in texts]))}
