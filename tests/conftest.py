"""Shared fixtures."""
from __future__ import annotations

import pytest

from paperlib.paths import default_corpus_path


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
