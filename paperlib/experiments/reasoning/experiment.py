"""RL for reasoning on a tiny language model that adds numbers, with a verifiable reward.

The model learns addition of 1- to 3-digit operands by SFT, stopped once its pass@1 reaches a
moderate level; from that checkpoint the same budget of sampled responses goes to GRPO,
REINFORCE with a mean baseline and rejection-sampling fine-tuning (STaR-style), and to GRPO
under two curricula over operand length; continued SFT on the true answers is the baseline that
RL must beat. Every model is measured by pass@k (k up to 16, Chen et al.'s unbiased estimator)
on held-out problems of each length, including longer operands than any it was trained on.

One unit is one (seed, method); the SFT checkpoint of a seed is computed once per process and
shared by that seed's units.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from paperlib.experiments.lm import (
    ADDITION_SYMBOLS,
    LMConfig,
    TinyLM,
    Vocab,
    addition_problems,
    sft,
    sft_until,
)
from paperlib.experiments.reasoning.methods import (
    RLConfig,
    correctness,
    evaluate_passk,
    make_level_sampler,
    train_rl,
)
from paperlib.experiments.runner import (
    Results,
    Unit,
    config_from,
    make_unit,
    run_experiment,
)
from paperlib.experiments.training import LoopConfig

NAME = "reasoning.experiment"
CODE_VERSION = 1

# method -> (algorithm, curriculum)
METHODS = {
    "SFT": (None, None),
    "SFT (continued)": ("SFT", None),
    "GRPO": ("GRPO", "uniform"),
    "REINFORCE": ("REINFORCE", "uniform"),
    "RFT": ("RFT", "uniform"),
    "GRPO, easy to hard": ("GRPO", "paced"),
    "GRPO, UCB curriculum": ("GRPO", "ucb"),
}


@dataclass(frozen=True)
class Config:
    """The task, the model, the SFT stopping rule, the RL budget and the evaluation."""

    seeds: tuple[int, ...] = (0, 1, 2)
    train_digits: tuple[int, ...] = (1, 2, 3)  # operand lengths seen in training
    test_digits: tuple[int, ...] = (1, 2, 3, 4)  # 4: longer operands than any trained on
    # the model and SFT
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    sft_examples: int = 20000
    sft_batch: int = 64
    sft_lr: float = 1e-3
    sft_max_steps: int = 3000
    sft_target: float = 0.5  # SFT stops at the first check where mean pass@1 over the training lengths reaches this
    sft_check_every: int = 250
    sft_check_problems: int = 50  # per training length, 4 samples each, for the stopping check
    # RL (every method gets rl_steps steps of prompts x group sampled responses)
    rl_steps: int = 150
    prompts: int = 16
    group: int = 8
    rl_lr: float = 1e-4  # a tenth of the SFT learning rate, for every RL method
    grpo_epochs: int = 2
    clip: float = 0.2
    kl_coef: float = 0.04
    temperature: float = 1.0
    ucb_window: int = 200
    ucb_c: float = 0.5
    ucb_temperature: float = 0.1
    # evaluation
    test_problems: int = 100  # per operand length
    eval_samples: int = 32  # samples per problem for pass@k
    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    curve_every: int = 25  # RL steps between evaluations along training
    curve_problems: int = 40  # per training length, eval_curve_samples samples each
    curve_samples: int = 4

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: one seed, a tiny model, a few steps of everything (numbers not meaningful)."""
        base = dict(seeds=(0,), train_digits=(1, 2), test_digits=(1, 2, 3), d_model=32, sft_examples=500,
                    sft_max_steps=40, sft_check_every=20, sft_check_problems=10, rl_steps=4, prompts=4, group=4,
                    test_problems=10, eval_samples=16, curve_every=2, curve_problems=5, curve_samples=2)
        return cls(**{**base, **changes})

    @property
    def max_new_tokens(self) -> int:
        return max(self.test_digits) + 2  # the longest sum and <eos>

    @property
    def block_size(self) -> int:
        return 1 + 2 * max(self.test_digits) + 2 + self.max_new_tokens


