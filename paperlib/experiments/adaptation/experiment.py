"""Adapting a small pre-trained language model to a second text domain: full fine-tuning against
LoRA at several ranks. What each learns of the new domain, what it forgets of the old one, what
it costs, and the spectrum of the full fine-tuning update Delta W = W - W0.

The two domains are read offline and are the same on every run:

- **old** (pre-training): English prose, the raw text lines of the shipped corpus file
  (`paperlib.paths.default_corpus_path()`: the titles and abstracts of 257 papers, with the
  listing page's few boilerplate lines);
- **new** (adaptation): Python source, a fixed list of pure-Python modules of the standard
  library, read from the running interpreter (`Config.python_modules`; the text differs a
  little between Python versions, so the shipped numbers belong to the Python they name).

Each domain's text is normalised to printable ASCII plus newlines (accents decomposed and dropped,
tabs as four spaces), cut into pieces of whole lines of at least `piece_chars` characters, and
piece i goes to the test split when i % 10 == 9, to the validation split when i % 10 == 8 and to
training otherwise. Training batches are windows of `block_size + 1` characters at offsets drawn
from a seed; a split's loss is the mean next-character cross-entropy (nats per character) over
`eval_windows` windows at evenly spaced, fixed offsets.

Units: one pre-training run per seed (the base model; its tables hold the pre-training curve and
the rank of W - W_init), and one fine-tuning run per method (full, or LoRA at one rank), learning
rate and seed. Every fine-tuning unit recomputes its seed's base model (cached per process), so a
seed's units start from the same weights however they are scheduled, and they all see the same
batches. Each method's learning rate is the one with the lowest mean new-domain *validation* loss
at the end of fine-tuning; the claims use the test split at that rate.
"""
from __future__ import annotations

import functools
import hashlib
import math
import sysconfig
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from paperlib.experiments.adaptation.lora import (
    TARGET_LABELS,
    add_lora,
    effective_rank,
    energy_rank,
    gaussian_effective_rank,
    singular_values,
    target_weights,
    trainable_parameters,
)
from paperlib.experiments.findings import Comparison, compare_paired, summarize
from paperlib.experiments.lm import LMConfig, TinyLM, Vocab
from paperlib.experiments.runner import (
    Results,
    Unit,
    config_from,
    make_unit,
    run_experiment,
)
from paperlib.experiments.training import LoopConfig, device, train_loop
from paperlib.paths import default_corpus_path
from paperlib.store import load_reference

NAME = "adaptation.experiment"
CODE_VERSION = 3

PRETRAINED, PRETRAINING, FULL, LORA = "pre-trained", "pre-training", "full fine-tuning", "LoRA"
OLD, NEW = "abstracts", "python"
NEW_LOSS, OLD_LOSS, FORGETTING, VALID_LOSS = ("new-domain loss", "old-domain loss", "forgetting",
                                              "new-domain validation loss")
ERANK, ERANK90 = "effective rank", "rank for 90% of the energy"

SYMBOLS = "\n" + "".join(chr(i) for i in range(32, 127))  # newline and printable ASCII
VOCAB = Vocab(SYMBOLS)

# pure-Python standard-library modules present in CPython 3.10 to 3.13 (about 570 KB of source)
PYTHON_MODULES = ("abc", "bisect", "calendar", "cmd", "codeop", "colorsys", "contextlib", "copy", "csv",
                  "dataclasses", "fnmatch", "fractions", "functools", "glob", "graphlib", "heapq", "hmac",
                  "linecache", "netrc", "numbers", "operator", "pprint", "queue", "random", "reprlib",
                  "sched", "secrets", "shlex", "statistics", "string", "textwrap", "timeit", "tokenize",
                  "types", "weakref")


# --------------------------------------------------------------------------- text domains


def normalise(text: str) -> str:
    """Printable ASCII and newlines only: accents decomposed and dropped, other non-ASCII characters
    dropped, tabs as four spaces, Windows and old Mac line ends as newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return text.translate(_DROP_CONTROL)


_DROP_CONTROL = {i: None for i in range(32) if i != 10} | {127: None}


def stdlib_folder() -> Path:
    """The running interpreter's standard-library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def python_documents(modules: Sequence[str]) -> list[str]:
    """The source of each named standard-library module (`<stdlib>/<name>.py`), in the order given."""
    folder = stdlib_folder()
    out = []
    for name in modules:
        path = folder / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(f"standard-library module {name!r} not found at {path}; "
                                    f"choose modules this Python ships (Config.python_modules)")
        out.append(path.read_text(encoding="utf-8"))
    return out


def abstract_documents() -> list[str]:
    """The shipped corpus file as one plain-text document (titles and abstracts, one per line)."""
    return [default_corpus_path().read_text(encoding="utf-8")]


