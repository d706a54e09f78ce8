"""Corpus figures and reading tables: hand-checked counts, escaped hover text, figure structure."""
from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

from paperlib.corpus import figures as fc

INJECTION = "<script>alert(1)</script>"


@pytest.fixture
def tagged():
    return pd.DataFrame({
        "paper_id": ["a", "b", "c"],
        "title": ["EWC: Elastic Weights", INJECTION, "DPO Revisited"],
        "acronym": ["EWC", "", "DPO"],
        "abstract": ["First sentence here. Second one.", "We use EWC. More.", "Direct preference. EWC too."],
        "code_urls": [["https://github.com/x/ewc"], [], ["http://www.gitlab.com/y/dpo", "https://github.com/z/d"]],
        "theme": [["continual-learning", "distillation"], [], ["alignment-feedback"]],
        "kind": ["method", "survey", "method"],
        "domain": [["general"], ["language"], ["language"]],
    })


def test_first_sentence():
    assert fc.first_sentence("One two. Three four.") == "One two."
    assert fc.first_sentence("e.g. this stays. Next") == "e.g. this stays."
    assert fc.first_sentence("x" * 300, limit=10) == "x" * 9 + "…"


def test_facet_pairs_count_by_hand(tagged):
    pairs = fc.compute_facet_pairs(tagged, "theme", "kind")
    got = {(r.theme, r.kind): r.papers for r in pairs.itertuples()}
    assert got == {("continual-learning", "method"): 1, ("distillation", "method"): 1,
                   ("alignment-feedback", "method"): 1, (fc.NO_TAG, "survey"): 1}
    fig = fc.plot_facet_sunburst(pairs).to_dict()
    trace = fig["data"][0]
    assert trace["type"] == "sunburst" and sum(v for v, p in zip(trace["values"], trace["parents"]) if p == "") == 4


def test_hover_text_is_escaped(tagged):
    hover = fc.paper_hover(tagged)
    assert INJECTION not in hover[1] and "&lt;script&gt;alert(1)&lt;/script&gt;" in hover[1]
    assert "theme: (none)" in hover[1] and "First sentence here." in hover[0] and "Second" not in hover[0]


def test_paper_map_traces_per_theme_and_highlight(tagged):
    coords = pd.DataFrame({"paper_id": ["a", "b", "c"], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.0]})
    fig = fc.plot_paper_map(coords, tagged, highlight=["c"]).to_dict()
    names = [t["name"] for t in fig["data"]]
    assert names == ["alignment-feedback", "continual-learning", fc.NO_TAG, "selection"]
    assert fig["data"][-1]["customdata"] == ("c",) or list(fig["data"][-1]["customdata"]) == ["c"]
    assert all(INJECTION not in str(t.get("text")) for t in fig["data"])


def test_cooccurrence_heatmap():
    m = pd.DataFrame([[3, 1], [1, 2]], index=["x", "<y>"], columns=["x", "<y>"])
    trace = fc.plot_cooccurrence(m).data[0]
    assert trace.type == "heatmap" and list(trace.x) == ["x", "&lt;y&gt;"]
    assert [list(r) for r in trace.z] == [[3, 1], [1, 2]]


def test_lineage_network(tagged):
    g = nx.DiGraph()
    g.add_edge("a", "b", method="EWC")  # b names the method a introduces
    g.add_edge("a", "c", method="EWC")
    nodes = fc.plot_lineage(g, tagged).data[-1]
    named_by = dict(zip(nodes.customdata, nodes.marker.color))
    assert named_by == {"a": 2, "b": 0, "c": 0}  # colour = how many papers name its method
    assert any("named by 2 papers" in h for h in nodes.hovertext)
    assert all(INJECTION not in h for h in nodes.hovertext)
    assert fc.plot_lineage(nx.DiGraph(), tagged).to_dict()["data"] == []


def test_reading_tables(tagged):
    links = fc.code_links_table(tagged)
    assert links["host"].tolist() == ["github.com", "gitlab.com", "github.com"]
    desc = dict(fc.describe_corpus(tagged).values.tolist())
    assert desc["papers"] == 3 and desc["papers with a code link"] == 2 and desc["papers without a theme"] == 1
    clusters = pd.DataFrame({"paper_id": ["a", "b", "c"], "cluster": [1, 0, 0], "cluster_label": ["p", "q", "q"]})
    assert fc.cluster_summary(clusters).values.tolist() == [[0, "q", 2], [1, "p", 1]]
    terms = pd.DataFrame({"tag": ["t", "t", "u"], "term": ["w1", "w2", "w3"], "score": [1, 0.5, 1]})
    assert fc.terms_table(terms).values.tolist() == [["t", "w1, w2"], ["u", "w3"]]


def test_facet_counts_dropdown(tagged):
    from paperlib.corpus.tagging import compute_tag_counts

    fig = fc.plot_facet_counts(tagged, compute_tag_counts).to_dict()
    assert [t["visible"] for t in fig["data"]] == [True, False, False]
    assert len(fig["layout"]["updatemenus"][0]["buttons"]) == 3
