"""Preference optimisation on a tiny language model whose ideal behaviour is known.

The world: a reference model trained by SFT on strings of a fixed bigram grammar, and a gold
reward r*(y) computed from the string. Preference pairs are two reference samples ordered by a
Bradley-Terry draw on r*. On the same pairs: a learned reward model used by best-of-n and by
PPO (KL penalty beta to the reference), DPO, IPO and RRHF. Every policy is measured by its gold
reward, its proxy (reward-model) reward and its KL to the reference. A one-step (bandit) case
checks DPO against the closed-form optimum of the KL-regularised objective.

One unit is one (seed, method); the reference model, the pairs and the reward model of a seed
are computed once per process and shared by that seed's units.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from paperlib.experiments.lm import (
    BOS,
    BigramGrammar,
    LMConfig,
    TinyLM,
    Vocab,
    sample,
    sft,
)
from paperlib.experiments.preference import bandit as bandit_case
from paperlib.experiments.preference.methods import (
    GoldReward,
    Pairs,
    PPOConfig,
    ScalarLM,
    best_of_n_curve,
    evaluate_policy,
    label_pairs,
    ppo,
    train_on_pairs,
    train_reward_model,
)
from paperlib.experiments.runner import (
    Results,
    Unit,
    config_from,
    make_unit,
    run_experiment,
)
from paperlib.experiments.training import LoopConfig

NAME = "preference.experiment"
CODE_VERSION = 1

METHODS = ("best-of-n", "PPO", "DPO", "IPO", "RRHF", "bandit")


@dataclass(frozen=True)
class Config:
    """The world (grammar, gold reward), the models, the pairs and every method's settings."""

    seeds: tuple[int, ...] = (0, 1, 2)
    # the world: base distribution and gold reward
    grammar_seed: int = 0  # draws the bigram table of the base distribution (the same for every seed)
    letters: str = "abcdefgh"
    max_length: int = 12  # longest string of the base distribution
    good_letters: str = "ae"  # each is worth +1 to the gold reward
    target_length: int = 8  # each letter past this costs length_penalty
    length_penalty: float = 1.0
    max_new_tokens: int = 16  # policies may write longer strings than the base distribution
    # the models
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    sft_examples: int = 5000
    sft_steps: int = 400
    sft_lr: float = 3e-3
    batch_size: int = 64
    # preferences and the reward model
    pairs: int = 2000
    label_noise: float = 0.0  # share of pair labels flipped after the Bradley-Terry draw
    rm_epochs: int = 3
    rm_lr: float = 1e-3
    eval_samples: int = 1000  # samples per final policy evaluation
    curve_samples: int = 300  # samples per evaluation along a training run
    # best-of-n
    bon_pool: int = 10000  # reference samples the best-of-n estimator draws on
    bon_n: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    bon_rm_pairs: tuple[int, ...] = (125, 500)  # further reward models on the first k pairs only
    # PPO, DPO, IPO, RRHF
    betas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # KL strength of PPO and DPO (wide enough for both to cover the KL range)
    ppo_iterations: int = 80
    ppo_batch: int = 64
    ppo_epochs: int = 2
    ppo_minibatch: int = 32
    ppo_lr: float = 3e-4
    ppo_clip: float = 0.2
    ppo_gae_lambda: float = 0.95
    ppo_eval_every: int = 20
    pair_batch: int = 32  # pairs per step of DPO, IPO and RRHF
    dpo_steps: int = 200  # also IPO's (200 steps of 32 pairs: 3.2 passes over 2,000 pairs)
    dpo_lr: float = 5e-4  # also IPO's and RRHF's
    dpo_eval_every: int = 40
    ipo_taus: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5)
    rrhf_steps: tuple[int, ...] = (25, 50, 100, 200)  # checkpoints evaluated along one RRHF run
    rrhf_ft_weight: float = 1.0
    # the one-step case
    bandit_pairs: tuple[int, ...] = (30, 100, 300, 1000, 3000, 10000, 30000)
    bandit_betas: tuple[float, ...] = (0.5, 1.0)
    bandit_noise: tuple[float, ...] = (0.0, 0.2)
    bandit_iterations: int = 200  # L-BFGS iterations of the tabular DPO fit

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: one seed, a tiny model, short runs, two strengths (numbers not meaningful)."""
        base = dict(seeds=(0,), d_model=32, sft_examples=500, sft_steps=40, pairs=200, rm_epochs=1, eval_samples=100,
                    curve_samples=50, bon_pool=500, bon_n=(1, 4, 16, 64), bon_rm_pairs=(50,), betas=(0.1, 0.5), ppo_iterations=4,
                    ppo_batch=16, ppo_minibatch=16, ppo_epochs=1, ppo_eval_every=2, dpo_steps=10, dpo_eval_every=5,
                    ipo_taus=(0.1,), rrhf_steps=(5, 10), bandit_pairs=(30, 300), bandit_betas=(1.0,),
                    bandit_noise=(0.0,), bandit_iterations=50)
        return cls(**{**base, **changes})


# the settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# 20% of the pair labels flipped, with two KL strengths and one IPO margin to keep the run short
EXERCISES = ({"label_noise": 0.2, "betas": (0.1, 1.0), "ipo_taus": (0.1,)},)


COMMON = ("grammar_seed", "letters", "max_length", "good_letters", "target_length", "length_penalty", "max_new_tokens",
          "d_model", "n_layer", "n_head", "sft_examples", "sft_steps", "sft_lr", "batch_size", "pairs", "label_noise",
          "rm_epochs", "rm_lr", "eval_samples", "curve_samples")
OWN = {
    "best-of-n": ("bon_pool", "bon_n", "bon_rm_pairs"),
    "PPO": ("betas", "ppo_iterations", "ppo_batch", "ppo_epochs", "ppo_minibatch", "ppo_lr", "ppo_clip",
            "ppo_gae_lambda", "ppo_eval_every"),
    "DPO": ("betas", "pair_batch", "dpo_steps", "dpo_lr", "dpo_eval_every"),
    "IPO": ("ipo_taus", "pair_batch", "dpo_steps", "dpo_lr", "dpo_eval_every"),
    "RRHF": ("rrhf_steps", "rrhf_ft_weight", "pair_batch", "dpo_lr"),
    "bandit": ("grammar_seed", "letters", "max_length", "bandit_pairs", "bandit_betas", "bandit_noise", "bandit_iterations"),
}


def units(config: Config, *, device: str = "cpu") -> list[Unit]:
    """One unit per (seed, method); each carries only the settings its numbers depend on."""
    settings = asdict(config)
    out = []
    for seed in config.seeds:
        for method in METHODS:
            keys = OWN[method] if method == "bandit" else COMMON + OWN[method]
            out.append(make_unit(NAME, {"method": method, **{k: settings[k] for k in keys}}, seed, device))
    return out




# --------------------------------------------------------------------------- the shared world of one seed


@dataclass(frozen=True)
class World:
    """Everything a seed's methods share: vocabulary, gold reward, reference model, pairs and reward model."""

    vocab: Vocab
    gold: GoldReward
    grammar: BigramGrammar
    reference: TinyLM
    pairs: Pairs
    reward_model: ScalarLM
    rm_history: pd.DataFrame
    held_out: Pairs
    width: int


