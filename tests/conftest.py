"""Shared fixtures."""
from __future__ import annotations

import os

import pytest

from paperlib.paths import default_corpus_path


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory):
    """Downloads and the user's results store go to a temp folder, never the tester's data home
    (notebook kernels inherit the variables). Shipped results stay readable."""
    home = tmp_path_factory.mktemp("data-home")
    saved = {k: os.environ.get(k) for k in ("PAPERLIB_DATA", "PAPERLIB_RESULTS")}
    os.environ["PAPERLIB_DATA"] = str(home)
    os.environ["PAPERLIB_RESULTS"] = str(home / "store")
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def corpus_path():
    return default_corpus_path()


@pytest.fixture(scope="session")
def corpus(corpus_path):
    from paperlib import load_corpus

    return load_corpus(corpus_path)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny models run many times faster so on a shared CPU; restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
