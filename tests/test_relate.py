"""TF-IDF relations: nearest neighbours with reasons, the k-NN graph, clusters, stability, the map."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from paperlib import (PaperIndex, cluster_papers, cluster_stability, cluster_stability_pairs, find_paper, knn_graph,
                      paper_map, similar, tag_papers, tfidf_matrix)
from paperlib.cli import main
from paperlib.corpus import relate
from paperlib.corpus.relate import nearest_neighbours, neighbour_table, why_related
from paperlib.corpus.taxonomy import parse_taxonomy
from paperlib.corpus.terms import analyse, class_tfidf_terms

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
    papers = tag_papers(hand_corpus())
    out = similar(papers, "forgetting-0", k=3)
    assert list(out.columns) == ["paper_id", "title", "similarity", "shared_terms", "shared_tags", "why"]
    assert set(out["paper_id"]) == {"forgetting-1", "forgetting-2", "forgetting-3"}
    assert out["similarity"].is_monotonic_decreasing
    assert "forgetting" in " ".join(out["shared_terms"].iloc[0])
    assert "continual-learning" in out["shared_tags"].iloc[0]
    assert out["why"].iloc[0].startswith("cosine ") and "both tagged continual-learning" in out["why"].iloc[0]
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


def test_cli_similar_tags_with_the_given_taxonomy(corpus_path, tmp_path, capsys):
    own = tmp_path / "own.yaml"
    own.write_text(OWN_TAXONOMY, encoding="utf-8")
    assert main(["similar", str(corpus_path), "Overcoming catastrophic forgetting", "-k", "3",
                 "--taxonomy", str(own)]) == 0
    out = capsys.readouterr().out
    assert "both tagged memory" in out and "continual-learning" not in out


# ------------------------------------------------------------------ tags in "why related"

OWN_TAXONOMY = """\
name: own
facets:
  topic:
    select: multi
    default: other
    tags:
      memory:
        definition: Keeping old tasks.
        rules:
          - {weight: 1, phrases: [replay, rehearsal, forgetting]}
      prompting:
        definition: Prompts.
        rules:
          - {weight: 1, phrases: [prompt*]}
      other:
        definition: Anything else.
  form:
    select: one
    default: study
    tags:
      study:
        definition: Every paper here.
