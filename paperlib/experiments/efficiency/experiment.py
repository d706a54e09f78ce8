"""Making a trained network smaller: pruning and quantisation.

Three parts, each one unit per seed:

- **pruning**: iterative magnitude pruning of an MLP (LeNet-300-100 by default), a share of the
  remaining weights of each layer per round (the output layer at half that rate), the survivors
  rewound to their initial values before each retraining (Frankle & Carbin's lottery ticket);
  against the same masks with a fresh random initialisation, and against one-shot pruning of the
  dense network to the same per-layer counts (also rewound);
- **quantisation**: post-training quantisation of the trained dense network's weight matrices
  with a symmetric uniform quantiser, one scale per tensor or one per output channel;
- **delta**: a model pre-trained on the first classes and fine-tuned on all of them; only the
  fine-tuning delta (fine-tuned minus pre-trained parameters) is pruned (DARE's random drop and
  rescale, random drop without rescaling, magnitude) or quantised, and added back.

Pruning and quantisation act on the weight matrices of the linear layers; biases stay dense and
in float32, and "share of weights kept" counts weight-matrix entries only. Delta editing acts on
every parameter, biases included, as DARE does.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from paperlib.experiments.datasets import Dataset, cached_dataset
from paperlib.experiments.editing.experiment import apply_vector, task_vector
from paperlib.experiments.findings import Comparison, compare_paired, summarize
from paperlib.experiments.runner import (
    Results,
    Unit,
    config_from,
    make_unit,
    run_experiment,
)
from paperlib.experiments.training import LoopConfig, accuracy, make_mlp, train_loop
from paperlib.store import load_reference

NAME = "efficiency.experiment"
CODE_VERSION = 1

Masks = dict[str, torch.Tensor]
Vector = dict[str, torch.Tensor]

TICKET, REINIT, ONE_SHOT, DENSE = "lottery ticket (rewound)", "random re-init", "one-shot (rewound)", "dense"
PER_TENSOR, PER_CHANNEL, FLOAT32 = "per tensor", "per channel", "float32"
PRE, FINETUNED = "pre-trained", "fine-tuned"
DARE, DROP, MAGNITUDE = "DARE (drop and rescale)", "random drop, no rescale", "magnitude (largest kept)"
DELTA_QUANT, DELTA_SIGN = "quantised delta (per tensor)", "sign x mean |delta| (1 bit)"


# --------------------------------------------------------------------------- pruning


def linear_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weight matrix of every linear layer by parameter name, in layer order (the last is the output layer)."""
    return {f"{name}.weight": m.weight for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def top_magnitude_mask(weight: torch.Tensor, n_keep: int, within: torch.Tensor | None = None) -> torch.Tensor:
    """A boolean mask keeping the `n_keep` entries of largest |weight| (only among `within`, when
    given); ties go to the earlier entry."""
    n = weight.numel()
    if not 0 <= n_keep <= n:
        raise ValueError(f"n_keep must be in [0, {n}], got {n_keep}")
    scores = weight.detach().abs().flatten().clone().cpu()
    if within is not None:
        if int(within.sum()) < n_keep:
            raise ValueError(f"cannot keep {n_keep} entries among {int(within.sum())}")
        scores[~within.flatten().cpu().bool()] = -math.inf
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = torch.zeros(n, dtype=torch.bool)
    keep[order[:n_keep]] = True
    return keep.view(weight.shape).to(weight.device)


def n_pruned(n_remaining: int, rate: float) -> int:
    """How many of `n_remaining` weights a round at `rate` removes: rate * n_remaining, halves rounded up."""
    return int(math.floor(rate * n_remaining + 0.5))


def magnitude_prune(weight: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
    """One round of magnitude pruning: of the weights `mask` keeps, the `n_pruned(kept, rate)` with
    the smallest |weight| are removed. Weights already removed stay removed."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    mask = mask.bool()
    kept = int(mask.sum())
    return top_magnitude_mask(weight, kept - n_pruned(kept, rate), within=mask)


def layer_rates(model: nn.Module, rate: float, output_rate: float) -> dict[str, float]:
    """The pruning rate of every weight matrix: `rate`, and `output_rate` for the output layer."""
    names = list(linear_weights(model))
    return {n: (output_rate if n == names[-1] else rate) for n in names}


def full_masks(model: nn.Module) -> Masks:
    return {n: torch.ones_like(w, dtype=torch.bool) for n, w in linear_weights(model).items()}


def keep_fraction(masks: Masks) -> float:
    """Share of weight-matrix entries the masks keep."""
    return sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())


def apply_masks(model: nn.Module, masks: Masks) -> nn.Module:
    """Zero, in place, every weight the masks remove; returns the model."""
    weights = linear_weights(model)
    with torch.no_grad():
        for name, mask in masks.items():
            weights[name].mul_(mask.to(weights[name].device, weights[name].dtype))
    return model


def rewind(model: nn.Module, initial_state: Mapping[str, torch.Tensor], masks: Masks) -> nn.Module:
    """Reset every parameter of `model` to `initial_state`, then zero the pruned weights (in place)."""
    model.load_state_dict(initial_state)
    return apply_masks(model, masks)


def train_masked(model: nn.Module, masks: Masks, x: torch.Tensor, y: torch.Tensor, loop: LoopConfig, *,
                 seed: int) -> nn.Module:
    """Train with the pruned weights held at zero: the masks are applied before training and after
    every optimiser step, so a pruned weight never comes back."""
    weights = linear_weights(model)
    on_device = {n: m.to(weights[n].device, weights[n].dtype) for n, m in masks.items()}

    def enforce(step: int = 0) -> None:
        with torch.no_grad():
            for n, m in on_device.items():
                weights[n].mul_(m)

    enforce()
    return train_loop(model, x, y, loop, seed=seed, after_step=enforce)


def trained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: w.detach().clone() for n, w in linear_weights(model).items()}


# --------------------------------------------------------------------------- quantisation


def quantise(weight: torch.Tensor, bits: int, granularity: str = PER_TENSOR) -> torch.Tensor:
    """Symmetric uniform quantisation (no zero point) to signed `bits`-bit integers, returned as
    the float values the integers stand for.

    Levels are -q..q with q = 2**(bits-1) - 1 (so 2 bits is ternary: -s, 0, s); the scale is
    s = max|w| / q over the whole tensor ("per tensor") or over each output row ("per channel").
    Each value becomes s * clamp(round(w / s), -q, q), round half to even. An all-zero tensor or
    row stays zero.
    """
    if bits < 2:
        raise ValueError(f"the symmetric quantiser needs at least 2 bits, got {bits}")
    q = 2 ** (bits - 1) - 1
    w = weight.detach()
    if granularity == PER_TENSOR:
        top = w.abs().max()
    elif granularity == PER_CHANNEL:
        top = w.abs().flatten(1).amax(dim=1).view(-1, *([1] * (w.dim() - 1)))
    else:
        raise ValueError(f"granularity must be {PER_TENSOR!r} or {PER_CHANNEL!r}, got {granularity!r}")
    scale = top / q
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.where(scale > 0, torch.clamp(torch.round(w / safe), -q, q) * safe, torch.zeros_like(w))


def quantise_model(model: nn.Module, bits: int, granularity: str) -> nn.Module:
    """A copy of `model` with every linear weight matrix quantised (biases untouched)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for w in linear_weights(out).values():
            w.copy_(quantise(w, bits, granularity))
    return out


def model_size_bits(model: nn.Module, bits: int | None = None, granularity: str = PER_TENSOR) -> int:
    """Storage of the model in bits: float32 everywhere (`bits=None`), or `bits` per weight-matrix
    entry plus one float32 scale per tensor or per output row; biases and other parameters in float32."""
    weights = {id(w) for w in linear_weights(model).values()}
    total = 0
    for p in model.parameters():
        if bits is None or id(p) not in weights:
            total += 32 * p.numel()
        else:
            scales = 1 if granularity == PER_TENSOR else p.shape[0]
            total += bits * p.numel() + 32 * scales
    return total


# --------------------------------------------------------------------------- delta editing


def _draws(delta: Vector, keep: float, seed: int) -> dict[str, torch.Tensor]:
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(v.shape, generator=gen) < keep).to(v.device) for k, v in delta.items()}


