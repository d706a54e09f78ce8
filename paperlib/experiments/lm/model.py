"""A tiny causal transformer language model (GPT-style, pre-LayerNorm), its per-token and
per-sequence log-probabilities.

Small enough to train on a CPU in seconds: a few layers of width 64-128 over a character
vocabulary, learned absolute positions up to `block_size` tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from paperlib.experiments.training import device


@dataclass(frozen=True)
class LMConfig:
    """Shape of a `TinyLM`."""

    vocab_size: int
    block_size: int = 32  # longest sequence (in tokens) the position table covers
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    mlp_ratio: int = 4

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_head={self.n_head}")


class CausalSelfAttention(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attention over the sequence so far; with `past` (the keys and values of earlier positions)
        `x` must be a single new position, which may attend to all of them."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        if past is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            if t != 1:
                raise ValueError("with cached keys and values, feed one new position at a time")
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
            y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, t, d)), (k, v)


class Block(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, config.mlp_ratio * config.d_model), nn.GELU(),
                                 nn.Linear(config.mlp_ratio * config.d_model, config.d_model))

    def forward(self, x: torch.Tensor, past=None):
        a, cache = self.attn(self.ln1(x), past)
        x = x + a
        return x + self.mlp(self.ln2(x)), cache


class TinyLM(nn.Module):
    """Token and position embeddings, `n_layer` causal blocks, a final LayerNorm and a linear head.

    Weights are drawn from `seed` (normal, std 0.02; residual projections scaled by
    1/sqrt(2 n_layer) as in GPT-2) without touching torch's global random state.
    `forward(tokens)` gives logits (batch, time, vocab); `hidden(tokens)` the final hidden states.
    """

    def __init__(self, config: LMConfig, *, seed: int):
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):  # the layers' default init draws from the global generator
            self.tok = nn.Embedding(config.vocab_size, config.d_model)
            self.pos = nn.Embedding(config.block_size, config.d_model)
            self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.d_model)
            self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif ".ln" in name or name.startswith("ln_"):
                    p.fill_(1.0)
                else:
                    std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("proj.weight") or name.endswith("mlp.2.weight") else 0.02
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
        self.to(device())

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final hidden states (batch, time, d_model) of a batch of token ids (batch, time)."""
        return self._run(tokens, None, 0)[0]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits (batch, time, vocab): position t predicts token t + 1."""
        return self.head(self.hidden(tokens))

    def extend(self, tokens: torch.Tensor, cache: list | None = None) -> tuple[torch.Tensor, list]:
        """Incremental decoding: the logits of the last position and a cache of keys and values.
        Call first with a whole prompt (cache None), then with one new token (batch, 1) at a time;
        the logits equal those of `forward` on the full sequence."""
        start = 0 if cache is None else cache[0][0].shape[2]
        h, cache = self._run(tokens, cache, start)
        return self.head(h[:, -1]), cache

    def _run(self, tokens: torch.Tensor, cache: list | None, start: int) -> tuple[torch.Tensor, list]:
        t = tokens.shape[1]
        if start + t > self.config.block_size:
            raise ValueError(f"sequence of {start + t} tokens is longer than block_size={self.config.block_size}")
        x = self.tok(tokens) + self.pos(torch.arange(start, start + t, device=tokens.device))
        new = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new.append(kv)
        return self.ln_f(x), new


def token_logprobs(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """log p(tokens[:, t+1] | tokens[:, :t+1]) for t = 0 .. T-2: shape (batch, T-1), with gradients."""
    logits = model(tokens[:, :-1])
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)


def _trim(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the columns after the last masked position of the batch (padding only: with a causal
    model they cannot change the masked tokens' log-probabilities)."""
    cols = torch.nonzero(mask.any(0))
    end = int(cols.max()) + 1 if len(cols) else 1
    return tokens[:, : max(end, 2)], mask[:, : max(end, 2)]


def sequence_logprob(model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(response | prompt) per row: the sum of the token log-probabilities where `mask` is True
    (mask has the shape of `tokens`; the first position, `<bos>`, is never predicted)."""
    tokens, mask = _trim(tokens, mask)
    return (token_logprobs(model, tokens) * mask[:, 1:].to(torch.float32)).sum(-1)


def lm_loss(model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens of a batch (the SFT loss)."""
    tokens, mask = _trim(tokens, mask)
    m = mask[:, 1:].to(torch.float32)
    return -(token_logprobs(model, tokens) * m).sum() / m.sum().clamp_min(1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
