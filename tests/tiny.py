"""Tiny data sets for end-to-end runs inside unit tests (a helper module, not a test module)."""
from __future__ import annotations

import torch

from paperlib.experiments.datasets import Dataset

_CENTERS = [[0.2, 0.2, 0.8, 0.5], [0.8, 0.2, 0.2, 0.5], [0.5, 0.8, 0.5, 0.2]]


def blobs(n: int = 120, *, noise: float = 0.12, n_test: int = 60, seed: int = 0) -> Dataset:
    """Three Gaussian blobs in 4 features in [0, 1], classes in turn: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor(_CENTERS)
    y, yt = torch.arange(n) % 3, torch.arange(n_test) % 3
    x = (centers[y] + noise * torch.randn(n, 4, generator=g)).clamp(0, 1)
    xt = (centers[yt] + noise * torch.randn(n_test, 4, generator=g)).clamp(0, 1)
    return Dataset("blobs", x, y, xt, yt, (2, 2))
