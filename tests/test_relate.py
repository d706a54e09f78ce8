"""TF-IDF relations: nearest neighbours with reasons, the k-NN graph, clusters, stability, the map."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from paperlib import (cluster_papers, cluster_stability, cluster_stability_pairs, find_paper, knn_graph,
                      paper_map, similar, tfidf_matrix)
from paperlib.cli import main
from paperlib.corpus.relate import analyse, class_tfidf_terms, nearest_neighbours

TOPICS = {
    "forgetting": "catastrophic forgetting replay buffer rehearsal continual tasks sequence",
    "prompts": "prompt tuning frozen backbone prompt pool adapters parameter efficient",
    "rewards": "reward model human preference ranking responses policy feedback",
}


def hand_corpus(per_topic=4):
    rows = []
    for topic, words in TOPICS.items():
        w = words.split()
        for i in range(per_topic):
            j = i % (len(w) - 1)
            rows.append(dict(paper_id=f"{topic}-{i}", title=f"{w[j]} {w[j + 1]} study {topic}",
                             abstract=" ".join(w[j:] + w[:j]) + f" extra{i}"))
    return pd.DataFrame(rows)


def test_analyse_keeps_adjacent_phrases_only():
    assert analyse("Catastrophic forgetting is hard, and replay helps.") == [
        "catastrophic", "forgetting", "hard", "replay", "helps", "catastrophic forgetting", "replay helps"]


def test_tfidf_rows_are_unit_length(corpus):
    matrix, vec = tfidf_matrix(corpus)
    assert matrix.shape == (len(corpus), len(vec.get_feature_names_out()))
    assert np.allclose(sp.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_similar_finds_the_same_topic_and_says_why():
    papers = hand_corpus()
    out = similar(papers, "forgetting-0", k=3)
    assert list(out.columns) == ["paper_id", "title", "similarity", "shared_terms", "shared_tags", "why"]
    assert set(out["paper_id"]) == {"forgetting-1", "forgetting-2", "forgetting-3"}
    assert out["similarity"].is_monotonic_decreasing
    assert "forgetting" in " ".join(out["shared_terms"].iloc[0])
    assert "continual-learning" in out["shared_tags"].iloc[0]  # untagged input is tagged internally
    assert out["why"].iloc[0].startswith("cosine ")
    # an exact title works too, and k larger than the corpus gives everyone else
    assert len(similar(papers, papers["title"].iloc[5], k=50)) == len(papers) - 1


def test_similar_cosine_matches_a_direct_computation(corpus):
    out = similar(corpus, corpus["paper_id"].iloc[0], k=1)
    matrix, _ = tfidf_matrix(corpus)
    j = corpus.index[corpus["paper_id"] == out["paper_id"].iloc[0]][0]
    assert out["similarity"].iloc[0] == pytest.approx(float(matrix[0].multiply(matrix[j]).sum()), rel=1e-5)


def test_similar_unknown_paper_is_a_clear_error():
    with pytest.raises(KeyError, match="no paper"):
        similar(hand_corpus(), "nope")


def test_find_paper_by_id_title_and_words():
    papers = hand_corpus()
    assert find_paper(papers, "prompts-2") == 6
    assert find_paper(papers, papers["title"].iloc[9].upper()) == 9
    assert find_paper(papers, "Preference ranking") == 11
    with pytest.raises(KeyError, match="papers match"):
        find_paper(papers, "study")


def test_exact_neighbours_match_brute_force():
    m = normalize(sp.random(60, 40, density=0.2, random_state=1, format="csr"))
    idx, sims = nearest_neighbours(m, 4, chunk=7)
    dense = (m @ m.T).toarray()
    np.fill_diagonal(dense, -np.inf)
    assert np.allclose(np.sort(dense, axis=1)[:, ::-1][:, :4], sims, atol=1e-6)
    assert not (idx == np.arange(60)[:, None]).any()


def test_grouped_neighbours_are_true_cosines_and_find_clear_neighbours():
    papers = pd.concat([hand_corpus(8)] * 1, ignore_index=True)
    matrix, _ = tfidf_matrix(papers)
    idx, sims = nearest_neighbours(matrix, 3, exact=False, seed=0)
    for i in range(len(papers)):
        for j, s in zip(idx[i], sims[i]):
            assert s == pytest.approx(float(matrix[i].multiply(matrix[j]).sum()), abs=1e-6)
    exact_idx, _ = nearest_neighbours(matrix, 3, exact=True)
    recall = np.mean([len(set(a) & set(b)) / 3 for a, b in zip(idx, exact_idx)])
    assert recall >= 0.8


def test_knn_graph_table(corpus):
    g = knn_graph(corpus, k=5)
    assert list(g.columns) == ["source", "target", "similarity", "rank"]
    assert len(g) == 5 * len(corpus) and (g["source"] != g["target"]).all()
    assert g.groupby("source")["similarity"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_class_tfidf_hand_computed():
    out = class_tfidf_terms({"a": ["apple apple pear"], "b": ["pear plum"]}, n=5)
    # terms are words and adjacent pairs. a: apple 2, pear 1, "apple apple" 1, "apple pear" 1 (5);
    # b: pear 1, plum 1, "pear plum" 1 (3); mean terms per class 4;
    # score = count / class total * log(1 + 4 / total count): apple 2, pear 2, plum 1
    a = dict(out["a"])
    assert a["apple"] == pytest.approx(2 / 5 * np.log(1 + 4 / 2))
    assert a["pear"] == pytest.approx(1 / 5 * np.log(1 + 4 / 2))
    # b: "pear plum" and "plum" tie (1/3 * log 5); the phrase comes first, and "plum" repeats it
    assert out["b"][0] == ("pear plum", pytest.approx(1 / 3 * np.log(1 + 4 / 1)))
    assert [t for t, _ in out["b"]] == ["pear plum"]
    # "apple apple" repeats a better-ranked word, so it is skipped
    assert "apple apple" not in a


def test_clusters_separate_clear_topics_and_are_labelled():
    papers = hand_corpus(6)
    out = cluster_papers(papers, 3, seed=0)
    assert list(out.columns[:3]) == ["paper_id", "cluster", "cluster_label"]
    topic = papers["paper_id"].str.split("-").str[0]
    assert out.groupby(topic.to_numpy())["cluster"].nunique().eq(1).all()
    assert out["cluster"].nunique() == 3
    labels = dict(zip(topic, out["cluster_label"]))
    assert "forgetting" in labels["forgetting"] or "replay" in labels["forgetting"]
    assert cluster_stability(papers, 3, seeds=(0, 1, 2)) == pytest.approx(1.0)


def test_cluster_shipped_corpus_is_deterministic(corpus):
    a, b = cluster_papers(corpus, seed=3), cluster_papers(corpus, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a["cluster"].nunique() == 11  # sqrt(257 / 2)
    sizes = a["cluster"].value_counts().sort_index()
    assert sizes.is_monotonic_decreasing
    assert a["cluster_label"].str.len().gt(0).all()


def test_cluster_stability_pairs(corpus):
    pairs = cluster_stability_pairs(corpus.head(80), 4, seeds=(0, 1, 2))
    assert list(pairs[["seed_a", "seed_b"]].itertuples(index=False, name=None)) == [(0, 1), (0, 2), (1, 2)]
    assert pairs["ari"].between(-1, 1).all()
    assert cluster_stability(corpus.head(80), 4, seeds=(0, 1, 2)) == pytest.approx(pairs["ari"].mean())
    with pytest.raises(ValueError, match="two seeds"):
        cluster_stability(corpus.head(80), 4, seeds=(0,))
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_papers(corpus.head(10), 10)


def test_paper_map_is_deterministic(corpus):
    small = corpus.head(60)
    a, b = paper_map(small, seed=1), paper_map(small, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["paper_id", "x", "y"] and np.isfinite(a[["x", "y"]]).all().all()
    assert len(paper_map(small, method="svd")) == 60
    with pytest.raises(ValueError, match="method"):
        paper_map(small, method="umap")


def test_cli_similar(corpus_path, capsys):
    assert main(["similar", str(corpus_path), "Overcoming catastrophic forgetting", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("papers closest to: Overcoming catastrophic forgetting")
    assert sum(line.lstrip().startswith(("1.", "2.", "3.")) for line in out) == 3
    assert main(["similar", str(corpus_path), "learning"]) == 2
    assert "papers match" in capsys.readouterr().err


def test_embeddings_are_optional_and_say_what_is_missing():
    from paperlib.corpus.relate import embedding_matrix

    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="sentence-transformers"):
            embedding_matrix(hand_corpus())
    else:
        pytest.skip("sentence-transformers is installed; the optional path is not under test here")