def dare(delta: Vector, keep: float, *, seed: int, rescale: bool = True) -> Vector:
    """DARE: each delta entry is kept with probability `keep` (dropped with p = 1 - keep) and the
    kept ones are divided by `keep` = 1 - p, so the expected edited delta equals the delta.
    `rescale=False` drops without rescaling. Same seed, same mask."""
    masks = _draws(delta, keep, seed)
    factor = 1.0 / keep if rescale else 1.0
    return {k: torch.where(masks[k], v * factor, torch.zeros_like(v)) for k, v in delta.items()}


def magnitude_delta(delta: Vector, keep: float) -> Vector:
    """Per tensor, keep the round(keep * n) delta entries of largest magnitude (no rescaling)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return {k: v * top_magnitude_mask(v, int(math.floor(keep * v.numel() + 0.5))).to(v.dtype) for k, v in delta.items()}


def quantise_delta(delta: Vector, bits: int) -> Vector:
    """Every delta tensor through the symmetric per-tensor quantiser (`quantise`)."""
    return {k: quantise(v, bits, PER_TENSOR) for k, v in delta.items()}


def sign_delta(delta: Vector) -> Vector:
    """One bit per entry: sign(delta) times the tensor's mean |delta| (BitDelta's form before its
    scale is distilled)."""
    return {k: torch.sign(v) * v.abs().mean() for k, v in delta.items()}


# --------------------------------------------------------------------------- the experiment


@dataclass(frozen=True)
class Config:
    """The three parts on one data set, one network shape and the same seeds.

    Training follows Frankle & Carbin's LeNet recipe (Adam, lr 1.2e-3, batches of 60, 20% of each
    hidden layer's remaining weights per round, the output layer at 10%) with fewer steps, since
    mnist-5k has 4,000 training images; the initialisation is PyTorch's default, not Glorot.
    """

    dataset: str = "mnist-5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    hidden: tuple[int, ...] = (300, 100)
    steps: int = 1000  # per training run (15 epochs of mnist-5k at batch 60)
    batch_size: int = 60
    lr: float = 1.2e-3
    # pruning
    prune_rate: float = 0.2  # share of each hidden layer's remaining weights removed per round
    output_prune_rate: float = 0.1  # the output layer's rate (half, as in the paper)
    rounds: int = 20  # 0.8**20: 1.2% of the hidden layers' weights left
    baseline_every: int = 3  # re-initialised and one-shot runs at every n-th round and the last
    # quantisation
    bits: tuple[int, ...] = (8, 4, 2)
    # delta editing
    pretrain_classes: int = 5  # the pre-trained model sees classes 0..k-1; fine-tuning sees all
    finetune_steps: int = 300
    finetune_lrs: tuple[float, ...] = (1e-4, 1e-3)  # small and large deltas
    delta_keep: tuple[float, ...] = (0.5, 0.3, 0.1, 0.05, 0.01)  # shares of delta entries kept
    delta_bits: tuple[int, ...] = (8, 4, 2)
    # claims
    small_share: float = 0.2  # "a small share of the weights": at most this share kept
    negligible: float = 0.005  # an accuracy drop up to this (half a point) counts as no loss

    @classmethod
    def quick(cls, **changes) -> "Config":
        """Smoke settings: the 8x8 digits, a small network, few steps and rounds, one seed."""
        base = dict(dataset="digits", seeds=(0,), hidden=(64, 32), steps=80, rounds=4, baseline_every=2,
                    finetune_steps=30, delta_keep=(0.5, 0.1))
        return cls(**{**base, **changes})

    def loop(self) -> LoopConfig:
        return LoopConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr)


# the settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# pruning half of the remaining weights per round (6 rounds reach 1.6%), and 3-bit weights
EXERCISES = ({"prune_rate": 0.5, "rounds": 6}, {"bits": (3,)})


_SHARED = ("dataset", "hidden", "steps", "batch_size", "lr")
_PART_FIELDS = {
    "pruning": _SHARED + ("prune_rate", "output_prune_rate", "rounds", "baseline_every"),
    "quantisation": _SHARED + ("bits",),
    "delta": _SHARED + ("pretrain_classes", "finetune_steps", "finetune_lrs", "delta_keep", "delta_bits"),
}


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """One unit per part and seed; each unit's config holds only the settings its part reads, so
    changing, say, the delta settings leaves the pruning runs in the store."""
    return [make_unit(NAME, {"part": part, **{f: getattr(config, f) for f in fields}}, seed, device)
            for part, fields in _PART_FIELDS.items() for seed in config.seeds]




def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One part for one seed."""
    settings = dict(config)
    part = settings.pop("part")
    cfg = config_from(Config, settings)
    data = cached_dataset(cfg.dataset)
    if part == "pruning":
        return {"pruning": pruning_rows(cfg, data, seed)}
    if part == "quantisation":
        return {"quantisation": quantisation_rows(cfg, data, seed)}
    if part == "delta":
        return {"delta": delta_rows(cfg, data, seed)}
    raise ValueError(f"unknown part {part!r}")