"""


def test_untagged_papers_are_related_by_words_and_never_tagged(monkeypatch):
    def no_tagging(*args, **kwargs):
        raise AssertionError("similar tagged the papers")

    monkeypatch.setattr(relate, "tag_papers", no_tagging)
    out = similar(hand_corpus(), "forgetting-0", k=3)
    assert set(out["paper_id"]) == {"forgetting-1", "forgetting-2", "forgetting-3"}
    assert out["shared_tags"].map(len).eq(0).all()
    assert out["shared_terms"].map(len).gt(0).all()
    assert not out["why"].str.contains("tagged").any()


def test_similar_honours_the_users_taxonomy(monkeypatch):
    own = parse_taxonomy(OWN_TAXONOMY)
    out = similar(hand_corpus(), "forgetting-0", k=3, taxonomy=own)
    assert out["shared_tags"].tolist() == [["memory"]] * 3  # one-tag facets and defaults are left out
    assert out["why"].str.endswith("; both tagged memory").all()
    # papers already tagged with it are read, not tagged again
    tagged = tag_papers(hand_corpus(), own)
    monkeypatch.setattr(relate, "tag_papers", lambda *a, **k: pytest.fail("tagged twice"))
    pd.testing.assert_frame_equal(similar(tagged, "forgetting-0", k=3, taxonomy=own), out)
    # without the taxonomy, the shipped taxonomy's facets are looked for and not found: words only
    assert similar(tagged, "forgetting-0", k=3)["shared_tags"].map(len).eq(0).all()


def test_why_related_by_hand():
    assert why_related(0.456, ["replay buffer", "rehearsal"], ["continual-learning"]) == (
        "cosine 0.46; shared terms: replay buffer, rehearsal; both tagged continual-learning")
    assert why_related(0.5) == "cosine 0.50"


def test_neighbour_table_says_what_similar_says():
    papers = tag_papers(hand_corpus(5))
    table = neighbour_table(papers, k=3)
    assert list(table.columns) == ["paper_id", "rank", "neighbour_id", "neighbour_title", "similarity",
                                   "shared_terms", "shared_tags", "why"]
    for pid in ("forgetting-0", "prompts-2", "rewards-4"):
        mine = table[table["paper_id"] == pid].reset_index(drop=True)
        one = similar(papers, pid, k=3)
        assert mine["neighbour_id"].tolist() == one["paper_id"].tolist()
        for col in ("shared_terms", "shared_tags", "why"):
            assert mine[col].tolist() == one[col].tolist()


# ------------------------------------------------------------------ the fitted index

def test_paper_index_has_the_estimator_shape():
    index = PaperIndex(n_neighbors=3, n_clusters=3, map_method="svd", random_state=2)
    assert not [name for name in vars(index) if name.endswith("_")]  # __init__ stores parameters only
    assert index.get_params()["random_state"] == 2
    with pytest.raises(NotFittedError):
        index.neighbours_
    papers = hand_corpus(6)
    assert index.fit(papers) is index
    assert index.tfidf_.shape == (len(papers), len(index.terms_))
    assert index.vectorizer_.get_feature_names_out().tolist() == index.terms_.tolist()
    idx, sims = index.neighbours_
    assert idx.shape == sims.shape == (len(papers), 3)
    assert sorted(set(index.cluster_labels_)) == [0, 1, 2]
    assert index.map_.shape == (len(papers), 2)
    assert not [name for name in vars(clone(index)) if name.endswith("_")]


def test_an_index_gives_what_the_functions_give_without_one(corpus):
    papers = tag_papers(corpus.head(60))
    index = PaperIndex(random_state=5).fit(papers)  # its own seed does not override the functions' seed
    pd.testing.assert_frame_equal(knn_graph(papers, k=4, index=index), knn_graph(papers, k=4))
    pd.testing.assert_frame_equal(similar(papers, papers["paper_id"].iloc[3], index=index),
                                  similar(papers, papers["paper_id"].iloc[3]))
    pd.testing.assert_frame_equal(cluster_papers(papers, 4, seed=1, index=index), cluster_papers(papers, 4, seed=1))
    pd.testing.assert_frame_equal(paper_map(papers, method="svd", seed=1, index=index),
                                  paper_map(papers, method="svd", seed=1))
    pd.testing.assert_frame_equal(cluster_stability_pairs(papers, 4, seeds=(0, 1), index=index),
                                  cluster_stability_pairs(papers, 4, seeds=(0, 1)))
    # the learned attributes are what the functions give under the index's parameters
    index.set_params(n_neighbors=4, n_clusters=4, map_method="svd")
    assert index.cluster_labels_.tolist() == cluster_papers(papers, 4, seed=5)["cluster"].tolist()
    assert index.map_[:, 0].tolist() == paper_map(papers, method="svd", seed=5)["x"].tolist()
    assert index.paper_ids_[index.neighbours_[0]].ravel().tolist() == knn_graph(papers, k=4)["target"].tolist()


def test_an_index_of_other_papers_is_refused(corpus):
    index = PaperIndex().fit(corpus.head(30))
    with pytest.raises(ValueError, match="fitted on other papers"):
        knn_graph(corpus.head(40), index=index)
    with pytest.raises(ValueError, match="PaperIndex\\(taxonomy"):
        similar(corpus.head(30), corpus["paper_id"].iloc[0], index=index, taxonomy=parse_taxonomy(OWN_TAXONOMY))


def test_corpus_modules_import_each_other_at_the_top_only():
    import ast
    from pathlib import Path

    import paperlib.corpus

    folder = Path(paperlib.corpus.__file__).parent
    inner = []
    for path in sorted(folder.glob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner += [f"{path.name}:{node.lineno}" for node in ast.walk(fn)
                          if isinstance(node, ast.ImportFrom) and (node.level or "paperlib" in (node.module or ""))]
    assert inner == []
    tagging_imports = {node.module for node in ast.walk(ast.parse((folder / "tagging.py").read_text(encoding="utf-8")))
                       if isinstance(node, ast.ImportFrom)}
    assert "paperlib.corpus.relate" not in tagging_imports and "paperlib.corpus.terms" in tagging_imports


# ------------------------------------------------------------------ words, themes and queries in words

def test_similar_ranks_papers_by_a_text_when_no_title_matches():
    papers = tag_papers(hand_corpus())
    out = similar(papers, "which prompt pool for a frozen backbone", k=3)
    assert out.attrs["query"] == "text"
    assert set(out["paper_id"]) <= {f"prompts-{i}" for i in range(4)} and len(out) == 3
    assert all(out["shared_terms"].map(len) > 0) and out["why"].str.startswith("cosine ").all()
    assert similar(papers, "prompts-1", k=3).attrs["query"] == "paper"
    with pytest.raises(KeyError, match="none of its words"):
        relate.similar_to_text(papers, "zzz qqq")


def test_theme_profiles_join_the_similarity_by_their_weight():
    papers = tag_papers(hand_corpus())
    index = PaperIndex(tag_weight=0.3).fit(papers)
    assert index.weights_ == {"words": pytest.approx(0.7), "meaning": 0.0, "themes": pytest.approx(0.3)}
    words = (index.tfidf_ @ index.tfidf_.T).toarray()
    themes = index.profiles_ @ index.profiles_.T
    assert np.allclose(index.similarity_matrix(), 0.7 * words + 0.3 * themes, atol=1e-5)
    # untagged papers (and tag_weight=0) are compared by words alone
    plain = PaperIndex().fit(hand_corpus())
    assert plain.profiles_ is None and plain.weights_["words"] == 1.0
    assert np.allclose(plain.similarity_matrix(), (plain.tfidf_ @ plain.tfidf_.T).toarray(), atol=1e-6)
    assert PaperIndex(tag_weight=0).fit(papers).weights_["themes"] == 0.0


def test_clusters_of_the_shipped_corpus_are_stable_across_seeds(corpus):
    tagged = tag_papers(corpus)
    index = PaperIndex().fit(tagged)
    pairs = cluster_stability_pairs(tagged, seeds=(0, 1, 2), index=index)
    assert pairs["ari"].mean() >= 0.75
    assert 0.5 <= pairs.attrs["nmi_with_theme"] <= 1.0
    words_only = cluster_stability(corpus, seeds=(0, 1, 2))  # untagged: words alone, still a consensus
    assert words_only >= 0.6


def test_neighbour_quality_counts_shared_labelled_themes():
    from paperlib.corpus.evaluation import neighbour_quality

    papers = hand_corpus()
    gold = [dict(title=t, theme=[pid.split("-")[0]]) for pid, t in zip(papers["paper_id"], papers["title"])]
    table = neighbour_quality(papers, gold, k=3)
    assert len(table) == len(papers) and (table["neighbours"] == 3).all()
    assert table["share"].mean() == pytest.approx(1.0)  # every paper's 3 nearest are its own topic
    # a similarity that prefers other topics scores 0
    other = np.array([[0.0 if a.split("-")[0] == b.split("-")[0] else 1.0 for b in papers["paper_id"]]
                      for a in papers["paper_id"]])
    assert neighbour_quality(papers, gold, k=3, similarity=other)["share"].mean() == 0.0