# the settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# every RL method at ten times the learning rate
EXERCISES = ({"rl_lr": 1e-3},)


COMMON = ("train_digits", "test_digits", "d_model", "n_layer", "n_head", "sft_examples", "sft_batch", "sft_lr",
          "sft_max_steps", "sft_target", "sft_check_every", "sft_check_problems", "temperature", "test_problems",
          "eval_samples", "ks")
RL = ("rl_steps", "prompts", "group", "rl_lr", "curve_every", "curve_problems", "curve_samples")
OWN = {"SFT": (), "SFT (continued)": ("rl_steps",), "GRPO": RL + ("grpo_epochs", "clip", "kl_coef"),
       "REINFORCE": RL, "RFT": RL, "GRPO, easy to hard": RL + ("grpo_epochs", "clip", "kl_coef"),
       "GRPO, UCB curriculum": RL + ("grpo_epochs", "clip", "kl_coef", "ucb_window", "ucb_c", "ucb_temperature")}


def units(config: Config, *, device: str = "cpu") -> list[Unit]:
    """One unit per (seed, method); each carries only the settings its numbers depend on."""
    settings = asdict(config)
    return [make_unit(NAME, {"method": m, **{k: settings[k] for k in COMMON + OWN[m]}}, seed, device)
            for seed in config.seeds for m in METHODS]




# --------------------------------------------------------------------------- the SFT checkpoint


@dataclass(frozen=True)
class Start:
    """A seed's SFT checkpoint, its data and its held-out test problems."""

    vocab: Vocab
    model: TinyLM
    tokens: object
    mask: object
    test: dict
    history: list


def problem_examples(c: Config, per_length: int = 3, *, seed: int = 0) -> pd.DataFrame:
    """A few problems of every test length, with their answers and whether the length is trained on."""
    rows = []
    for d in c.test_digits:
        for p, a in zip(*addition_problems(per_length, d, seed=seed + d)):
            rows.append({"digits": d, "prompt": p, "answer": a, "trained on": d in c.train_digits})
    return pd.DataFrame(rows)


def test_sets(c: Config, seed: int) -> dict[int, tuple[list[str], list[str]]]:
    """Held-out problems per operand length (fixed by the seed; the training set uses other draws)."""
    return {d: addition_problems(c.test_problems, d, seed=10_000 + 100 * seed + d) for d in c.test_digits}


def build_start(c: Config, seed: int) -> Start:
    """SFT on the training lengths until mean sampled pass@1 on a check set reaches `sft_target`."""
    vocab = Vocab(ADDITION_SYMBOLS)
    prompts, answers = addition_problems(c.sft_examples, c.train_digits, seed=seed + 1)
    tokens, mask = vocab.batch(prompts, answers, length=c.block_size)
    model = TinyLM(LMConfig(len(vocab), block_size=c.block_size, n_layer=c.n_layer, n_head=c.n_head, d_model=c.d_model),
                   seed=seed)
    check = {d: addition_problems(c.sft_check_problems, d, seed=20_000 + 100 * seed + d) for d in c.train_digits}

    def score(m) -> float:
        return float(np.mean([correctness(m, vocab, p, a, samples=4, seed=seed + 3, temperature=c.temperature,
                                          max_new_tokens=c.max_new_tokens).mean() for p, a in check.values()]))

    model, history = sft_until(model, tokens, mask, LoopConfig(steps=c.sft_max_steps, batch_size=c.sft_batch, lr=c.sft_lr),
                               seed=seed, score=score, target=c.sft_target, check_every=c.sft_check_every)
    return Start(vocab, model, tokens, mask, test_sets(c, seed), history)


@lru_cache(maxsize=2)
def _start(common_json: str, seed: int) -> Start:
    return build_start(config_from(Config, json.loads(common_json)), seed)


def start(c: Config, seed: int) -> Start:
    """The seed's SFT checkpoint, computed once per process (copy the model before training it)."""
    settings = asdict(c)
    return _start(json.dumps({k: settings[k] for k in COMMON}, sort_keys=True), seed)


# --------------------------------------------------------------------------- the units


