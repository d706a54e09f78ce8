"""Supervised fine-tuning of a language model on the shared training loop."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from paperlib.experiments.lm.model import lm_loss
from paperlib.experiments.training import LoopConfig, make_optimizer, train_loop


def sft(model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor, config: LoopConfig, *, seed: int,
        optimizer: torch.optim.Optimizer | None = None, on_eval: Callable[[int], None] | None = None,
        progress: bool | str = False) -> nn.Module:
    """Train `model` to produce the masked tokens of `tokens` (cross-entropy, batches drawn
    uniformly with `seed`); `optimizer` continues an earlier run. Returns the model."""
    return train_loop(model, tokens, mask, config, seed=seed, loss_fn=lm_loss, optimizer=optimizer, on_eval=on_eval,
                      progress=progress)


def sft_until(model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor, config: LoopConfig, *, seed: int,
              score: Callable[[nn.Module], float], target: float, check_every: int) -> tuple[nn.Module, list[tuple[int, float]]]:
    """SFT in chunks of `check_every` steps, up to `config.steps`, stopping at the first check where
    `score(model) >= target`. Returns the model and the (step, score) of every check."""
    if check_every <= 0:
        raise ValueError(f"check_every must be > 0, got {check_every}")
    opt = make_optimizer(config.optimizer, model, config.lr)
    history: list[tuple[int, float]] = []
    done = 0
    chunk = 0
    while done < config.steps:
        steps = min(check_every, config.steps - done)
        part = LoopConfig(steps=steps, batch_size=config.batch_size, lr=config.lr, optimizer=config.optimizer)
        sft(model, tokens, mask, part, seed=seed + 7919 * chunk, optimizer=opt)
        done += steps
        chunk += 1
        s = float(score(model))
        history.append((done, s))
        if s >= target:
            break
    return model, history