def _reinit_seed(seed: int, round_: int) -> int:
    return 1000 * seed + 500 + round_


def pruning_rows(config: Config, data: Dataset, seed: int) -> pd.DataFrame:
    """Tidy rows (method, seed, round, keep_fraction, metric, value) of one seed's pruning trajectory.

    Round 0 is the dense network. Round r's ticket is pruned from round r-1's trained ticket,
    rewound to the initial weights and retrained; every run trains with the same batches (seed).
    """
    loop = config.loop()
    rows: list[dict] = []

    def add(method: str, round_: int, masks: Masks, model: nn.Module) -> None:
        kept = keep_fraction(masks)
        rows.append(dict(method=method, seed=seed, round=round_, keep_fraction=kept, metric="test accuracy",
                         value=accuracy(model, data.x_test, data.y_test)))
        rows.append(dict(method=method, seed=seed, round=round_, keep_fraction=kept, metric="weights kept",
                         value=float(sum(int(m.sum()) for m in masks.values()))))

    model = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed)
    initial = copy.deepcopy(model.state_dict())
    rates = layer_rates(model, config.prune_rate, config.output_prune_rate)
    masks = full_masks(model)
    train_masked(model, masks, data.x_train, data.y_train, loop, seed=seed)
    add(DENSE, 0, masks, model)
    dense = trained_weights(model)
    last = dense
    for r in range(1, config.rounds + 1):
        masks = {n: magnitude_prune(last[n], masks[n], rates[n]) for n in rates}
        ticket = rewind(make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed), initial, masks)
        train_masked(ticket, masks, data.x_train, data.y_train, loop, seed=seed)
        add(TICKET, r, masks, ticket)
        last = trained_weights(ticket)
        if r % config.baseline_every == 0 or r == config.rounds:
            fresh = make_mlp(data.n_features, config.hidden, data.n_classes, seed=_reinit_seed(seed, r))
            train_masked(fresh, masks, data.x_train, data.y_train, loop, seed=seed)
            add(REINIT, r, masks, fresh)
            once = {n: top_magnitude_mask(dense[n], int(masks[n].sum())) for n in masks}
            shot = rewind(make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed), initial, once)
            train_masked(shot, once, data.x_train, data.y_train, loop, seed=seed)
            add(ONE_SHOT, r, once, shot)
    return pd.DataFrame(rows)