def _passk_rows(model, s: Start, c: Config, method: str, seed: int) -> pd.DataFrame:
    df = evaluate_passk(model, s.vocab, s.test, samples=c.eval_samples, ks=c.ks, seed=seed + 500,
                        temperature=c.temperature, max_new_tokens=c.max_new_tokens)
    df = df.assign(method=method, seed=seed, metric=[f"pass@{k}" for k in df["k"]])
    return df[["method", "seed", "digits", "k", "metric", "value"]]


def _curve_rows(model, s: Start, c: Config, method: str, seed: int, step: int) -> list[dict]:
    rows = []
    for d in c.train_digits:
        p, a = s.test[d] if d in s.test else addition_problems(c.curve_problems, d, seed=30_000 + d)
        p, a = p[: c.curve_problems], a[: c.curve_problems]
        acc = correctness(model, s.vocab, p, a, samples=c.curve_samples, seed=seed + 700 + step, temperature=c.temperature,
                          max_new_tokens=c.max_new_tokens).mean()
        rows.append({"method": method, "seed": seed, "step": step, "metric": f"pass@1 ({d} digits)", "value": float(acc)})
    return rows


TRAINING_COLUMNS = ["method", "seed", "step", "metric", "value"]


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    method = config["method"]
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {list(METHODS)}")
    c = config_from(Config, config)
    s = start(c, seed)
    algorithm, curriculum = METHODS[method]
    if algorithm is None:
        sft_rows = pd.DataFrame([{"method": "SFT", "seed": seed, "step": step, "metric": "sft pass@1 check", "value": v}
                                 for step, v in s.history], columns=TRAINING_COLUMNS)
        return {"passk": _passk_rows(s.model, s, c, "SFT", seed), "training": sft_rows}
    model = copy.deepcopy(s.model)
    if algorithm == "SFT":
        sft(model, s.tokens, s.mask, LoopConfig(steps=c.rl_steps, batch_size=c.sft_batch, lr=c.sft_lr), seed=seed + 11)
        return {"passk": _passk_rows(model, s, c, method, seed)}
    curve = _curve_rows(model, s, c, method, seed, 0)
    sampler = make_level_sampler(curriculum, c.train_digits,
                                 **({"window": c.ucb_window, "c": c.ucb_c, "temperature": c.ucb_temperature}
                                    if curriculum == "ucb" else {}))
    rl = RLConfig(method=algorithm, steps=c.rl_steps, prompts=c.prompts, group=c.group, lr=c.rl_lr,
                  epochs=c.grpo_epochs if algorithm == "GRPO" else 1, clip=c.clip,
                  kl_coef=c.kl_coef if algorithm == "GRPO" else 0.0, temperature=c.temperature,
                  max_new_tokens=c.max_new_tokens)

    def on_step(step: int, stats: dict) -> None:
        curve.extend({"method": method, "seed": seed, "step": step, "metric": k, "value": v} for k, v in stats.items())
        if c.curve_every and step % c.curve_every == 0:
            curve.extend(_curve_rows(model, s, c, method, seed, step))

    train_rl(model, s.model, s.vocab, sampler, rl, seed=seed + 13, on_step=on_step)
    return {"passk": _passk_rows(model, s, c, method, seed), "training": pd.DataFrame(curve, columns=TRAINING_COLUMNS)}


class ReasoningResults(Results):
    """`passk` (pass@k per method, seed, operand length and k) and `training` (reward, share of
    zero-variance groups, level shares and pass@1 along each RL run; the SFT stopping checks)."""

    name = "reasoning"
    table_names = ("passk", "training")

    def claims(self) -> pd.DataFrame:
        from paperlib.experiments.reasoning.analysis import reasoning_claims

        return reasoning_claims(self.tables["passk"], self.config)

    def findings(self) -> pd.DataFrame:
        from paperlib.experiments.reasoning.analysis import reasoning_findings

        return reasoning_findings(self.tables, self.config)


def run(config: Config, *, device: str = "cpu", **options) -> ReasoningResults:
    """Every (seed, method) unit of `config`, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, ReasoningResults, **options)