@functools.lru_cache(maxsize=8)
def texts_fingerprint(python_modules: tuple[str, ...]) -> str:
    """A hash of the texts the runs read from this machine (the corpus file and the chosen modules of
    the running Python's standard library, which change between Python versions): a unit's key
    records it, so runs on other texts are never taken for these."""
    digest = hashlib.sha256()
    for doc in abstract_documents() + python_documents(python_modules):
        digest.update(doc.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def cut_pieces(documents: Sequence[str], min_chars: int) -> list[str]:
    """Each document cut into runs of whole lines of at least `min_chars` characters (a document's
    last piece may be shorter); empty lines are kept inside pieces."""
    if min_chars < 1:
        raise ValueError(f"min_chars must be >= 1, got {min_chars}")
    out: list[str] = []
    for doc in documents:
        lines, size = [], 0
        for line in doc.split("\n"):
            lines.append(line)
            size += len(line) + 1
            if size >= min_chars:
                out.append("\n".join(lines))
                lines, size = [], 0
        if any(s.strip() for s in lines):
            out.append("\n".join(lines))
    return out


def split_pieces(pieces: Sequence[str]) -> dict[str, str]:
    """Piece i to "test" when i % 10 == 9, to "valid" when i % 10 == 8, else to "train"; each
    split's pieces joined by newlines in their order."""
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for i, p in enumerate(pieces):
        parts["test" if i % 10 == 9 else "valid" if i % 10 == 8 else "train"].append(p)
    return {k: "\n".join(v) for k, v in parts.items()}


_TABLE = np.full(128, -1, dtype=np.int64)
for _c in SYMBOLS:
    _TABLE[ord(_c)] = VOCAB.id(_c)


def encode(text: str) -> torch.Tensor:
    """Token ids (VOCAB) of normalised text, as a 1-D long tensor."""
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    ids = _TABLE[codes]
    if (ids < 0).any():
        raise ValueError("text holds characters outside the vocabulary; normalise it first")
    return torch.from_numpy(ids.copy())


@functools.lru_cache(maxsize=4)
def domain_splits(domain: str, python_modules: tuple[str, ...], piece_chars: int) -> dict[str, torch.Tensor]:
    """Token ids of the train, valid and test splits of a domain ("abstracts" or "python")."""
    if domain == OLD:
        docs = abstract_documents()
    elif domain == NEW:
        docs = python_documents(python_modules)
    else:
        raise ValueError(f"unknown domain {domain!r}: expected {OLD!r} or {NEW!r}")
    splits = split_pieces(cut_pieces([normalise(d) for d in docs], piece_chars))
    return {k: encode(v) for k, v in splits.items()}


def domain_table(python_modules: Sequence[str] = PYTHON_MODULES, piece_chars: int = 2000) -> pd.DataFrame:
    """Characters per split of each domain (one character is one token)."""
    rows = []
    for domain, role in ((OLD, "old: pre-training"), (NEW, "new: adaptation")):
        s = domain_splits(domain, tuple(python_modules), piece_chars)
        rows.append({"domain": domain, "role": role, **{k: len(v) for k, v in s.items()}})
    return pd.DataFrame(rows)


def domain_excerpt(domain: str, chars: int = 300, *, python_modules: Sequence[str] = PYTHON_MODULES,
                   piece_chars: int = 2000) -> str:
    """The first `chars` characters of a domain's test split, as the model sees them."""
    return VOCAB.decode(domain_splits(domain, tuple(python_modules), piece_chars)["test"][:chars].tolist())


# --------------------------------------------------------------------------- windows and losses


def window_batch(tokens: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Rows tokens[s : s + length] for each start s: shape (len(starts), length)."""
    return tokens[starts.unsqueeze(1) + torch.arange(length, device=starts.device)]


def next_token_loss(model: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting windows[:, 1:] from windows[:, :-1] (nats per character)."""
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), windows[:, 1:].reshape(-1))


def eval_starts(n_tokens: int, length: int, n_windows: int) -> torch.Tensor:
    """`n_windows` evenly spaced window offsets covering a split of `n_tokens` tokens."""
    if n_tokens < length:
        raise ValueError(f"a split of {n_tokens} tokens is shorter than one window of {length}")
    return torch.linspace(0, n_tokens - length, n_windows, dtype=torch.float64).round().long()


@torch.no_grad()
def split_loss(model: nn.Module, tokens: torch.Tensor, *, block_size: int, n_windows: int, batch: int = 64) -> float:
    """Mean next-character loss over the fixed evaluation windows of a split."""
    dev = next(model.parameters()).device
    length = block_size + 1
    starts = eval_starts(len(tokens), length, n_windows)
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        w = window_batch(tokens, starts[i : i + batch], length).to(dev)
        total += float(next_token_loss(model, w)) * len(w)
        count += len(w)
    model.train(was)
    return total / count


def window_loss_fn(tokens: torch.Tensor, length: int):
    """A `train_loop` loss: the batch's x are window offsets into `tokens` (on the model's device)."""

    def loss(model: nn.Module, starts: torch.Tensor, _unused: torch.Tensor) -> torch.Tensor:
        return next_token_loss(model, window_batch(tokens, starts, length))

    return loss


def eval_schedule(steps: int, every: int, early: Sequence[int] = ()) -> list[int]:
    """The steps after which a run is evaluated: every `every` steps and at the `early` steps."""
    return sorted({s for s in early if 0 < s <= steps} | set(range(every, steps + 1, every)))