def grammar_of(c: Config) -> BigramGrammar:
    return BigramGrammar(letters=c.letters, seed=c.grammar_seed, max_length=c.max_length)


def build_world(c: Config, seed: int) -> World:
    """The SFT reference, the preference pairs sampled from it and labelled by the gold reward, a
    held-out set of pairs ordered by the gold reward itself (ties dropped) and the reward model."""
    grammar = grammar_of(c)
    vocab = Vocab(c.letters)
    gold = GoldReward(c.good_letters, c.target_length, c.length_penalty)
    width = c.max_new_tokens + 2
    lm = LMConfig(len(vocab), block_size=width, n_layer=c.n_layer, n_head=c.n_head, d_model=c.d_model)
    reference = TinyLM(lm, seed=seed)
    tokens, mask = vocab.batch(grammar.sample(c.sft_examples, seed=seed + 1), length=width)
    sft(reference, tokens, mask, LoopConfig(steps=c.sft_steps, batch_size=c.batch_size, lr=c.sft_lr), seed=seed)
    texts = _sample_texts(reference, vocab, 2 * c.pairs, seed + 2, c.max_new_tokens)
    chosen, rejected = label_pairs(texts[: c.pairs], texts[c.pairs :], gold, noise=c.label_noise, seed=seed + 3)
    pairs = Pairs.from_texts(vocab, chosen, rejected, width)
    held = _sample_texts(reference, vocab, 2000, seed + 4, c.max_new_tokens)
    a, b = held[:1000], held[1000:]
    ga, gb = gold(a), gold(b)
    keep = ga != gb
    held_out = Pairs.from_texts(vocab, [x if gx > gy else y for x, y, gx, gy, k in zip(a, b, ga, gb, keep) if k],
                                [y if gx > gy else x for x, y, gx, gy, k in zip(a, b, ga, gb, keep) if k], width)
    rm, history = train_reward_model(reference, pairs, epochs=c.rm_epochs, batch_size=c.batch_size, lr=c.rm_lr,
                                     seed=seed + 5, held_out=held_out)
    return World(vocab, gold, grammar, reference, pairs, rm, history.assign(rm_pairs=c.pairs), held_out, width)


