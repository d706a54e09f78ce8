"""Reinforcement learning with a verifiable reward on a tiny language model that adds numbers:
pass@k, group rollouts, GRPO, REINFORCE with a mean baseline, rejection-sampling fine-tuning
(STaR-style) and curricula over problem length.

A problem is "a+b=" with both operands of d digits; the reward of a response is 1 when it is
exactly the sum, else 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from paperlib.experiments.lm import (
    TinyLM,
    Vocab,
    addition_problems,
    lm_loss,
    sample,
    token_logprobs,
)
from paperlib.experiments.training import make_optimizer

# --------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021)'s unbiased estimator of pass@k from n samples of which c are correct:
    1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_curve(correct: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Mean pass@k over problems, from a boolean array (problems, samples)."""
    correct = np.asarray(correct, bool)
    n = correct.shape[1]
    counts = correct.sum(1)
    return {int(k): float(np.mean([pass_at_k(n, int(c), int(k)) for c in counts])) for k in ks}


# --------------------------------------------------------------------------- rollouts


@dataclass(frozen=True)
class Rollouts:
    """G samples for each of P prompts: tokens and masks (P*G rows, prompt-major), rewards,
    the group (prompt index) and the operand digits of each row."""

    tokens: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor
    groups: torch.Tensor
    digits: np.ndarray
    responses: list[str]


