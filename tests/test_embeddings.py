"""Sentence embeddings (the optional extra): the cache by text, the joined similarity, the example
scorer on embeddings, and the real MiniLM model when the extra is installed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paperlib.corpus import embeddings, relate, semantic
from paperlib.corpus.embeddings import DIMENSIONS, cache_dir, embed_texts, text_key
from paperlib.corpus.relate import PaperIndex, similar

TOPIC_AXES = {"forget": 0, "prompt": 1, "reward": 2}


def fake_encode(texts):
    """A stand-in for the model: one axis per topic word, plus a little of everything."""
    out = np.full((len(texts), DIMENSIONS), 0.01, dtype=np.float32)
    for i, t in enumerate(texts):
        for word, axis in TOPIC_AXES.items():
            out[i, axis] += t.lower().count(word)
    return out


def test_vectors_are_cached_by_text(monkeypatch):
    calls = []

    def counting(texts):
        calls.append(list(texts))
        return fake_encode(texts)

    texts = ["forget old tasks", "prompt pools", "forget old tasks"]
    first = embed_texts(texts, encode=counting)
    assert calls == [["forget old tasks", "prompt pools"]]  # each distinct text once
    assert first.shape == (3, DIMENSIONS) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    key = text_key("prompt pools")
    assert (cache_dir() / key[:2] / f"{key}.npy").is_file()
    again = embed_texts(texts, encode=lambda t: pytest.fail(f"recomputed {t}"))
    assert np.array_equal(first, again)
    # a changed text is a new key; the cache can be bypassed
    embed_texts(["prompt pools!"], encode=counting)
    embed_texts(["prompt pools"], encode=counting, cache=False)
    assert calls[1:] == [["prompt pools!"], ["prompt pools"]]


def test_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(embeddings, "embeddings_available", lambda: False)
    embeddings.load_model.cache_clear()
    with pytest.raises(ImportError, match=r"paperlib\[embeddings\]"):
        embeddings.load_model()
    embeddings.load_model.cache_clear()


def _papers():
    rows = [("Forget less", "we forget old tasks and forget again"), ("Forgetting", "tasks we forget"),
            ("Prompts", "a prompt pool of prompt vectors"), ("More prompts", "prompt tuning prompt"),
            ("Rewards", "a reward model of reward signals"), ("Reward again", "reward reward")]
    return pd.DataFrame([dict(paper_id=f"p{i}", title=t, abstract=a) for i, (t, a) in enumerate(rows)])


def test_index_joins_meaning_with_words(monkeypatch):
    monkeypatch.setattr(relate, "embed_texts", lambda texts: embed_texts(texts, encode=fake_encode))
    papers = _papers()
    index = PaperIndex(embeddings="minilm", embedding_weight=0.5).fit(papers)
    assert index.weights_ == {"words": 0.5, "meaning": 0.5, "themes": 0.0}
    words = (index.tfidf_ @ index.tfidf_.T).toarray()
    meaning = index.embeddings_ @ index.embeddings_.T
    assert np.allclose(index.similarity_matrix(), 0.5 * words + 0.5 * meaning, atol=1e-5)
    out = similar(papers, "p2", k=1, index=index)
    assert out["paper_id"].tolist() == ["p3"]
    # a query in words is embedded too
    assert similar(papers, "prompt", k=1, index=index)["paper_id"].iloc[0] in {"p2", "p3"}
    with pytest.raises(ValueError, match="embeddings"):
        PaperIndex(embeddings="bert").fit(papers)


def test_example_scorer_on_embeddings(monkeypatch):
    monkeypatch.setattr(semantic, "embed_texts", lambda texts: embed_texts(texts, encode=fake_encode))
    papers = _papers()
    gold = [dict(title="Forget less", theme=["continual-learning"], kind="method", domain=["general"]),
            dict(title="Prompts", theme=["parameter-efficient"], kind="method", domain=["general"])]
    scorer = semantic.ExampleScorer(encoder="minilm", k=1, example_weight=3.0, definition_weight=2.0).fit(papers, gold)
    extra = scorer.tag_scores(papers)
    # the nearest labelled paper's tags get the whole vote (3), a close definition up to 2 more
    assert 3.0 - 1e-6 <= extra[1]["continual-learning"][0] <= 5.0 + 1e-6
    assert "Forget less" in extra[1]["continual-learning"][1][0]
    assert extra[3]["parameter-efficient"][0] >= 3.0 - 1e-6
    whys = [w for row in extra for _, why in row.values() for w in why]
    assert whys and all("definition of" in w or "like labelled" in w for w in whys)
    assert any("close to the definition of continual-learning" in w for w in whys)


@pytest.mark.skipif(not embeddings.embeddings_available(), reason="the [embeddings] extra is not installed")
def test_minilm_puts_meaning_close():
    texts = ["Neural networks forget old tasks when they learn new ones.",
             "Mitigating catastrophic forgetting in continual learning.",
             "Training a reward model from human preference comparisons."]
    vecs = embed_texts(texts)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.1
    assert np.array_equal(embed_texts(texts[:1]), vecs[:1])  # from the cache
