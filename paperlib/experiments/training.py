"""The small tensor training loop every experiment shares.

Data stay as tensors on the device and batches are indexed directly (no DataLoader in
the hot path). Experiments plug in through hooks: `batch_sampler` picks the indices of
each step, `loss_fn` turns a batch into a loss (add penalties there), `on_eval` records
curves. Same seed, same numbers.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

_DEVICE: list[str] = []  # the device chosen by `use_device`, innermost last


@contextlib.contextmanager
def use_device(name: str = "auto") -> Iterator[torch.device]:
    """Build and train models on `name` inside the block ("auto": CUDA when present, else the CPU)."""
    _DEVICE.append("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)
    try:
        yield torch.device(_DEVICE[-1])
    finally:
        _DEVICE.pop()


def device() -> torch.device:
    """The device of `use_device`, else CUDA when available, else the CPU."""
    if _DEVICE:
        return torch.device(_DEVICE[-1])
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_mlp(in_features: int, hidden: Sequence[int], out_features: int, *, seed: int) -> nn.Sequential:
    """A ReLU multilayer perceptron with weights drawn from `seed`."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_features))
    model = nn.Sequential(*layers)
    torch.random.set_rng_state(gen_state)
    return model.to(device())


@dataclass(frozen=True)
class LoopConfig:
    """Optimiser settings of one training run."""

    steps: int
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" or "sgd"
    eval_every: int = 0  # 0: never call on_eval during training


def make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam (betas 0.9, 0.999) or plain SGD over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}: expected 'adam' or 'sgd'")


def uniform_sampler(n: int) -> Callable[[int, int, torch.Generator], torch.Tensor]:
    """Batch indices drawn uniformly from all n examples."""

    def sample(step: int, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, n, (batch_size,), generator=gen)

    return sample


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain cross-entropy of a batch."""
    return nn.functional.cross_entropy(model(x), y)


def train_loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: LoopConfig,
    *,
    seed: int,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy_loss,
    batch_sampler: Callable[[int, int, torch.Generator], torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    on_eval: Callable[[int], None] | None = None,
    after_step: Callable[[int], None] | None = None,
    progress: bool | str = False,
) -> nn.Module:
    """Train `model` for `config.steps` steps on tensors x, y; returns the model.

    `loss_fn(model, xb, yb)` gives the loss of a batch (penalties are added there),
    `batch_sampler(step, batch_size, gen)` the indices of each batch (uniform by default),
    `optimizer` one to continue (default: a fresh `config.optimizer`),
    `on_eval(step)` runs every `eval_every` steps, `after_step(step)` after each update.
    """
    dev = next(model.parameters()).device
    x, y = x.to(dev), y.to(dev)
    gen = torch.Generator().manual_seed(seed)
    sampler = batch_sampler or uniform_sampler(len(x))
    opt = optimizer or make_optimizer(config.optimizer, model, config.lr)
    model.train()
    steps = range(1, config.steps + 1)
    bar = tqdm(steps, desc=progress if isinstance(progress, str) else "train", disable=not progress, leave=False)
    for step in bar:
        idx = sampler(step, config.batch_size, gen).to(dev)
        loss = loss_fn(model, x[idx], y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step(step)
        if on_eval is not None and config.eval_every and step % config.eval_every == 0:
            model.eval()
            on_eval(step)
            model.train()
    model.eval()
    return model


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """Logits of every row of x, in evaluation mode, in chunks."""
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size].to(dev)) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, classes: Sequence[int] | None = None) -> float:
    """Share of rows predicted right; with `classes`, the prediction is restricted to those outputs."""
    logits = predict_logits(model, x)
    if classes is not None:
        mask = torch.full((logits.shape[1],), float("-inf"), device=logits.device)
        mask[list(classes)] = 0.0
        logits = logits + mask
    return (logits.argmax(1).cpu() == y.cpu()).float().mean().item()


def set_threads(n: int) -> int:
    """Use n CPU threads for torch (0 keeps torch's default); returns the number in use.

    Small MLPs often run fastest on one thread when other jobs share the cores.
    """
    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
