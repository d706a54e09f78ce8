"""Method mentions, lineage and bipartite graphs, theme co-occurrence."""
from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

from paperlib import extract_methods, lineage_graph, method_counts, method_graph, tag_papers, theme_cooccurrence
from paperlib.corpus.methods import mentions


def test_mentions_recognise_names_by_shape():
    text = ("We compare EWC, LoRA, PPO, GRPO and DPO after RLHF and SFT; L2P, DualPrompt and iCaRL on "
            "MNIST, CIFAR-100, ImageNet-R and GLUE with GPT-4 and DeepSeek-R1-like rewards. The AI uses "
            "LLMs and LLM-based agents on a GPU, see https://github.com/OpenGVLab/VideoMAEv2. Part II.")
    assert mentions(text) == ["EWC", "LoRA", "PPO", "GRPO", "DPO", "RLHF", "SFT", "L2P", "DualPrompt", "iCaRL",
                              "MNIST", "CIFAR-100", "ImageNet-R", "GLUE", "GPT-4", "DeepSeek-R1"]


def test_mentions_skip_ordinary_words_and_numbers():
    assert mentions("The Transformer learns 7B tokens in 2023 with 90.0% accuracy on V2.") == []
    assert mentions("") == [] and mentions(None) == []


def test_extract_methods_adds_a_list_column(corpus):
    out = extract_methods(corpus)
    assert list(out.columns) == list(corpus.columns) + ["methods"]
    assert all(isinstance(m, list) for m in out["methods"])
    counts = method_counts(out).set_index("method")["papers"]
    for name in ("RLHF", "PPO", "GRPO", "DPO", "EWC", "LoRA", "MNIST"):
        assert counts[name] >= 1, name
    assert "LLM" not in counts and "AI" not in counts


def hand():
    return pd.DataFrame([
        dict(paper_id="a", title="FooNet: A Network", abstract="We present FooNet.", acronym="FooNet"),
        dict(paper_id="b", title="Better Things", abstract="We extend FooNet and BarRL to more tasks.", acronym=""),
        dict(paper_id="c", title="BarRL: Rewards", abstract="A foonet baseline (lower case) is weak.", acronym="BarRL"),
        dict(paper_id="d", title="Plain Title", abstract="Nothing named here.", acronym=""),
    ])


def test_lineage_edges_follow_named_methods():
    g = lineage_graph(hand())
    assert isinstance(g, nx.DiGraph)
    assert sorted(g.edges(data="method")) == [("a", "b", "FooNet"), ("c", "b", "BarRL")]
    assert g.nodes["a"]["title"] == "FooNet: A Network" and g.nodes["a"]["acronym"] == "FooNet"
    assert "d" not in g and "d" in lineage_graph(hand(), include_isolates=True)


def test_lineage_without_acronym_column_uses_the_title():
    g = lineage_graph(hand().drop(columns="acronym"))
    assert ("a", "b") in g.edges and ("c", "b") in g.edges


def test_lineage_on_shipped_corpus(corpus):
    g = lineage_graph(corpus)
    assert g.number_of_edges() >= 3
    assert not any(u == v for u, v in g.edges)
    for u, v, name in g.edges(data="method"):
        assert name in corpus.set_index("paper_id").loc[v, "abstract"]


def test_method_graph_is_bipartite():
    g = method_graph(hand())
    papers = {n for n, d in g.nodes(data=True) if d["kind"] == "paper"}
    methods = {n for n, d in g.nodes(data=True) if d["kind"] == "method"}
    assert papers == {"a", "b", "c", "d"} and methods == {"FooNet", "BarRL"}
    assert nx.is_bipartite(g)
    assert {frozenset(e) for e in g.edges()} == {frozenset(e) for e in [("a", "FooNet"), ("b", "FooNet"), ("b", "BarRL")]}
    assert g.nodes["FooNet"]["papers"] == 2
    assert set(method_graph(hand(), min_papers=2).nodes) == papers | {"FooNet"}


def test_theme_cooccurrence_counts_pairs():
    tagged = pd.DataFrame({"theme": [["x", "y"], ["x"], ["y", "z", "x"], []]})
    table = theme_cooccurrence(tagged)
    assert list(table.index) == ["x", "y", "z"] and list(table.columns) == ["x", "y", "z"]
    assert table.loc["x", "x"] == 3 and table.loc["x", "y"] == 2 and table.loc["y", "z"] == 1
    assert (table.to_numpy() == table.to_numpy().T).all()


def test_theme_cooccurrence_follows_the_taxonomy_order(corpus):
    table = theme_cooccurrence(tag_papers(corpus.head(50)))
    assert table.index[0] == "continual-learning" and table.shape == (15, 15)
    with pytest.raises(KeyError):
        theme_cooccurrence(corpus)