def quantisation_rows(config: Config, data: Dataset, seed: int) -> pd.DataFrame:
    """Tidy rows (method, seed, bits, metric, value): test accuracy, size in KiB and the relative
    RMS error of the weights, for float32 and each bit width per tensor and per channel."""
    model = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed)
    train_loop(model, data.x_train, data.y_train, config.loop(), seed=seed)
    weights = torch.cat([w.detach().flatten() for w in linear_weights(model).values()])
    rows: list[dict] = []

    def add(method: str, bits: int, m: nn.Module, size_bits: int) -> None:
        q = torch.cat([w.detach().flatten() for w in linear_weights(m).values()])
        err = float(torch.linalg.vector_norm(q - weights) / torch.linalg.vector_norm(weights))
        for metric, value in (("test accuracy", accuracy(m, data.x_test, data.y_test)),
                              ("size (KiB)", size_bits / 8 / 1024), ("relative weight error", err)):
            rows.append(dict(method=method, seed=seed, bits=bits, metric=metric, value=float(value)))

    add(FLOAT32, 32, model, model_size_bits(model))
    for bits in config.bits:
        for granularity in (PER_TENSOR, PER_CHANNEL):
            add(granularity, int(bits), quantise_model(model, int(bits), granularity),
                model_size_bits(model, int(bits), granularity))
    return pd.DataFrame(rows)


def delta_rows(config: Config, data: Dataset, seed: int) -> pd.DataFrame:
    """Tidy rows (method, seed, finetune_lr, keep_fraction, bits, metric, value) of delta editing.

    The pre-trained model is trained on classes below `pretrain_classes`, then fine-tuned on all
    classes at each fine-tuning rate; the edited model is pre-trained + edited delta, tested on
    all classes. "mean |delta|" and "mean |pre-trained weight|" rows give the delta's scale.
    """
    k = config.pretrain_classes
    old = data.y_train < k
    pre = make_mlp(data.n_features, config.hidden, data.n_classes, seed=seed)
    train_loop(pre, data.x_train[old], data.y_train[old], config.loop(), seed=seed)
    rows: list[dict] = []

    def add(method: str, flr: float, keep: float, bits: float, metric: str, value: float) -> None:
        rows.append(dict(method=method, seed=seed, finetune_lr=flr, keep_fraction=keep, bits=bits, metric=metric,
                         value=float(value)))

    def test(vector: Vector) -> float:
        return accuracy(apply_vector(pre, vector), data.x_test, data.y_test)

    pre_acc = accuracy(pre, data.x_test, data.y_test)
    pre_old = accuracy(pre, data.x_test[data.y_test < k], data.y_test[data.y_test < k])
    for flr in config.finetune_lrs:
        ft = copy.deepcopy(pre)
        train_loop(ft, data.x_train, data.y_train,
                   LoopConfig(steps=config.finetune_steps, batch_size=config.batch_size, lr=flr), seed=seed + 1)
        tau = task_vector(ft, pre)
        n = sum(v.numel() for v in tau.values())
        add(PRE, flr, 0.0, 32, "test accuracy", pre_acc)
        add(PRE, flr, 0.0, 32, f"accuracy on classes 0-{k - 1}", pre_old)
        add(FINETUNED, flr, 1.0, 32, "test accuracy", accuracy(ft, data.x_test, data.y_test))
        add(FINETUNED, flr, 1.0, 32, "mean |delta|", sum(float(v.abs().sum()) for v in tau.values()) / n)
        add(FINETUNED, flr, 1.0, 32, "mean |pre-trained weight|",
            sum(float(p.detach().abs().sum()) for p in pre.parameters()) / n)
        for i, keep in enumerate(config.delta_keep):
            draw = 1000 * seed + i
            add(DARE, flr, keep, 32, "test accuracy", test(dare(tau, keep, seed=draw)))
            add(DROP, flr, keep, 32, "test accuracy", test(dare(tau, keep, seed=draw, rescale=False)))
            add(MAGNITUDE, flr, keep, 32, "test accuracy", test(magnitude_delta(tau, keep)))
        for bits in config.delta_bits:
            add(DELTA_QUANT, flr, 1.0, int(bits), "test accuracy", test(quantise_delta(tau, int(bits))))
        add(DELTA_SIGN, flr, 1.0, 1, "test accuracy", test(sign_delta(tau)))
    return pd.DataFrame(rows).astype({"keep_fraction": float, "bits": float})


