"""A character vocabulary with three special tokens, and batches of token ids.

Ids 0, 1, 2 are `<pad>`, `<bos>` and `<eos>`; the symbols follow in the order given. A
sequence is `<bos>`, the prompt's symbols, the response's symbols and `<eos>`; batches are
right-padded with `<pad>`, so with a causal model the pads never change a real token's logits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")


@dataclass(frozen=True)
class Vocab:
    """Characters of `symbols` as token ids 3, 4, ...; `<pad>`=0, `<bos>`=1, `<eos>`=2."""

    symbols: str

    def __post_init__(self):
        if len(set(self.symbols)) != len(self.symbols) or not self.symbols:
            raise ValueError(f"symbols must be distinct characters, got {self.symbols!r}")

    pad_id = PAD
    bos_id = BOS
    eos_id = EOS

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.symbols)

    @property
    def size(self) -> int:
        return len(self)

    def id(self, symbol: str) -> int:
        """The token id of one symbol."""
        i = self.symbols.find(symbol)
        if i < 0 or len(symbol) != 1:
            raise KeyError(f"{symbol!r} is not in the vocabulary {self.symbols!r}")
        return len(SPECIALS) + i

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of `text`, optionally with `<bos>` first and `<eos>` last."""
        ids = [self.id(ch) for ch in text]
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def decode(self, ids: Iterable[int], *, stop_at_eos: bool = True) -> str:
        """The symbols of `ids`: specials dropped, and nothing after the first `<eos>`."""
        out = []
        for i in (int(t) for t in ids):
            if i == EOS and stop_at_eos:
                break
            if i >= len(SPECIALS):
                out.append(self.symbols[i - len(SPECIALS)])
        return "".join(out)

    def batch(self, prompts: Sequence[str], responses: Sequence[str] | None = None, *,
              length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids of `<bos> prompt response <eos>` for each pair, and the response mask
        (True on the response's tokens and its `<eos>`: the tokens a model is trained to produce).

        Without responses, the prompts themselves are the responses (`<bos> text <eos>`, every
        token after `<bos>` in the mask). `length` pads to a fixed width."""
        if responses is None:
            prompts, responses = [""] * len(prompts), list(prompts)
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        rows, masks = [], []
        for p, r in zip(prompts, responses):
            head = self.encode(p, bos=True)
            tail = self.encode(r, eos=True)
            rows.append(head + tail)
            masks.append([False] * len(head) + [True] * len(tail))
        width = max(len(r) for r in rows) if length is None else length
        if any(len(r) > width for r in rows):
            raise ValueError(f"a sequence of {max(len(r) for r in rows)} tokens does not fit length={width}")
        tokens = torch.full((len(rows), width), PAD, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, (r, m) in enumerate(zip(rows, masks)):
            tokens[i, : len(r)] = torch.tensor(r)
            mask[i, : len(m)] = torch.tensor(m)
        return tokens, mask
