"""Sampling continuations from a causal language model: temperature, greedy, a seed.

Prompts may differ in length: they are generated in groups of equal length (positions are
absolute, so a prompt always starts at position 0) and the results are right-padded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from paperlib.experiments.lm.vocab import EOS, PAD


@dataclass(frozen=True)
class Samples:
    """Sampled sequences: `tokens` (batch, time) = prompt, response and padding; `mask` is True
    on the response tokens (up to and including `<eos>`); `prompt_lengths` per row."""

    tokens: torch.Tensor
    mask: torch.Tensor
    prompt_lengths: torch.Tensor

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def response_lengths(self) -> torch.Tensor:
        return self.mask.sum(1)

    @property
    def finished(self) -> torch.Tensor:
        """True where the response ended with `<eos>` (False: cut at `max_new_tokens`)."""
        return ((self.tokens == EOS) & self.mask).any(1)

    def responses(self) -> list[list[int]]:
        """Each row's response ids (without `<eos>`)."""
        out = []
        for row, m in zip(self.tokens.tolist(), self.mask.tolist()):
            out.append([t for t, keep in zip(row, m) if keep and t != EOS])
        return out


@torch.no_grad()
def _generate(model: nn.Module, prompt: torch.Tensor, max_new_tokens: int, temperature: float, greedy: bool,
              gen: torch.Generator, eos_id: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = prompt
    done = torch.zeros(len(prompt), dtype=torch.bool, device=prompt.device)
    mask = []
    incremental = hasattr(model, "extend")
    cache = None
    for step in range(max_new_tokens):
        if incremental:
            logits, cache = model.extend(tokens if step == 0 else tokens[:, -1:], cache)
            logits = logits.float()
        else:
            logits = model(tokens)[:, -1, :].float()
        if greedy:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(1).to(prompt.device)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        mask.append(~done)
        tokens = torch.cat([tokens, nxt.unsqueeze(1)], dim=1)
        done = done | (nxt == eos_id)
        if bool(done.all()):
            break
    return tokens, torch.stack(mask, 1) if mask else torch.zeros((len(prompt), 0), dtype=torch.bool)


def sample(model: nn.Module, prompts: Sequence[Sequence[int]] | torch.Tensor, *, max_new_tokens: int,
           temperature: float = 1.0, greedy: bool = False, seed: int | None = None,
           generator: torch.Generator | None = None, eos_id: int = EOS, pad_id: int = PAD,
           batch_size: int = 1024) -> Samples:
    """Continue each prompt (token ids, starting with `<bos>`) until `<eos>` or `max_new_tokens`.

    Randomness comes from `generator`, else from a fresh generator seeded with `seed` (one of
    the two is required unless `greedy`): the same seed gives the same samples. Rows come back
    in the order of `prompts`.
    """
    if not greedy and temperature <= 0:
        raise ValueError(f"temperature must be > 0 (or greedy=True), got {temperature}")
    if generator is None:
        if seed is None and not greedy:
            raise ValueError("sample needs a seed or a generator (or greedy=True)")
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    rows = [list(map(int, p)) for p in (prompts.tolist() if isinstance(prompts, torch.Tensor) else prompts)]
    if not rows:
        raise ValueError("no prompts to sample from")
    longest = max(len(r) for r in rows)
    block = getattr(getattr(model, "config", None), "block_size", None)
    if block is not None and longest + max_new_tokens > block:
        raise ValueError(f"prompt of {longest} tokens + {max_new_tokens} new tokens exceeds block_size={block}")
    dev = next(model.parameters()).device
    width = longest + max_new_tokens
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    was = model.training
    model.eval()
    by_length: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        by_length.setdefault(len(r), []).append(i)
    for length in sorted(by_length):
        index = by_length[length]
        for start in range(0, len(index), batch_size):
            part = index[start : start + batch_size]
            prompt = torch.tensor([rows[i] for i in part], dtype=torch.long, device=dev)
            out, new = _generate(model, prompt, max_new_tokens, temperature, greedy, generator, eos_id, pad_id)
            n = out.shape[1]
            tokens[part, :n] = out.cpu()
            mask[part, length:n] = new.cpu()
    model.train(was)
    lengths = torch.tensor([len(r) for r in rows])
    used = int((lengths + mask.sum(1)).max())
    return Samples(tokens[:, :used].to(dev), mask[:, :used].to(dev), lengths.to(dev))