def world_examples(c: Config, n: int = 8, *, seed: int = 0) -> pd.DataFrame:
    """n strings of the base distribution (the grammar the reference model is trained on) with
    their length, good letters and gold reward."""
    gold = GoldReward(c.good_letters, c.target_length, c.length_penalty)
    texts = grammar_of(c).sample(n, seed=seed)
    return pd.DataFrame({"string": texts, "length": [len(t) for t in texts],
                         "good letters": [sum(ch in c.good_letters for ch in t) for t in texts], "gold reward": gold(texts)})


def base_distribution_summary(c: Config, n: int = 5000, *, seed: int = 0) -> pd.DataFrame:
    """Mean length, share of strings longer than the target length and mean gold reward of the base distribution."""
    ex = world_examples(c, n, seed=seed)
    return pd.DataFrame({"mean length": [ex["length"].mean()], f"share longer than {c.target_length}":
                         [(ex["length"] > c.target_length).mean()], "mean gold reward": [ex["gold reward"].mean()],
                         "best possible gold reward": [GoldReward(c.good_letters, c.target_length, c.length_penalty).best(c.max_new_tokens)]})


def _sample_texts(model, vocab: Vocab, n: int, seed: int, max_new_tokens: int) -> list[str]:
    s = sample(model, [[BOS]] * n, max_new_tokens=max_new_tokens, seed=seed)
    return [vocab.decode(r) for r in s.responses()]


@lru_cache(maxsize=2)
def _world(common_json: str, seed: int) -> World:
    return build_world(config_from(Config, json.loads(common_json)), seed)


def world(c: Config, seed: int) -> World:
    """The seed's world, computed once per process (its models must not be trained further: copy them)."""
    settings = asdict(c)
    return _world(json.dumps({k: settings[k] for k in COMMON}, sort_keys=True), seed)


# --------------------------------------------------------------------------- the units


def _rows(method: str, seed: int, knob: str, setting: float, metrics: dict, **extra) -> list[dict]:
    return [{"method": method, "seed": seed, "knob": knob, "setting": float(setting), **extra, "metric": k,
             "value": float(v)} for k, v in metrics.items()]


def _evaluate(policy, w: World, c: Config, seed: int, n: int | None = None) -> dict:
    return evaluate_policy(policy, w.reference, w.reward_model, w.gold, w.vocab, n=n or c.eval_samples,
                           seed=seed + 100, max_new_tokens=c.max_new_tokens)


def reference_rows(w: World, c: Config, seed: int) -> list[dict]:
    return _rows("reference", seed, "none", 0.0, _evaluate(w.reference, w, c, seed), rm_pairs=c.pairs)


def best_of_n_rows(w: World, c: Config, seed: int) -> tuple[list[dict], pd.DataFrame]:
    """Best-of-n against the main reward model and against reward models trained on fewer pairs."""
    pool = sample(w.reference, [[BOS]] * c.bon_pool, max_new_tokens=c.max_new_tokens, seed=seed + 6)
    gold = w.gold([w.vocab.decode(r) for r in pool.responses()])
    rows, history = [], [w.rm_history]
    models = {c.pairs: w.reward_model}
    for k in sorted(set(c.bon_rm_pairs) - {c.pairs}):
        rm, hist = train_reward_model(w.reference, w.pairs.subset(slice(0, k)), epochs=c.rm_epochs,
                                      batch_size=c.batch_size, lr=c.rm_lr, seed=seed + 5, held_out=w.held_out)
        models[k] = rm
        history.append(hist.assign(rm_pairs=k))
    for k, rm in sorted(models.items()):
        with torch.no_grad():
            proxy = rm.score(pool.tokens, pool.mask).numpy().astype(float)
        curve = best_of_n_curve(proxy, gold, [n for n in c.bon_n if n <= c.bon_pool])
        for r in curve.itertuples():
            rows += _rows("best-of-n", seed, "n", r.n, {"gold_reward": r.gold_reward, "proxy_reward": r.proxy_reward,
                                                        "kl_to_ref": r.kl_to_ref}, rm_pairs=k)
    hist = pd.concat(history, ignore_index=True).melt(id_vars=["rm_pairs", "epoch"], var_name="metric", value_name="value")
    return rows, hist.assign(method="reward model", seed=seed)[["method", "seed", "rm_pairs", "epoch", "metric", "value"]]