class EfficiencyResults(Results):
    """`pruning`, `quantisation` and `delta`: long tables (method, seed, settings, metric, value)."""

    name = "efficiency"
    table_names = ("pruning", "quantisation", "delta")

    def findings(self) -> pd.DataFrame:
        return efficiency_findings(self.tables["pruning"], self.tables["quantisation"], self.tables["delta"],
                                   small_share=self.config.small_share, negligible=self.config.negligible)


def run(config: Config, *, device: str = "auto", **options) -> EfficiencyResults:
    """Every part for every seed, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, EfficiencyResults, **options)


# --------------------------------------------------------------------------- summaries


def _mean_std(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    s = summarize(df, by)
    s["mean ± std"] = [f"{m:.3f} ± {d:.3f}" if n > 1 else f"{m:.3f}" for m, d, n in zip(s["mean"], s["std"], s["n"])]
    return s


def pruning_table(df: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (mean ± std over seeds) per round and method, with the share of weights kept."""
    acc = df[df["metric"] == "test accuracy"]
    s = _mean_std(acc, ["round", "method"])
    wide = s.pivot(index="round", columns="method", values="mean ± std")
    keep = acc[acc["method"].isin([DENSE, TICKET])].groupby("round")["keep_fraction"].mean()
    wide.insert(0, "weights kept", (keep * 100).map(lambda v: f"{v:.1f}%"))
    cols = ["weights kept"] + [m for m in (DENSE, TICKET, REINIT, ONE_SHOT) if m in wide.columns]
    return wide[cols].fillna("").reset_index()


def quantisation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, size and weight error (means over seeds) per bit width and granularity."""
    s = _mean_std(df, ["bits", "method", "metric"])
    wide = s.pivot_table(index=["bits", "method"], columns="metric", values="mean ± std", aggfunc="first")
    size = s[s["metric"] == "size (KiB)"].set_index(["bits", "method"])["mean"]
    wide["size (KiB)"] = size.map(lambda v: f"{v:.1f}")
    return wide.sort_index(ascending=[False, True]).reset_index()


def delta_table(df: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of every delta edit (mean ± std over seeds), one column per fine-tuning rate."""
    acc = df[df["metric"] == "test accuracy"]
    s = _mean_std(acc, ["method", "keep_fraction", "bits", "finetune_lr"])
    wide = s.pivot_table(index=["method", "keep_fraction", "bits"], columns="finetune_lr", values="mean ± std",
                         aggfunc="first")
    wide.columns = [f"fine-tuning lr {c:g}" for c in wide.columns]
    order = {m: i for i, m in enumerate((FINETUNED, PRE, DARE, DROP, MAGNITUDE, DELTA_QUANT, DELTA_SIGN))}
    wide = wide.reset_index()
    wide["_o"] = wide["method"].map(order)
    return (wide.sort_values(["_o", "keep_fraction", "bits"], ascending=[True, False, False])
            .drop(columns="_o").reset_index(drop=True))


def delta_gain_kept(delta: pd.DataFrame, method: str = DARE) -> pd.DataFrame:
    """How much of what fine-tuning added an edit of the delta keeps: (edited - pre-trained) /
    (fine-tuned - pre-trained) on the test accuracy, from the means over seeds, per share of the
    delta kept (rows, largest first) and fine-tuning rate (columns). 1 keeps all of the gain, 0
    is back at the pre-trained model, below 0 is worse than not fine-tuning at all."""
    acc = delta[(delta["metric"] == "test accuracy") & (delta["bits"] == 32)]
    mean = acc.groupby(["method", "finetune_lr", "keep_fraction"])["value"].mean()
    pre = mean.loc[PRE].groupby("finetune_lr").mean()
    gain = mean.loc[FINETUNED].groupby("finetune_lr").mean() - pre
    edited = mean.loc[method].unstack("finetune_lr")
    out = (edited - pre) / gain
    out.columns = [f"fine-tuning lr {c:g}" for c in out.columns]
    return out.sort_index(ascending=False).rename_axis("share of delta kept").reset_index()