def _train_windows(model: nn.Module, tokens: torch.Tensor, loop: LoopConfig, *, seed: int, block_size: int,
                   evaluate=None, at: Sequence[int] = ()) -> nn.Module:
    """Train on windows of `block_size + 1` tokens at offsets drawn uniformly with `seed`, calling
    `evaluate(step)` after the steps listed in `at` (evaluation draws no random numbers)."""
    dev = next(model.parameters()).device
    length = block_size + 1
    starts = torch.arange(len(tokens) - length + 1)
    when = set(at)

    def after(step: int) -> None:
        if evaluate is not None and step in when:
            evaluate(step)

    return train_loop(model, starts, torch.zeros(len(starts)), loop, seed=seed,
                      loss_fn=window_loss_fn(tokens.to(dev), length), after_step=after)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Config:
    """A 2-layer character transformer pre-trained on the abstracts, then adapted to Python source.

    LoRA adapts every linear layer of the blocks (attention in and out, MLP in and out) with
    alpha = 2 r (scale alpha / r = 2 at every rank, Biderman et al.'s setting); embeddings, layer
    norms and the output layer stay frozen. Full fine-tuning trains every parameter. Adam at a
    constant learning rate throughout; each method is run at every rate of `lrs`.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    python_modules: tuple[str, ...] = PYTHON_MODULES
    piece_chars: int = 2000
    # the model
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    block_size: int = 64  # characters of context
    batch_size: int = 16  # windows per step
    # pre-training on the old domain
    pretrain_steps: int = 2000
    pretrain_lr: float = 2e-3
    pretrain_eval_every: int = 100
    pretrain_early_evals: tuple[int, ...] = (10, 25, 50)  # extra evaluations early in pre-training
    # adaptation to the new domain
    finetune_steps: int = 200
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 64)
    lora_alpha_per_rank: float = 2.0  # alpha = this * rank
    eval_every: int = 25
    early_evals: tuple[int, ...] = (5, 10, 15, 20)  # extra evaluations early in adaptation, where the loss moves most
    eval_windows: int = 128  # fixed windows per split and evaluation

    def __post_init__(self):
        if self.pretrain_steps % self.pretrain_eval_every or self.finetune_steps % self.eval_every:
            raise ValueError("pretrain_steps and finetune_steps must be multiples of their evaluation intervals")
        if any(r < 1 for r in self.ranks):
            raise ValueError(f"LoRA ranks must be >= 1, got {self.ranks}")

    @classmethod
    def quick(cls, **changes) -> Config:
        """Smoke settings: a 1-layer model of width 32, a few dozen steps, two ranks, one rate, one seed."""
        base = dict(seeds=(0,), d_model=32, n_layer=1, block_size=32, batch_size=8, pretrain_steps=60,
                    pretrain_eval_every=30, finetune_steps=20, lrs=(1e-3,), ranks=(1, 4), eval_every=10,
                    eval_windows=16)
        return cls(**{**base, **changes})

    def lm_config(self) -> LMConfig:
        return LMConfig(vocab_size=len(VOCAB), block_size=self.block_size, n_layer=self.n_layer,
                        n_head=self.n_head, d_model=self.d_model)


# the settings the notebook's exercise solutions run (each applied to its config with dataclasses.replace):
# fine-tuning twice as long, at the rate full fine-tuning, rank 16 and rank 64 select
EXERCISES = ({"finetune_steps": 400, "lrs": (0.003,), "ranks": (16, 64)},)


_PRETRAIN_FIELDS = ("python_modules", "piece_chars", "d_model", "n_layer", "n_head", "block_size", "batch_size",
                    "pretrain_steps", "pretrain_lr", "pretrain_eval_every", "pretrain_early_evals", "eval_windows")
_FINETUNE_FIELDS = ("finetune_steps", "lora_alpha_per_rank", "eval_every", "early_evals")


def units(config: Config, *, device: str = "auto") -> list[Unit]:
    """Per seed: the pre-training unit, then full fine-tuning and LoRA at each rank, at each rate."""
    base = {f: getattr(config, f) for f in _PRETRAIN_FIELDS}
    base["texts"] = texts_fingerprint(tuple(config.python_modules))
    tune = {**base, **{f: getattr(config, f) for f in _FINETUNE_FIELDS}}
    out = []
    for seed in config.seeds:
        out.append(make_unit(NAME, {"method": PRETRAINED, **base}, seed, device))
        for lr in config.lrs:
            out.append(make_unit(NAME, {"method": FULL, "rank": None, "lr": lr, **tune}, seed, device))
            for r in config.ranks:
                out.append(make_unit(NAME, {"method": LORA, "rank": int(r), "lr": lr, **tune}, seed, device))
    return out




def compute_unit(config: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One pre-training run, or one fine-tuning run (method, rank, rate) from its seed's base model."""
    settings = dict(config)
    method = settings.pop("method")
    rank, lr = settings.pop("rank", None), settings.pop("lr", None)
    texts = settings.pop("texts", None)
    cfg = config_from(Config, settings)
    here = texts_fingerprint(tuple(cfg.python_modules))
    if texts is not None and texts != here:
        raise ValueError(f"this unit was keyed on texts {texts} but this machine's corpus file and standard "
                         f"library give {here} (another Python version?); compute it where its key was made")
    if method == PRETRAINED:
        return pretrained_tables(cfg, seed)
    if method in (FULL, LORA):
        return finetune_tables(cfg, method, rank, float(lr), seed)
    raise ValueError(f"unknown method {method!r}")