def ppo_rows(w: World, c: Config, seed: int) -> tuple[list[dict], list[dict]]:
    final, curve = [], []
    rm = w.reward_model
    for beta in c.betas:
        policy = copy.deepcopy(w.reference)
        critic = copy.deepcopy(rm)  # the value model starts from the reward model
        cfg = PPOConfig(beta=beta, iterations=c.ppo_iterations, batch_size=c.ppo_batch, epochs=c.ppo_epochs,
                        minibatch=c.ppo_minibatch, lr=c.ppo_lr, clip=c.ppo_clip, gae_lambda=c.ppo_gae_lambda,
                        max_new_tokens=c.max_new_tokens, eval_every=c.ppo_eval_every)

        def on_eval(it, beta=beta, policy=policy):
            curve.extend(_rows("PPO", seed, "beta", beta, _evaluate(policy, w, c, seed, c.curve_samples), step=it))

        ppo(policy, w.reference, lambda t, m: rm.score(t, m), critic, cfg, seed=seed + 7, on_eval=on_eval)
        final += _rows("PPO", seed, "beta", beta, _evaluate(policy, w, c, seed), rm_pairs=c.pairs)
    return final, curve


def pairwise_rows(method: str, w: World, c: Config, seed: int) -> tuple[list[dict], list[dict]]:
    """DPO over `betas`, IPO over `ipo_taus` (each point the end of a run, with checkpoints along
    it), or one RRHF run evaluated at the `rrhf_steps` checkpoints."""
    final, curve = [], []
    if method == "RRHF":
        policy = copy.deepcopy(w.reference)
        ckpt = lambda step: final.extend(_rows("RRHF", seed, "steps", step, _evaluate(policy, w, c, seed), rm_pairs=c.pairs))
        train_on_pairs(policy, w.reference, w.pairs, "rrhf", c.rrhf_ft_weight, steps=max(c.rrhf_steps),
                       batch_size=c.pair_batch, lr=c.dpo_lr, seed=seed + 8, checkpoints=c.rrhf_steps, on_checkpoint=ckpt)
        return final, curve
    knob, strengths = ("beta", c.betas) if method == "DPO" else ("tau", c.ipo_taus)
    every = [s for s in range(c.dpo_eval_every, c.dpo_steps, c.dpo_eval_every)] if c.dpo_eval_every else []
    for strength in strengths:
        policy = copy.deepcopy(w.reference)

        def ckpt(step, strength=strength, policy=policy):
            curve.extend(_rows(method, seed, knob, strength, _evaluate(policy, w, c, seed, c.curve_samples), step=step))

        train_on_pairs(policy, w.reference, w.pairs, method.lower(), strength, steps=c.dpo_steps, batch_size=c.pair_batch,
                       lr=c.dpo_lr, seed=seed + 8, checkpoints=every, on_checkpoint=ckpt)
        final += _rows(method, seed, knob, strength, _evaluate(policy, w, c, seed), rm_pairs=c.pairs)
    return final, curve


def bandit_rows(c: Config, seed: int) -> pd.DataFrame:
    """DPO on the one-step case: pi_ref is the base distribution's first letter, the reward of each
    letter is drawn from N(0, 1) with the seed; KL(pi_DPO || pi*) for each number of pairs, beta and
    label noise, and KL(pi* || pi_ref) for scale."""
    first, _ = grammar_of(c).tables()
    pi_ref = first / first.sum()
    reward = np.random.default_rng(seed + 9).normal(size=len(pi_ref))
    rows = []
    for beta in c.bandit_betas:
        optimum = bandit_case.kl_optimum(pi_ref, reward, beta)
        for noise in c.bandit_noise:
            for n in c.bandit_pairs:
                ch, rj = bandit_case.sample_pairs(pi_ref, reward, n, noise=noise, seed=seed + 10 + n)
                pi = bandit_case.dpo_bandit(pi_ref, ch, rj, beta, max_iter=c.bandit_iterations)
                metrics = {"kl_to_optimum": bandit_case.kl_divergence(pi, optimum),
                           "kl_optimum_to_ref": bandit_case.kl_divergence(optimum, pi_ref)}
                rows += [{"method": "DPO", "seed": seed, "beta": float(beta), "label_noise": float(noise), "pairs": int(n),
                          "metric": k, "value": float(v)} for k, v in metrics.items()]
    return pd.DataFrame(rows)