# --------------------------------------------------------------------------- findings


def _paired(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], metric: str) -> Comparison:
    both = pd.concat([a[["seed", "value"]].assign(_side="a"), b[["seed", "value"]].assign(_side="b")])
    return compare_paired(both, "_side", "a", "b", metric=metric, labels=labels)


def _keeps(c: Comparison, negligible: float) -> bool:
    """a has not lost against b: the gap is above -negligible or within the seed spread."""
    return c.gap >= -negligible or c.verdict in ("higher", "within seed spread")


def _loses(c: Comparison, negligible: float) -> bool:
    """a is below b by more than `negligible` and by more than the seed spread."""
    return c.verdict == "lower" and c.gap < -negligible


def _ref(reference: pd.DataFrame, key: str) -> str:
    r = reference.loc[key]
    names = [a.split()[-1] for a in str(r["authors"]).split(",")]
    who = names[0] if len(names) == 1 else " & ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who} ({int(r['year'])}; {r['where']}): {r['claim']}"


def lottery_verdict(pruning: pd.DataFrame, *, small_share: float = 0.2, negligible: float = 0.005) -> dict:
    """Do rewound tickets keep the dense accuracy down to a small share of the weights where random
    re-initialisation of the same masks does not? Returns the verdict ("holds", "fails",
    "unresolved"), a sentence and the numbers behind it.

    A method keeps the dense accuracy at a round when its mean over seeds is not below the dense
    network's by more than `negligible` and the seed spread of the paired gap; it loses it when it
    is below by more than both.
    """
    acc = pruning[pruning["metric"] == "test accuracy"]
    dense = acc[acc["method"] == DENSE]
    n_seeds = dense["seed"].nunique()
    keep = acc[acc["method"] == TICKET].groupby("round")["keep_fraction"].mean()

    def vs_dense(method: str, r: int) -> Comparison:
        part = acc[(acc["method"] == method) & (acc["round"] == r)]
        return _paired(part, dense, (method, DENSE), f"test accuracy at {keep[r]:.1%} of the weights")

    ticket_rounds = sorted(keep.index)
    base_rounds = sorted(acc.loc[acc["method"] == REINIT, "round"].unique())
    ticket_ok = {r: _keeps(vs_dense(TICKET, r), negligible) for r in ticket_rounds}
    reinit = {r: vs_dense(REINIT, r) for r in base_rounds}
    smallest_ticket = None
    for r in ticket_rounds:
        if not ticket_ok[r]:
            break
        smallest_ticket = r
    smallest_reinit = None
    for r in base_rounds:
        if not _keeps(reinit[r], negligible):
            break
        smallest_reinit = r
    small = [r for r in base_rounds if keep[r] <= small_share]
    candidates = [r for r in small if ticket_ok[r]]
    separated = []
    for r in candidates:
        t = acc[(acc["method"] == TICKET) & (acc["round"] == r)]
        f = acc[(acc["method"] == REINIT) & (acc["round"] == r)]
        c = _paired(t, f, (TICKET, REINIT), f"test accuracy at {keep[r]:.1%} of the weights")
        if _loses(reinit[r], negligible) and c.verdict == "higher":
            separated.append((r, c))
    if n_seeds < 2:
        verdict = "unresolved"
    elif separated:
        verdict = "holds"
    elif not candidates:  # no small share at which the tickets keep the dense accuracy
        verdict = "fails"
    elif all(_keeps(reinit[r], negligible) for r in candidates):  # re-initialisation keeps it as well
        verdict = "fails"
    else:
        verdict = "unresolved"
    d = summarize(dense, ["method"]).iloc[0]
    share = lambda r: "no pruned level" if r is None else f"{keep[r]:.1%} of the weights (round {r})"
    text = (f"Dense accuracy {d['mean']:.3f} ± {d['std']:.3f}. Rewound tickets keep it (within {negligible * 100:.1f} points "
            f"or the seed spread) down to {share(smallest_ticket)}; random re-initialisations of the same masks "
            f"down to {share(smallest_reinit)} (of the levels where they were trained).")
    if separated:
        r, c = separated[-1]
        text += f" At the smallest share where they separate: {c.sentence()}"
    elif small:
        r = small[-1]
        t = acc[(acc["method"] == TICKET) & (acc["round"] == r)]
        f = acc[(acc["method"] == REINIT) & (acc["round"] == r)]
        text += " " + _paired(t, f, (TICKET, REINIT), f"test accuracy at {keep[r]:.1%} of the weights").sentence()
    return {"verdict": verdict, "finding": text, "smallest_ticket": None if smallest_ticket is None else float(keep[smallest_ticket]),
            "smallest_reinit": None if smallest_reinit is None else float(keep[smallest_reinit])}