def comparable_rows(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Wall-clock rows vary between runs and machines: left out of the recompute check."""
    if table == "cost":
        return df[~df["metric"].isin(["seconds", "ms per step"])]
    return df


# --------------------------------------------------------------------------- spectra of weight updates


def _where(path: str) -> tuple[int, str]:
    """("blocks.1.mlp.0") -> (1, "MLP in")."""
    parts = path.split(".")
    return int(parts[1]), TARGET_LABELS[".".join(parts[2:])]


def _spectrum(delta: torch.Tensor) -> torch.Tensor:
    """Singular values of an update; all NaN when training diverged and the update is not finite."""
    if not bool(torch.isfinite(delta).all()):
        return torch.full((min(delta.shape),), math.nan, dtype=torch.float64)
    return singular_values(delta)


def update_spectrum_rows(current: dict[str, torch.Tensor], start: dict[str, torch.Tensor], **columns) -> list[dict]:
    """Effective rank and rank for 90% of the energy of W - W_start per target matrix."""
    rows = []
    for path, w in current.items():
        s = _spectrum(w - start[path])
        layer, matrix = _where(path)
        finite = bool(torch.isfinite(s).all())
        for metric, value in ((ERANK, effective_rank(values=s) if finite else math.nan),
                              (ERANK90, energy_rank(values=s, share=0.9) if finite else math.nan)):
            rows.append({**columns, "layer": layer, "matrix": matrix, "metric": metric, "value": float(value)})
    return rows


def singular_value_rows(current: dict[str, torch.Tensor], start: dict[str, torch.Tensor], **columns) -> list[dict]:
    """The singular values of W - W_start, largest first (index 1, 2, ...), averaged index by index
    over the layers for each kind of matrix (attention in and out, MLP in and out)."""
    by_kind: dict[str, list[torch.Tensor]] = {}
    for path, w in current.items():
        by_kind.setdefault(_where(path)[1], []).append(_spectrum(w - start[path]))
    rows = []
    for matrix, spectra in by_kind.items():
        for i, v in enumerate(torch.stack(spectra).mean(0).tolist(), start=1):
            rows.append({**columns, "matrix": matrix, "index": i, "value": float(v)})
    return rows


# --------------------------------------------------------------------------- pre-training (the base model)


@dataclass(frozen=True)
class _Base:
    state: dict
    curve: tuple
    spectrum: tuple
    svals: tuple
    seconds: float
    n_parameters: int
    old_test: float
    new_test: float
    new_valid: float


def _pretrain_key(cfg: Config) -> tuple:
    return tuple((f, getattr(cfg, f)) for f in _PRETRAIN_FIELDS)


def _splits(cfg: Config) -> tuple[dict, dict]:
    return (domain_splits(OLD, cfg.python_modules, cfg.piece_chars),
            domain_splits(NEW, cfg.python_modules, cfg.piece_chars))


@functools.lru_cache(maxsize=4)
def _pretrained(key: tuple, seed: int, device_name: str) -> _Base:
    """Pre-train the base model of a seed (cached per process: every unit of the seed reuses it)."""
    cfg = config_from(Config, dict(key))
    old, new = _splits(cfg)
    model = TinyLM(cfg.lm_config(), seed=seed)
    init = target_weights(model)
    curve, spectrum = [], []
    spent = [0.0]

    def loss(tokens: torch.Tensor) -> float:
        return split_loss(model, tokens, block_size=cfg.block_size, n_windows=cfg.eval_windows)

    def evaluate(step: int) -> None:
        t = time.perf_counter()
        for metric, tokens in ((OLD_LOSS, old["test"]), (NEW_LOSS, new["test"])):
            curve.append({"seed": seed, "step": step, "metric": metric, "value": loss(tokens)})
        if step > 0:
            spectrum.extend(update_spectrum_rows(target_weights(model), init, method=PRETRAINING, rank=math.nan,
                                                 lr=cfg.pretrain_lr, seed=seed, step=step))
        spent[0] += time.perf_counter() - t

    evaluate(0)
    start = time.perf_counter()
    loop = LoopConfig(steps=cfg.pretrain_steps, batch_size=cfg.batch_size, lr=cfg.pretrain_lr)
    _train_windows(model, old["train"], loop, seed=seed, block_size=cfg.block_size, evaluate=evaluate,
                   at=eval_schedule(cfg.pretrain_steps, cfg.pretrain_eval_every, cfg.pretrain_early_evals))
    seconds = time.perf_counter() - start - spent[0]
    svals = singular_value_rows(target_weights(model), init, method=PRETRAINING, lr=cfg.pretrain_lr, seed=seed,
                                step=cfg.pretrain_steps)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    last = {r["metric"]: r["value"] for r in curve if r["step"] == cfg.pretrain_steps}
    return _Base(state, tuple(curve), tuple(spectrum), tuple(svals), seconds, trainable_parameters(model),
                 last[OLD_LOSS], last[NEW_LOSS], loss(new["valid"]))


def pretrained_model(cfg: Config, seed: int) -> tuple[TinyLM, _Base]:
    """A fresh copy of the seed's base model and its pre-training record."""
    base = _pretrained(_pretrain_key(cfg), seed, str(device()))
    model = TinyLM(cfg.lm_config(), seed=seed)
    model.load_state_dict(base.state)
    return model, base


def pretrained_tables(cfg: Config, seed: int) -> dict[str, pd.DataFrame]:
    """The base model's losses (step 0 of every adaptation), its pre-training curve, the spectrum
    of W - W_init over pre-training and its cost."""
    _, base = pretrained_model(cfg, seed)
    common = {"method": PRETRAINED, "rank": math.nan, "lr": math.nan, "seed": seed, "step": 0}
    adaptation = [{**common, "metric": m, "value": float(v)} for m, v in
                  ((NEW_LOSS, base.new_test), (OLD_LOSS, base.old_test), (FORGETTING, 0.0), (VALID_LOSS, base.new_valid))]
    cost = [{"method": PRETRAINING, "rank": math.nan, "lr": cfg.pretrain_lr, "seed": seed, "metric": m, "value": float(v)}
            for m, v in (("trainable parameters", base.n_parameters), ("seconds", base.seconds),
                         ("ms per step", 1000 * base.seconds / cfg.pretrain_steps))]
    return {"adaptation": pd.DataFrame(adaptation), "pretraining": pd.DataFrame(list(base.curve)),
            "spectrum": pd.DataFrame(list(base.spectrum)), "singular_values": pd.DataFrame(list(base.svals)),
            "cost": pd.DataFrame(cost)}


# --------------------------------------------------------------------------- adaptation


def _lora_seed(seed: int) -> int:
    return 7919 * (seed + 1)


def _finetune_seed(seed: int) -> int:
    return 1000 + seed


def finetune_tables(cfg: Config, method: str, rank: int | None, lr: float, seed: int) -> dict[str, pd.DataFrame]:
    """Adapt the seed's base model to the new domain by full fine-tuning or LoRA at `rank`.

    After the steps of `eval_schedule` (every `eval_every` steps and at `early_evals`): test loss on
    both domains and the forgetting (old-domain loss minus the base model's); for full fine-tuning
    also the spectrum of Delta W = W - W0 per target matrix.
    At the end: the new-domain validation loss (for choosing the rate), the spectrum of the final
    update (for LoRA: of (alpha / r) B A), trainable parameters and wall time.
    """
    old, new = _splits(cfg)
    model, base = pretrained_model(cfg, seed)
    if method == LORA:
        if rank is None or int(rank) < 1:
            raise ValueError(f"LoRA needs a rank >= 1, got {rank}")
        model = add_lora(model, int(rank), cfg.lora_alpha_per_rank * int(rank), seed=_lora_seed(seed))
    r = float(rank) if method == LORA else math.nan
    w0 = target_weights(model)
    common = {"method": method, "rank": r, "lr": lr, "seed": seed}
    rows: list[dict] = []
    spectrum: list[dict] = []
    spent = [0.0]

    def loss(tokens: torch.Tensor) -> float:
        return split_loss(model, tokens, block_size=cfg.block_size, n_windows=cfg.eval_windows)

    def evaluate(step: int) -> None:
        t = time.perf_counter()
        new_loss, old_loss = loss(new["test"]), loss(old["test"])
        rows.extend({**common, "step": step, "metric": m, "value": v} for m, v in
                    ((NEW_LOSS, new_loss), (OLD_LOSS, old_loss), (FORGETTING, old_loss - base.old_test)))
        if method == FULL and step > 0:
            spectrum.extend(update_spectrum_rows(target_weights(model), w0, **common, step=step))
        spent[0] += time.perf_counter() - t

    evaluate(0)
    start = time.perf_counter()
    loop = LoopConfig(steps=cfg.finetune_steps, batch_size=cfg.batch_size, lr=lr)
    _train_windows(model, new["train"], loop, seed=_finetune_seed(seed), block_size=cfg.block_size, evaluate=evaluate,
                   at=eval_schedule(cfg.finetune_steps, cfg.eval_every, cfg.early_evals))
    seconds = time.perf_counter() - start - spent[0]
    steps = cfg.finetune_steps
    rows.append({**common, "step": steps, "metric": VALID_LOSS, "value": loss(new["valid"])})
    final = target_weights(model)
    svals: list[dict] = []
    if method == LORA:
        spectrum.extend(update_spectrum_rows(final, _base_weights(model), **common, step=steps))
    else:
        svals = singular_value_rows(final, w0, method=method, lr=lr, seed=seed, step=steps)
    cost = [{**common, "metric": m, "value": float(v)} for m, v in
            (("trainable parameters", trainable_parameters(model)), ("seconds", seconds),
             ("ms per step", 1000 * seconds / steps))]
    tables = {"adaptation": pd.DataFrame(rows), "spectrum": pd.DataFrame(spectrum), "cost": pd.DataFrame(cost)}
    if svals:
        tables["singular_values"] = pd.DataFrame(svals)
    return tables


def _base_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The frozen base weight under each adapter."""
    return {path: model.get_submodule(path).base.weight.detach().clone() for path in target_weights(model)}


class AdaptationResults(Results):
    """Long tables: `adaptation` (method, rank, lr, seed, step, metric, value), `pretraining`
    (seed, step, metric, value), `spectrum` (method, rank, lr, seed, step, layer, matrix, metric,
    value), `singular_values` (method, lr, seed, step, matrix, index, value) and `cost`
    (method, rank, lr, seed, metric, value). `rank` is empty for everything but LoRA."""

    name = "adaptation"
    table_names = ("adaptation", "pretraining", "spectrum", "singular_values", "cost")

    def findings(self) -> pd.DataFrame:
        return adaptation_findings(self.tables["adaptation"], self.tables["spectrum"], self.tables["cost"],
                                   d_model=self.config.d_model)


def run(config: Config, *, device: str = "auto", **options) -> AdaptationResults:
    """Every unit of `config`, loaded from the store or computed.

    Options (`results_dir`, `progress`, `rerun`, `jobs`, `executor`, `scheduler`, `store`): see
    `paperlib.experiments.runner.run_experiment`.
    """
    return run_experiment(units(config, device=device), config, AdaptationResults, **options)


# --------------------------------------------------------------------------- summaries


def label(method: str, rank: float) -> str:
    """"LoRA r=4", "full fine-tuning", "pre-trained"."""
    return f"LoRA r={int(rank)}" if method == LORA else method


def _with_labels(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(config=[label(m, r) for m, r in zip(df["method"], df["rank"])])


def config_order(df: pd.DataFrame) -> list[str]:
    """Configuration labels in display order: the base model, LoRA by rank, full fine-tuning."""
    ranks = sorted(int(r) for r in df.loc[df["method"] == LORA, "rank"].dropna().unique())
    out = [PRETRAINED] if (df["method"] == PRETRAINED).any() else []
    return out + [f"LoRA r={r}" for r in ranks] + ([FULL] if (df["method"] == FULL).any() else [])


def selected_lrs(adaptation: pd.DataFrame) -> pd.DataFrame:
    """Per configuration, the learning rate with the lowest mean new-domain validation loss at the
    end of fine-tuning, with that loss (columns config, method, rank, lr, validation loss)."""
    v = _with_labels(adaptation[(adaptation["metric"] == VALID_LOSS) & adaptation["method"].isin([FULL, LORA])])
    means = v.groupby(["config", "method", "rank", "lr"], dropna=False)["value"].mean().reset_index()
    best = means.loc[means.groupby("config")["value"].idxmin()].rename(columns={"value": "validation loss"})
    order = {c: i for i, c in enumerate(config_order(v))}
    return best.sort_values("config", key=lambda s: s.map(order)).reset_index(drop=True)


def final_rows(adaptation: pd.DataFrame, *, at_selected: bool = True) -> pd.DataFrame:
    """The last evaluation of every fine-tuning run (at each configuration's selected rate, unless
    `at_selected=False`), plus the base model's rows, with a `config` label."""
    df = _with_labels(adaptation)
    tuned = df[df["method"].isin([FULL, LORA])]
    last = tuned[tuned["step"] == tuned.groupby(["config", "lr", "seed"])["step"].transform("max")]
    if at_selected:
        pick = selected_lrs(adaptation)[["config", "lr"]]
        last = last.merge(pick, on=["config", "lr"])
    return pd.concat([df[df["method"] == PRETRAINED], last], ignore_index=True)


def _fmt(m: float, s: float, n: int, d: int = 3) -> str:
    return f"{m:.{d}f} ± {s:.{d}f}" if n > 1 else f"{m:.{d}f}"


def final_table(adaptation: pd.DataFrame, cost: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration at its selected rate: new-domain test loss, forgetting (mean ± std
    over seeds), the rate, trainable parameters and milliseconds per training step."""
    fin = final_rows(adaptation)
    rows = []
    lrs = selected_lrs(adaptation).set_index("config")["lr"]
    c = _with_labels(cost)
    for conf in config_order(fin):
        part = fin[fin["config"] == conf]
        row = {"configuration": conf, "learning rate": "" if conf == PRETRAINED else f"{lrs[conf]:g}"}
        for metric in (NEW_LOSS, FORGETTING, OLD_LOSS):
            v = part.loc[part["metric"] == metric, "value"]
            row[metric] = _fmt(v.mean(), v.std() if len(v) > 1 else 0.0, len(v))
        if conf == PRETRAINED:
            cc = c[c["method"] == PRETRAINING]
        else:
            cc = c[(c["config"] == conf) & (c["lr"] == lrs[conf])]
        row["trainable parameters"] = int(cc.loc[cc["metric"] == "trainable parameters", "value"].iloc[0]) if len(cc) else None
        ms = cc.loc[cc["metric"] == "ms per step", "value"]
        row["ms per step"] = f"{ms.mean():.1f}" if len(ms) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def lr_table(adaptation: pd.DataFrame) -> pd.DataFrame:
    """New-domain validation loss (mean over seeds) of every configuration at every rate; the
    selected rate of each configuration is its row's lowest."""
    v = _with_labels(adaptation[(adaptation["metric"] == VALID_LOSS) & adaptation["method"].isin([FULL, LORA])])
    wide = v.pivot_table(index="config", columns="lr", values="value", aggfunc="mean")
    wide.columns = [f"lr {c:g}" for c in wide.columns]
    return wide.reindex([c for c in config_order(v) if c in wide.index]).round(4).reset_index()


def at_steps(adaptation: pd.DataFrame, steps: Sequence[int], metrics: Sequence[str] = (NEW_LOSS, FORGETTING)) -> pd.DataFrame:
    """Mean over seeds of each metric after each of `steps`, one row per configuration at its
    selected rate (the base model left out), columns (metric, step)."""
    df = _with_labels(adaptation[adaptation["method"].isin([FULL, LORA])])
    pick = selected_lrs(adaptation)[["config", "lr"]]
    part = df.merge(pick, on=["config", "lr"])
    part = part[part["step"].isin(list(steps)) & part["metric"].isin(list(metrics))]
    wide = part.pivot_table(index="config", columns=["metric", "step"], values="value", aggfunc="mean")
    wide = wide.reindex(index=[c for c in config_order(part) if c in wide.index],
                        columns=pd.MultiIndex.from_product([list(metrics), sorted(steps)], names=["metric", "step"]))
    return wide.rename_axis(index="configuration")


def mean_update_rank(spectrum: pd.DataFrame, metric: str = ERANK) -> pd.DataFrame:
    """Per (method, rank, lr, seed, step): the metric averaged over the target matrices."""
    part = spectrum[spectrum["metric"] == metric]
    return (part.groupby(["method", "rank", "lr", "seed", "step"], dropna=False)["value"].mean().reset_index())


# --------------------------------------------------------------------------- findings


def _paired(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], metric: str) -> Comparison:
    both = pd.concat([a[["seed", "value"]].assign(_side="a"), b[["seed", "value"]].assign(_side="b")])
    return compare_paired(both, "_side", "a", "b", metric=metric, labels=labels)


@dataclass(frozen=True)
class Trend:
    """The per-seed least-squares slope of a metric against log2(rank), its mean and std over seeds."""

    mean: float
    std: float
    n: int
    means: dict  # rank -> mean over seeds

    @property
    def direction(self) -> str:
        """"rises", "falls", "flat within the seed spread" or "single seed"."""
        if self.n < 2:
            return "single seed"
        if abs(self.mean) <= self.std:
            return "flat within the seed spread"
        return "rises" if self.mean > 0 else "falls"

    def sentence(self, metric: str) -> str:
        per = ", ".join(f"r={r}: {m:.3f}" for r, m in self.means.items())
        spread = f" ± {self.std:.4f} (std over {self.n} seeds)" if self.n > 1 else " (one seed)"
        how = {"rises": "it rises beyond its seed spread", "falls": "it falls beyond its seed spread",
               "flat within the seed spread": "the spread over seeds is as large as the slope, so no trend is claimed",
               "single seed": "with one seed the slope cannot be weighed against a seed spread"}[self.direction]
        return (f"Mean {metric} by LoRA rank: {per}; slope per doubling of the rank {self.mean:+.4f}{spread}: "
                f"{how}.")


def rank_trend(final: pd.DataFrame, metric: str) -> Trend:
    """How `metric` moves with the LoRA rank: per seed, the slope of a line fitted to metric against log2(rank)."""
    lora = final[(final["method"] == LORA) & (final["metric"] == metric)]
    slopes = []
    for _, part in lora.groupby("seed"):
        if part["rank"].nunique() >= 2:
            slopes.append(float(np.polyfit(np.log2(part["rank"].astype(float)), part["value"].astype(float), 1)[0]))
    means = {int(r): float(v) for r, v in lora.groupby("rank")["value"].mean().sort_index().items()}
    if not slopes:
        return Trend(math.nan, 0.0, 0, means)
    return Trend(float(np.mean(slopes)), float(np.std(slopes, ddof=1)) if len(slopes) > 1 else 0.0, len(slopes), means)


def _rows(final: pd.DataFrame, conf: str, metric: str) -> pd.DataFrame:
    return final[(final["config"] == conf) & (final["metric"] == metric)]


def rank_claim(final: pd.DataFrame, metric: str, *, lower_is_more: bool) -> dict:
    """"falls as rank grows, full fine-tuning lowest" (new-domain loss, lower_is_more=True) or
    "grows with rank, full fine-tuning most" (forgetting, lower_is_more=False), with its verdict.

    Holds when the slope against log2(rank) has the expected sign beyond its seed spread and full
    fine-tuning beats the most extreme LoRA rank beyond the paired seed spread; fails when either
    goes the other way beyond the spread; unresolved otherwise (and always with one seed).
    """
    t = rank_trend(final, metric)
    want, against = ("falls", "rises") if lower_is_more else ("rises", "falls")
    lora = final[(final["method"] == LORA) & (final["metric"] == metric)]
    means = lora.groupby("config")["value"].mean()
    extreme = means.idxmin() if lower_is_more else means.idxmax()
    c = _paired(_rows(final, FULL, metric), _rows(final, extreme, metric), (FULL, extreme), metric)
    full_ok = c.verdict == ("lower" if lower_is_more else "higher")
    full_bad = c.verdict == ("higher" if lower_is_more else "lower")
    if t.n < 2:
        verdict = "unresolved"
    elif t.direction == want and full_ok:
        verdict = "holds"
    elif t.direction == against or full_bad:
        verdict = "fails"
    else:
        verdict = "unresolved"
    return {"verdict": verdict, "trend": t, "full": c,
            "text": f"{t.sentence(metric)} Against the most extreme rank: {c.sentence()}"}


def rank_growth_claim(spectrum: pd.DataFrame, method: str, lr: float, *, d_model: int | None = None) -> dict:
    """Does the effective rank of the update (mean over the target matrices) grow from the first
    to the last checkpoint? Paired over seeds. With `d_model`, the text also sets the first
    checkpoint's rank beside that of a Gaussian noise matrix of that size: an update that starts
    near it was not low-rank to begin with."""
    part = spectrum[(spectrum["method"] == method) & np.isclose(spectrum["lr"], lr)]
    m = mean_update_rank(part)
    if m.empty:
        return {"verdict": "unresolved", "text": "no spectrum recorded"}
    first, last = m["step"].min(), m["step"].max()
    n_matrices = part.groupby(["layer", "matrix"]).ngroups
    c = _paired(m[m["step"] == last], m[m["step"] == first], (f"step {last}", f"step {first}"),
                f"effective rank of Delta W, mean over the {n_matrices} adapted matrices")
    verdict = {"higher": "holds", "lower": "fails"}.get(c.verdict, "unresolved")
    by_step = m.groupby("step")["value"].mean()
    e90 = mean_update_rank(part, ERANK90).groupby("step")["value"].mean()
    text = (f"{c.sentence()} Mean effective rank by step: " + ", ".join(f"{int(s)}: {v:.1f}" for s, v in by_step.items())
            + ". Rank holding 90% of the energy, by step: " + ", ".join(f"{int(s)}: {v:.1f}" for s, v in e90.items()) + ".")
    low = by_step.idxmin()
    if low != first and by_step[low] < by_step[first]:
        text += f" The rank first dips to {by_step[low]:.1f} (step {int(low)}) before it grows."
    if d_model is not None:
        noise = gaussian_effective_rank((d_model, d_model))
        text += (f" At the first evaluation (step {int(first)}) the update already has {by_step[first]:.1f} of "
                 f"{d_model} possible, {by_step[first] / noise:.0%} of the effective rank of Gaussian noise of that size "
                 f"({noise:.1f}): it does not start low-rank, and what grows is an already broad spectrum.")
    return {"verdict": verdict, "text": text, "comparison": c}


def matched_forgetting(adaptation: pd.DataFrame, conf: str) -> pd.DataFrame:
    """Per seed, a configuration's final forgetting beside full fine-tuning's forgetting at the same
    new-domain loss, read off full fine-tuning's trajectory (both at their selected rates) by
    linear interpolation between its evaluations. Columns seed, value (the configuration's
    forgetting), full (full fine-tuning's at equal learning); seeds whose final loss lies outside
    full fine-tuning's trajectory are left out."""
    df = _with_labels(adaptation)
    pick = selected_lrs(adaptation).set_index("config")["lr"]
    fin = final_rows(adaptation)
    rows = []
    for seed in sorted(fin["seed"].unique()):
        mine = fin[(fin["config"] == conf) & (fin["seed"] == seed)].set_index("metric")["value"]
        full = df[(df["config"] == FULL) & np.isclose(df["lr"], pick[FULL]) & (df["seed"] == seed)]
        path = full.pivot_table(index="step", columns="metric", values="value").sort_index()
        x, y = path[NEW_LOSS].to_numpy(), path[FORGETTING].to_numpy()
        target = float(mine[NEW_LOSS])
        for i in range(len(x) - 1):
            lo, hi = sorted((x[i], x[i + 1]))
            if lo <= target <= hi and hi > lo:
                w = (target - x[i]) / (x[i + 1] - x[i])
                rows.append({"seed": seed, "value": float(mine[FORGETTING]), "full": float(y[i] + w * (y[i + 1] - y[i])),
                             "between_steps": f"{int(path.index[i])}-{int(path.index[i + 1])}"})
                break
    return pd.DataFrame(rows, columns=["seed", "value", "full", "between_steps"])


def equal_learning_claim(adaptation: pd.DataFrame) -> dict:
    """Biderman et al.'s "LoRA and full fine-tuning lie on the same learning-forgetting curve":
    each LoRA rank's final forgetting against full fine-tuning's at the same new-domain loss
    (`matched_forgetting`), paired over seeds. Holds when no rank differs beyond the spread of the
    per-seed gap, fails when some rank does, unresolved with one seed."""
    parts, comps = [], []
    for conf in config_order(adaptation):
        if not conf.startswith(LORA):
            continue
        m = matched_forgetting(adaptation, conf)
        if m.empty:
            parts.append(f"{conf}: its final loss is outside full fine-tuning's trajectory")
            continue
        long = pd.concat([m[["seed", "value"]].assign(side="a"),
                          m[["seed", "full"]].rename(columns={"full": "value"}).assign(side="b")])
        c = compare_paired(long, "side", "a", "b", labels=(conf, FULL), metric="forgetting")
        comps.append(c)
        how = ("one seed" if c.verdict == "single seed" else
               f"{c.verdict} beyond the spread {c.spread:.3f}" if c.decided else f"within the spread {c.spread:.3f}")
        steps = ", ".join(sorted(set(m["between_steps"]), key=lambda t: int(t.split("-")[0])))
        parts.append(f"{conf} {c.mean_a:.3f} vs {c.mean_b:.3f} ({how}; full fine-tuning read between steps {steps})")
    if not comps or any(c.verdict == "single seed" for c in comps):
        verdict = "unresolved"
    elif any(c.decided for c in comps):
        verdict = "fails"
    else:
        verdict = "holds"
    text = ("Each LoRA rank's final forgetting against full fine-tuning's forgetting when full fine-tuning's "
            "new-domain loss was the same (interpolated linearly between its evaluations, so only as exact as "
            "those are dense): " + "; ".join(parts) + ".")
    return {"verdict": verdict, "text": text, "comparisons": comps}


def _ref(reference: pd.DataFrame, key: str) -> str:
    if key not in reference.index:
        return ""
    r = reference.loc[key]
    names = [a.split()[-1] for a in str(r["authors"]).split(",")]
    who = names[0] if len(names) == 1 else " & ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who} ({int(r['year'])}; {r['where']}): {r['claim']}"


def adaptation_findings(adaptation: pd.DataFrame, spectrum: pd.DataFrame, cost: pd.DataFrame, *, d_model: int = 64,
                        reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Measured sentences (key, verdict, finding), each claim beside the paper that makes it."""
    ref = (reference if reference is not None else load_reference("adaptation")).set_index("key")
    fin = final_rows(adaptation)
    rows = []
    base = fin[fin["method"] == PRETRAINED]
    b_new = summarize(base[base["metric"] == NEW_LOSS], ["method"]).iloc[0]
    b_old = summarize(base[base["metric"] == OLD_LOSS], ["method"]).iloc[0]
    lrs = selected_lrs(adaptation)
    rows.append(("base_model", "measured",
                 f"The pre-trained model: {b_old['mean']:.3f} nats per character on the old domain (abstracts) and "
                 f"{b_new['mean']:.3f} on the new one (Python) before adaptation. Rates chosen on the new-domain "
                 f"validation split: " + ", ".join(f"{c} {lr:g}" for c, lr in zip(lrs["config"], lrs["lr"])) + "."))
    learn = rank_claim(fin, NEW_LOSS, lower_is_more=True)
    rows.append(("learns_with_rank", learn["verdict"],
                 f"Claim: new-domain loss falls as the LoRA rank grows and full fine-tuning reaches the lowest — "
                 f"{learn['verdict']}. {learn['text']} {_ref(ref, 'lora_learns_less')}"))
    forget = rank_claim(fin, FORGETTING, lower_is_more=False)
    rows.append(("forgets_with_rank", forget["verdict"],
                 f"Claim: forgetting (increase of the old-domain loss) grows with the LoRA rank and full fine-tuning "
                 f"forgets most — {forget['verdict']}. {forget['text']} {_ref(ref, 'lora_forgets_less')} "
                 f"{_ref(ref, 'rank_forgetting')}"))
    full_lr = float(lrs.loc[lrs["config"] == FULL, "lr"].iloc[0]) if (lrs["config"] == FULL).any() else None
    if full_lr is not None:
        g = rank_growth_claim(spectrum, FULL, full_lr, d_model=d_model)
        rows.append(("rank_grows_finetuning", g["verdict"],
                     f"Claim: the effective rank of the full fine-tuning update Delta W = W - W0 grows during training "
                     f"(rate {full_lr:g}) — {g['verdict']}. {g['text']} {_ref(ref, 'full_ft_rank_grows')}"))
    pre = spectrum[spectrum["method"] == PRETRAINING]
    if not pre.empty:
        g = rank_growth_claim(spectrum, PRETRAINING, float(pre["lr"].iloc[0]), d_model=d_model)
        rows.append(("rank_grows_pretraining", g["verdict"],
                     f"Claim: during pre-training from a small initialisation, W - W_init progressively increases in "
                     f"rank — {g['verdict']}. {g['text']} {_ref(ref, 'gradual_rank_increase')}"))
    if full_lr is not None:
        shapes = spectrum[(spectrum["method"] == FULL)]
        last = shapes["step"].max()
        fr = mean_update_rank(spectrum[(spectrum["method"] == FULL) & np.isclose(spectrum["lr"], full_lr)
                                       & (spectrum["step"] == last)])
        parts = [f"full fine-tuning {fr['value'].mean():.1f}"]
        for conf, lr in zip(lrs["config"], lrs["lr"]):
            if conf == FULL:
                continue
            rk = int(conf.split("=")[1])
            lo = mean_update_rank(spectrum[(spectrum["method"] == LORA) & (spectrum["rank"] == rk)
                                           & np.isclose(spectrum["lr"], lr)])
            if len(lo):
                parts.append(f"{conf} {lo['value'].mean():.1f}")
        noise = gaussian_effective_rank((d_model, d_model))
        rows.append(("update_ranks", "measured",
                     "Effective rank of the final update, mean over the adapted matrices and seeds: " + ", ".join(parts)
                     + f" (a {d_model} x {d_model} Gaussian noise matrix: {noise:.1f}; every adapted matrix has "
                     f"{d_model} singular values). {_ref(ref, 'full_ft_high_rank')}"))
    c = _with_labels(cost)
    sel = c.merge(lrs[["config", "lr"]], on=["config", "lr"])
    params = sel[sel["metric"] == "trainable parameters"].groupby("config")["value"].first()
    ms = sel[sel["metric"] == "ms per step"].groupby("config")["value"].mean()
    order = [k for k in config_order(sel) if k in params.index]
    rows.append(("cost", "measured", "Trainable parameters and milliseconds per training step (one torch thread): "
                 + "; ".join(f"{k}: {int(params[k]):,}, {ms[k]:.1f} ms" for k in order) + "."))
    eq = equal_learning_claim(adaptation)
    rows.append(("same_tradeoff_curve", eq["verdict"],
                 f"Claim: at equal learning, LoRA and full fine-tuning forget alike (one learning-forgetting curve) — "
                 f"{eq['verdict']}. {eq['text']} {_ref(ref, 'same_pareto_curve')}"))
    return pd.DataFrame(rows, columns=["key", "verdict", "finding"])