FRONTIER_COLUMNS = ["method", "seed", "knob", "setting", "rm_pairs", "metric", "value"]
TRAINING_COLUMNS = ["method", "seed", "knob", "setting", "step", "metric", "value"]


def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    method = config["method"]
    c = config_from(Config, config)
    if method == "bandit":
        return {"bandit": bandit_rows(c, seed)}
    w = world(c, seed)
    tables: dict[str, pd.DataFrame] = {}
    if method == "best-of-n":
        rows, hist = best_of_n_rows(w, c, seed)
        tables["frontier"] = pd.DataFrame(reference_rows(w, c, seed) + rows, columns=FRONTIER_COLUMNS)
        tables["reward_model"] = hist
    elif method == "PPO":
        final, curve = ppo_rows(w, c, seed)
        tables["frontier"] = pd.DataFrame(final, columns=FRONTIER_COLUMNS)
        tables["training"] = pd.DataFrame(curve, columns=TRAINING_COLUMNS)
    elif method in ("DPO", "IPO", "RRHF"):
        final, curve = pairwise_rows(method, w, c, seed)
        tables["frontier"] = pd.DataFrame(final, columns=FRONTIER_COLUMNS)
        tables["training"] = pd.DataFrame(curve, columns=TRAINING_COLUMNS)
    else:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    return tables


class PreferenceResults(Results):
    """`frontier` (final gold, proxy, KL per method, seed and setting), `training` (the same along
    PPO, DPO and IPO runs), `reward_model` (pair accuracy per epoch) and `bandit` (the exact check)."""

    name = "preference"
    table_names = ("frontier", "training", "reward_model", "bandit")

    def claims(self) -> pd.DataFrame:
        from paperlib.experiments.preference.analysis import preference_claims

        return preference_claims(self.tables["frontier"])

    def findings(self) -> pd.DataFrame:
        from paperlib.experiments.preference.analysis import preference_findings

        return preference_findings(self.tables, self.config)


def gold_at_matched_kl(frontier: pd.DataFrame, kls=(0.25, 0.5, 1.0, 2.0, 4.0)) -> pd.DataFrame:
    """Every method's gold reward at the same KL to the reference, one column per KL in `kls`:
    per seed, linearly interpolated between the method's settings sorted by KL (the reference as
    the point at KL 0; best-of-n against the main reward model), then mean ± std over seeds. A
    cell stays empty where some seed's settings never reached that KL (no extrapolation)."""
    from paperlib.experiments.findings import summarize
    from paperlib.experiments.preference.analysis import gold_at_kl, main_rm_pairs, points

    main = main_rm_pairs(frontier)
    part = frontier[(frontier["method"] != "best-of-n") | (frontier["rm_pairs"] == main)]
    grid = np.asarray(kls, float)
    rows = []
    for method in [m for m in METHODS if m in set(part["method"])]:
        reach = points(part, method).groupby("seed")["kl_to_ref"].max()
        at = gold_at_kl(part, method, grid).assign(method=method)
        rows.append(at[at["kl"] <= at["seed"].map(reach) + 1e-12])
    if not rows:
        return pd.DataFrame(columns=["method", *[f"KL {k:g}" for k in grid]])
    s = summarize(pd.concat(rows, ignore_index=True), ["method", "kl"])
    n_seeds = part["seed"].nunique()
    s = s[s["n"] == n_seeds]
    s["cell"] = [f"{m:.2f} ± {d:.2f}" for m, d in zip(s["mean"], s["std"])]
    wide = s.pivot_table(index="method", columns="kl", values="cell", aggfunc="first")
    wide = wide.reindex(index=[m for m in METHODS if m in set(part["method"])], columns=grid)
    wide.columns = [f"KL {k:g}" for k in grid]
    return wide.astype(object).fillna("").reset_index()


def run(config: Config, *, device: str = "cpu", **options) -> PreferenceResults:
    """Every (seed, method) unit of `config`, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, PreferenceResults, **options)