def one_shot_comparison(pruning: pd.DataFrame) -> Comparison:
    """Iterative against one-shot pruning (both rewound) at the sparsest level where both ran."""
    acc = pruning[pruning["metric"] == "test accuracy"]
    r = int(acc.loc[acc["method"] == ONE_SHOT, "round"].max())
    kept = float(acc.loc[(acc["method"] == TICKET) & (acc["round"] == r), "keep_fraction"].mean())
    return _paired(acc[(acc["method"] == TICKET) & (acc["round"] == r)],
                   acc[(acc["method"] == ONE_SHOT) & (acc["round"] == r)], ("iterative", "one-shot"),
                   f"test accuracy at {kept:.1%} of the weights")


def _quant(quantisation: pd.DataFrame, method: str, bits: int) -> pd.DataFrame:
    acc = quantisation[quantisation["metric"] == "test accuracy"]
    return acc[(acc["method"] == method) & (acc["bits"] == bits)]


def eight_bit_verdict(quantisation: pd.DataFrame, *, negligible: float = 0.005) -> dict:
    """Does 8-bit weight quantisation cost almost nothing (at most `negligible` or within the seed spread)?"""
    fp = _quant(quantisation, FLOAT32, 32)
    comps = [_paired(_quant(quantisation, g, 8), fp, (f"8-bit {g}", FLOAT32), "test accuracy")
             for g in (PER_TENSOR, PER_CHANNEL)]
    if fp["seed"].nunique() < 2:
        verdict = "unresolved"
    elif all(_keeps(c, negligible) for c in comps):
        verdict = "holds"
    elif any(_loses(c, negligible) for c in comps):
        verdict = "fails"
    else:
        verdict = "unresolved"
    return {"verdict": verdict, "finding": " ".join(c.sentence() for c in comps)}


def per_channel_verdict(quantisation: pd.DataFrame, bits: int = 4) -> dict:
    """Does per-channel beat per-tensor quantisation at `bits` bits, beyond the seed spread?"""
    c = _paired(_quant(quantisation, PER_CHANNEL, bits), _quant(quantisation, PER_TENSOR, bits),
                (f"{bits}-bit {PER_CHANNEL}", f"{bits}-bit {PER_TENSOR}"), "test accuracy")
    verdict = {"higher": "holds", "lower": "fails"}.get(c.verdict, "unresolved")
    return {"verdict": verdict, "finding": c.sentence()}


def dare_verdict(delta: pd.DataFrame, finetune_lr: float, keep: float = 0.1, *, negligible: float = 0.005) -> dict:
    """Does DARE keep the fine-tuned accuracy with only `keep` of the delta (Yu et al.: 90% dropped)?"""
    acc = delta[(delta["metric"] == "test accuracy") & (delta["finetune_lr"] == finetune_lr)]
    ft = acc[acc["method"] == FINETUNED]
    d = acc[(acc["method"] == DARE) & (acc["keep_fraction"] == keep)]
    c = _paired(d, ft, (f"DARE keeping {keep:.0%}", FINETUNED), f"test accuracy (fine-tuning lr {finetune_lr:g})")
    if ft["seed"].nunique() < 2:
        verdict = "unresolved"
    elif _keeps(c, negligible):
        verdict = "holds"
    elif _loses(c, negligible):
        verdict = "fails"
    else:
        verdict = "unresolved"
    scale = delta[(delta["finetune_lr"] == finetune_lr) & (delta["method"] == FINETUNED)]
    mean_delta = scale.loc[scale["metric"] == "mean |delta|", "value"].mean()
    mean_w = scale.loc[scale["metric"] == "mean |pre-trained weight|", "value"].mean()
    text = f"Mean |delta| {mean_delta:.4f} against mean |pre-trained weight| {mean_w:.4f}. {c.sentence()}"
    return {"verdict": verdict, "finding": text}


def _delta_pair(delta: pd.DataFrame, flr: float, a: tuple, b: tuple, labels: tuple[str, str]) -> Comparison:
    acc = delta[(delta["metric"] == "test accuracy") & (delta["finetune_lr"] == flr)]
    pick = lambda m, k, bits: acc[(acc["method"] == m) & (acc["keep_fraction"] == k) & (acc["bits"] == bits)]
    return _paired(pick(*a), pick(*b), labels, f"test accuracy (fine-tuning lr {flr:g})")


def _short(c: Comparison) -> str:
    """'a 0.912 vs b 0.930 (lower beyond the seed spread)' or '(within the seed spread)'."""
    if c.verdict == "single seed":
        how = "one seed"
    elif c.decided:
        how = f"{c.verdict} beyond the seed spread {c.spread:.3f}"
    else:
        how = f"within the seed spread {c.spread:.3f}"
    return f"{c.label_a} {c.mean_a:.3f} vs {c.label_b} {c.mean_b:.3f} ({how})"