def rollouts(policy: nn.Module, vocab: Vocab, prompts: Sequence[str], answers: Sequence[str], *, group: int,
             max_new_tokens: int, temperature: float, generator: torch.Generator) -> Rollouts:
    """Sample `group` responses per prompt and score each by exact match with the answer."""
    ids = [vocab.encode(p, bos=True) for p in prompts for _ in range(group)]
    s = sample(policy, ids, max_new_tokens=max_new_tokens, temperature=temperature, generator=generator)
    texts = [vocab.decode(r) for r in s.responses()]
    finished = s.finished.tolist()
    rewards = [1.0 if ok and t == answers[i // group] else 0.0 for i, (t, ok) in enumerate(zip(texts, finished))]
    dev = s.tokens.device
    return Rollouts(s.tokens, s.mask, torch.tensor(rewards, device=dev), torch.arange(len(prompts), device=dev).repeat_interleave(group),
                    np.repeat([len(p.split("+")[0]) for p in prompts], group), texts)


def group_advantages(rewards: torch.Tensor, groups: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """GRPO's advantage: each reward minus its group's mean, divided by the group's standard
    deviation (+eps); 0 for every member of a group whose rewards are all equal."""
    n = int(groups.max()) + 1
    count = torch.bincount(groups, minlength=n).float()
    mean = torch.bincount(groups, rewards, minlength=n) / count
    var = torch.bincount(groups, (rewards - mean[groups]) ** 2, minlength=n) / (count - 1).clamp_min(1)
    return (rewards - mean[groups]) / (var.sqrt()[groups] + eps)


def zero_variance_share(rewards: torch.Tensor, groups: torch.Tensor) -> float:
    """Share of groups whose samples all got the same reward: no advantage, so no gradient."""
    n = int(groups.max()) + 1
    low = torch.full((n,), float("inf"), device=rewards.device).scatter_reduce(0, groups, rewards, "amin")
    high = torch.full((n,), float("-inf"), device=rewards.device).scatter_reduce(0, groups, rewards, "amax")
    return float((low == high).float().mean())


def _per_sequence_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.float()
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, clip: float,
                        ref_logp: torch.Tensor | None = None, kl_coef: float = 0.0) -> torch.Tensor:
    """GRPO's loss: the clipped surrogate with one advantage per sequence, averaged over each
    response's tokens and then over responses, plus kl_coef times the k3 estimate of
    KL(pi || pi_ref) per token, exp(ref - logp) - (ref - logp) - 1."""
    ratio = torch.exp(logp - old_logp)
    a = adv.unsqueeze(1)
    surrogate = torch.minimum(ratio * a, torch.clamp(ratio, 1 - clip, 1 + clip) * a)
    loss = -_per_sequence_mean(surrogate, mask)
    if ref_logp is not None and kl_coef:
        d = ref_logp - logp
        loss = loss + kl_coef * _per_sequence_mean(torch.exp(d) - d - 1, mask)
    return loss.mean()


def reinforce_loss(logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """REINFORCE: -advantage x log-probability, averaged over each response's tokens and then over responses."""
    return -(adv * _per_sequence_mean(logp, mask)).mean()


# --------------------------------------------------------------------------- where problems come from


class LevelSampler:
    """Chooses the operand length (level) of each training problem; `update` hears about the
    absolute advantages a step produced at each level."""

    def __init__(self, levels: Sequence[int]):
        self.levels = tuple(int(x) for x in levels)

    def probabilities(self, step: int, steps: int) -> np.ndarray:
        return np.full(len(self.levels), 1.0 / len(self.levels))

    def draw(self, n: int, step: int, steps: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.levels, size=n, p=self.probabilities(step, steps))

    def update(self, levels: np.ndarray, abs_advantages: np.ndarray) -> None:
        pass


class UniformLevels(LevelSampler):
    """Every level equally likely, all the time."""


class PacedLevels(LevelSampler):
    """Easy to hard: the run is cut into as many stages as levels; stage k samples uniformly
    among the k easiest levels."""

    def probabilities(self, step: int, steps: int) -> np.ndarray:
        stage = min(len(self.levels), 1 + (step - 1) * len(self.levels) // max(steps, 1))
        p = np.zeros(len(self.levels))
        p[:stage] = 1.0 / stage
        return p


class UCBLevels(LevelSampler):
    """A distribution-level curriculum in the spirit of DUMP (Wang et al. 2025): each level's
    learnability is the mean absolute advantage of its recent samples (a window of `window`);
    its score adds the UCB bonus c * sqrt(2 ln N / n_level); levels are drawn from a softmax of
    the scores at `temperature`. Unvisited levels score +inf (each is tried first)."""

    def __init__(self, levels: Sequence[int], *, window: int = 200, c: float = 0.5, temperature: float = 0.1):
        super().__init__(levels)
        self.window, self.c, self.temperature = window, c, temperature
        self.recent_: dict[int, list[float]] = {lv: [] for lv in self.levels}
        self.counts_: dict[int, int] = {lv: 0 for lv in self.levels}

    def scores(self) -> np.ndarray:
        total = max(sum(self.counts_.values()), 1)
        out = []
        for lv in self.levels:
            n = self.counts_[lv]
            if n == 0:
                out.append(np.inf)
                continue
            out.append(float(np.mean(self.recent_[lv])) + self.c * math.sqrt(2 * math.log(total) / n))
        return np.array(out)

    def probabilities(self, step: int, steps: int) -> np.ndarray:
        s = self.scores()
        if np.isinf(s).any():
            p = np.isinf(s).astype(float)
            return p / p.sum()
        z = (s - s.max()) / self.temperature
        p = np.exp(z)
        return p / p.sum()

    def update(self, levels: np.ndarray, abs_advantages: np.ndarray) -> None:
        for lv, a in zip(levels, abs_advantages):
            lv = int(lv)
            self.recent_[lv] = (self.recent_[lv] + [float(a)])[-self.window :]
            self.counts_[lv] += 1


def make_level_sampler(name: str, levels: Sequence[int], **options) -> LevelSampler:
    """"uniform", "paced" (easy to hard) or "ucb" (DUMP-style)."""
    samplers = {"uniform": UniformLevels, "paced": PacedLevels, "ucb": UCBLevels}
    if name not in samplers:
        raise ValueError(f"unknown curriculum {name!r}: expected one of {sorted(samplers)}")
    return samplers[name](levels, **options) if name == "ucb" else samplers[name](levels)


def draw_problems(levels: np.ndarray, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """One fresh problem per entry of `levels` (its operand length)."""
    prompts, answers = [], []
    for lv in levels:
        p, a = addition_problems(1, int(lv), seed=int(rng.integers(2**31)))
        prompts += p
        answers += a
    return prompts, answers


# --------------------------------------------------------------------------- the RL loop


@dataclass(frozen=True)
class RLConfig:
    """One RL run after SFT; every method samples `prompts` x `group` responses per step."""

    method: str  # "GRPO", "REINFORCE" or "RFT"
    steps: int = 150
    prompts: int = 16
    group: int = 8
    lr: float = 3e-4
    epochs: int = 2  # GRPO: updates per batch of samples (the clipped ratio matters from the second on)
    clip: float = 0.2
    kl_coef: float = 0.04  # GRPO: weight of the k3 KL estimate to the SFT model (0 switches it off)
    temperature: float = 1.0
    max_new_tokens: int = 6


def train_rl(policy: TinyLM, reference: TinyLM, vocab: Vocab, sampler: LevelSampler, config: RLConfig, *, seed: int,
             on_step: Callable[[int, dict], None] | None = None) -> TinyLM:
    """Run `config.method` for `config.steps` steps on fresh problems whose lengths `sampler`
    chooses. `on_step(step, stats)` gets the mean reward, the share of zero-variance groups and
    the share of each level in the step's problems."""
    if config.method not in ("GRPO", "REINFORCE", "RFT"):
        raise ValueError(f"unknown RL method {config.method!r}: expected 'GRPO', 'REINFORCE' or 'RFT'")
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = make_optimizer("adam", policy, config.lr)
    for step in range(1, config.steps + 1):
        levels = sampler.draw(config.prompts, step, config.steps, rng)
        prompts, answers = draw_problems(levels, rng)
        r = rollouts(policy, vocab, prompts, answers, group=config.group, max_new_tokens=config.max_new_tokens,
                     temperature=config.temperature, generator=gen)
        m = r.mask[:, 1:]
        adv = group_advantages(r.rewards, r.groups)
        policy.train()
        if config.method == "GRPO":
            with torch.no_grad():
                old = token_logprobs(policy, r.tokens)
                ref = token_logprobs(reference, r.tokens) if config.kl_coef else None
            for _ in range(config.epochs):
                loss = clipped_policy_loss(token_logprobs(policy, r.tokens), old, adv, m, config.clip, ref, config.kl_coef)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        elif config.method == "REINFORCE":
            loss = reinforce_loss(token_logprobs(policy, r.tokens), r.rewards - r.rewards.mean(), m)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:  # RFT: fine-tune on the correct samples of this step
            keep = r.rewards > 0
            if bool(keep.any()):
                loss = lm_loss(policy, r.tokens[keep], r.mask[keep])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        policy.eval()
        per_prompt = adv.abs().view(len(prompts), config.group).mean(1).cpu().numpy()
        sampler.update(levels, per_prompt)
        if on_step is not None:
            shares = {f"share_{lv}_digits": float(np.mean(levels == lv)) for lv in sampler.levels}
            on_step(step, {"reward": float(r.rewards.mean()), "zero_variance_share": zero_variance_share(r.rewards, r.groups),
                           **shares})
    return policy


# --------------------------------------------------------------------------- evaluation


def correctness(model: nn.Module, vocab: Vocab, prompts: Sequence[str], answers: Sequence[str], *, samples: int, seed: int,
                temperature: float, max_new_tokens: int) -> np.ndarray:
    """Boolean (problems, samples): which sampled responses are exactly right."""
    r = rollouts(model, vocab, prompts, answers, group=samples, max_new_tokens=max_new_tokens, temperature=temperature,
                 generator=torch.Generator().manual_seed(seed))
    return r.rewards.view(len(prompts), samples).cpu().numpy() > 0


def evaluate_passk(model: nn.Module, vocab: Vocab, test: dict[int, tuple[list[str], list[str]]], *, samples: int,
                   ks: Sequence[int], seed: int, temperature: float, max_new_tokens: int) -> pd.DataFrame:
    """pass@k per operand length: rows (digits, k, value)."""
    rows = []
    for d, (prompts, answers) in sorted(test.items()):
        c = correctness(model, vocab, prompts, answers, samples=samples, seed=seed + d, temperature=temperature,
                        max_new_tokens=max_new_tokens)
        rows += [{"digits": d, "k": k, "value": v} for k, v in pass_at_k_curve(c, ks).items()]
    return pd.DataFrame(rows)

