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