def _levels_sentence(delta: pd.DataFrame, flr: float, a: str, b: str) -> str:
    """`a` against `b` at every share of the delta kept, largest first."""
    keeps = sorted(set(delta.loc[delta["method"] == a, "keep_fraction"]) & set(delta.loc[delta["method"] == b, "keep_fraction"]),
                   reverse=True)
    parts = [f"{k:.0%} kept: " + _short(_delta_pair(delta, flr, (a, k, 32), (b, k, 32), (a, b))) for k in keeps]
    return "; ".join(parts) + "."


def efficiency_findings(pruning: pd.DataFrame, quantisation: pd.DataFrame, delta: pd.DataFrame, *,
                        small_share: float = 0.2, negligible: float = 0.005,
                        reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Measured sentences (key, verdict, finding), each claim beside the paper that makes it."""
    ref = (reference if reference is not None else load_reference("efficiency")).set_index("key")
    rows = []
    lt = lottery_verdict(pruning, small_share=small_share, negligible=negligible)
    rows.append(("lottery_ticket", lt["verdict"],
                 f"Claim: rewound tickets keep the dense accuracy down to a small share (≤ {small_share:.0%}) of the "
                 f"weights where random re-initialisation does not — {lt['verdict']}. {lt['finding']} "
                 f"{_ref(ref, 'lottery_reinit')}"))
    c = one_shot_comparison(pruning)
    v = {"higher": "holds", "lower": "fails"}.get(c.verdict, "unresolved")
    rows.append(("iterative_vs_one_shot", v, f"Claim: iterative pruning finds tickets at smaller sizes than one-shot "
                 f"pruning — {v}. {c.sentence()} {_ref(ref, 'lottery_one_shot')}"))
    bits = set(quantisation["bits"])
    if 8 in bits:
        e = eight_bit_verdict(quantisation, negligible=negligible)
        rows.append(("eight_bit", e["verdict"], f"Claim: 8-bit weights cost almost nothing (at most {negligible * 100:.1f} "
                     f"points or within the seed spread) — {e['verdict']}. {e['finding']} {_ref(ref, 'quant_8bit')}"))
    if 4 in bits:
        p = per_channel_verdict(quantisation, 4)
        rows.append(("per_channel_4bit", p["verdict"], f"Claim: per-channel 4-bit beats per-tensor 4-bit — {p['verdict']}. "
                     f"{p['finding']} {_ref(ref, 'quant_per_channel')}"))
    if 2 in bits:
        p2 = per_channel_verdict(quantisation, 2)
        rows.append(("per_channel_2bit", "measured", f"At 2 bits (ternary weights): {p2['finding']}"))
    keep = 0.1 if 0.1 in set(delta["keep_fraction"]) else float(delta.loc[delta["method"] == DARE, "keep_fraction"].min())
    for flr in sorted(delta["finetune_lr"].unique()):
        d = dare_verdict(delta, flr, keep, negligible=negligible)
        rows.append((f"dare_lr_{flr:g}", d["verdict"], f"Claim: DARE keeps the fine-tuned accuracy with {1 - keep:.0%} of "
                     f"the delta dropped (fine-tuning lr {flr:g}) — {d['verdict']}. {d['finding']}"))
        rows.append((f"rescale_lr_{flr:g}", "measured", f"DARE against the same random drop without rescaling "
                     f"(fine-tuning lr {flr:g}): {_levels_sentence(delta, flr, DARE, DROP)}"))
        rows.append((f"magnitude_lr_{flr:g}", "measured", f"Keeping the largest delta entries against DARE "
                     f"(fine-tuning lr {flr:g}): {_levels_sentence(delta, flr, MAGNITUDE, DARE)}"))
        qb = sorted(delta.loc[delta["method"] == DELTA_QUANT, "bits"].unique(), reverse=True)
        if qb:
            parts = [_delta_pair(delta, flr, (DELTA_QUANT, 1.0, b), (FINETUNED, 1.0, 32), (f"{b:g}-bit delta", FINETUNED))
                     for b in qb]
            rows.append((f"delta_bits_lr_{flr:g}", "measured", f"Quantised deltas (fine-tuning lr {flr:g}), against the "
                         f"fine-tuned model: " + "; ".join(_short(c) for c in parts) + "."))
        s = _delta_pair(delta, flr, (DELTA_SIGN, 1.0, 1), (FINETUNED, 1.0, 32), (DELTA_SIGN, FINETUNED))
        rows.append((f"sign_lr_{flr:g}", "measured", f"A 1-bit delta, sign times the mean |delta| of each tensor "
                     f"(fine-tuning lr {flr:g}): {_short(s)}."))
    rows.append(("dare_reference", "reference", _ref(ref, "dare")))
    rows.append(("dare_large_delta_reference", "reference", _ref(ref, "dare_large_delta")))
    rows.append(("delta_unified_reference", "reference", _ref(ref, "delta_unified")))
    return pd.DataFrame(rows, columns=["key", "verdict", "finding"])
