"""Names in abstracts (typed, related, with evidence), the vocabulary file, lineage and method
graphs, families, their figures, the explorer's method filter and the measured quality against
the shipped hand labels."""
from __future__ import annotations

import json
import re

import networkx as nx
import pandas as pd
import pytest

from paperlib import extract_methods, lineage_graph, method_counts, method_graph, tag_papers, theme_cooccurrence
from paperlib.corpus.formats import latex_accents
from paperlib.corpus.method_figures import (plot_lineage_network, plot_method_network, plot_method_relations,
                                            relation_summary)
from paperlib.corpus.methods import (evaluate_mentions, extract_mentions, labels_as_mentions, load_mention_gold,
                                     long_form, mention_scores, mentions, method_families, method_network,
                                     method_relations, shipped_mention_labels, top_methods_by_theme)
from paperlib.corpus.vocabulary import VocabularyError, load_vocabulary, name_key, parse_vocabulary

INJECTION = "<img src=x onerror=alert(1)>"


def one(abstract: str, title: str = "A Study", **extra) -> pd.DataFrame:
    """The mentions of one paper, indexed by name."""
    papers = pd.DataFrame([dict(paper_id="p", title=title, abstract=abstract, **extra)])
    return extract_mentions(papers)


def rel(abstract: str, name: str, title: str = "A Study") -> set[str]:
    table = one(abstract, title)
    return set(table.loc[table["name"] == name, "relation"])


def kind(abstract: str, name: str, title: str = "A Study") -> str:
    table = one(abstract, title)
    return table.loc[table["name"] == name, "type"].iloc[0]


# ---------------------------------------------------------------- alias matching

@pytest.mark.parametrize("spelling, canonical", [
    ("Proximal Policy Optimization", "PPO"), ("proximal policy optimisation", "PPO"),
    ("direct preference optimization", "DPO"), ("low-rank adaptation", "LoRA"), ("low rank adaptation", "LoRA"),
    ("elastic weight consolidation", "EWC"), ("Elastic-Weight Consolidation", "EWC"),
    ("LoRAs", "LoRA"), ("LORA", "LoRA"), ("adapters", "adapter"), ("CIFAR100", "CIFAR-100"), ("CIFAR 100", "CIFAR-100"),
    ("LLaMA-7B", "LLaMA"), ("Qwen2.5-7B-Instruct", "Qwen"), ("GSM8k", "GSM8K"), ("K400", "Kinetics-400"),
])
def test_aliases_match_in_any_case_hyphenation_and_number(spelling, canonical):
    assert mentions(f"We train it with {spelling} here.") == [canonical]


def test_capitals_decide_for_short_names():
    # an alias written in capitals keeps them; a one-word name with inner capitals needs one too
    assert mentions("We solve MATH problems.") == ["MATH"]
    assert mentions("We solve math problems and follow the guiding stars of lora.") == []
    assert mentions("GPT-4o beats GPT-4, DeepSeek-R1-Zero and DeepSeek-R1.") == ["GPT-4o", "GPT-4", "DeepSeek-R1-Zero",
                                                                                   "DeepSeek-R1"]
    assert mentions("CIFAR-100 and CIFAR-10 differ.") == ["CIFAR-100", "CIFAR-10"]  # no prefix match


def test_shapes_find_names_the_vocabulary_lacks_and_skip_generic_ones():
    text = ("We compare FooNet and BarRL-2 on the ZedQA benchmark with LLMs and LLM-based agents on a GPU, "
            "see https://github.com/Org/VideoMAEv2. Part II.")
    assert mentions(text) == ["FooNet", "BarRL-2", "ZedQA"]
    assert mentions("The Transformer learns 7B tokens in 2023 with 90.0% accuracy on V2.") == []
    assert mentions("") == [] and mentions(None) == []


def test_long_form_of_a_short_form():
    assert long_form("APP", "we propose Anytime Progressive Pruning") == "Anytime Progressive Pruning"
    assert long_form("LoRA", "with low-rank adaptation") == "low-rank adaptation"
    assert long_form("XYZ", "nothing matching here") == ""


def test_a_defined_short_form_names_its_long_form_everywhere():
    table = one("We design an algorithm termed 'Iterative Data Smoothing' (IDS). IDS is simple.",
                title="Iterative Data Smoothing: Mitigating Overfitting")
    assert table["name"].tolist() == ["IDS"]
    assert table["relation"].tolist() == ["introduces"]
    # a long form that holds a vocabulary term names the short form, not the term
    table = one("Data-free Knowledge Distillation (DFKD) moves knowledge without data.")
    assert table["name"].tolist() == ["DFKD"]


# ---------------------------------------------------------------- types

def test_vocabulary_types():
    table = one("We fine-tune LLaMA with LoRA on MMLU and report BLEU with PyTorch.").set_index("name")["type"]
    assert table.to_dict() == {"LLaMA": "model", "LoRA": "method", "MMLU": "benchmark", "BLEU": "metric",
                               "PyTorch": "tool"}


@pytest.mark.parametrize("abstract, name, expected", [
    ("Results on ZorbQA show gains.", "ZorbQA", "benchmark"),  # "on X" and the ending QA
    ("We report accuracy on the new FlimFlam benchmark.", "FlimFlam", "benchmark"),
    ("We evaluate Zlorp-7B and others.", "Zlorp", "model"),  # a size after the name
    ("We propose FooNet, a simple method for pruning.", "FooNet", "method"),
    ("We introduce PEERX, a collaborative language model that writes.", "PEERX", "model"),
    ("We release DoReMiX, a toolkit for data mixtures.", "DoReMiX", "tool"),
    ("We train with Zebra Hoof Pruning (ZHP) throughout.", "ZHP", "method"),  # its long form
    ("Scores on MMLU, GlorpSet and GSM8K improve.", "GlorpSet", "benchmark"),  # its list neighbours
    ("The KqZ is unclear.", "KqZ", "unknown"),  # nothing tells: unknown, not dropped
])
def test_type_of_an_unlisted_name_is_guessed_from_context(abstract, name, expected):
    assert kind(abstract, name) == expected


def test_abbreviations_of_ideas_are_not_names():
    table = one("We study learning rate schedules (LRS) and the Knowledge Integration Theory (KIT).")
    assert table.empty


# ---------------------------------------------------------------- relations

@pytest.mark.parametrize("abstract, name, expected", [
    ("Our method is based on PPO and works well.", "PPO", "builds-on"),
    ("We extend DualPrompt to new settings.", "DualPrompt", "builds-on"),
    ("We use LoRA for efficiency.", "LoRA", "builds-on"),
    ("A PPO-based learner.", "PPO", "builds-on"),
    ("Unlike RLHF, our method needs no reward model.", "RLHF", "replaces"),
    ("We optimise preferences directly instead of PPO.", "PPO", "replaces"),
    ("The policy is trained without RLHF.", "RLHF", "replaces"),
    ("An RLHF-free recipe.", "RLHF", "replaces"),
    ("Our model outperforms GPT-4 on two tasks.", "GPT-4", "compares"),
    ("Compared with EWC, forgetting drops.", "EWC", "compares"),
    ("It is faster than DPO.", "DPO", "compares"),
    ("Our method outperforms strong baselines such as PPO, DPO and KTO.", "KTO", "compares"),  # a list
    ("RLHF is popular for alignment.", "RLHF", "mentions"),
])
def test_each_relation_cue(abstract, name, expected):
    assert rel(abstract, name) == {expected}


def test_relations_keep_their_sentence_and_cue():
    table = one("Alignment matters. Our method outperforms GPT-4 on math. It is cheap.")
    row = table.set_index("name").loc["GPT-4"]
    assert row["sentence"] == "Our method outperforms GPT-4 on math."
    assert row["cue"] == "outperforms" and row["relation"] == "compares"


def test_cues_stop_where_their_clause_or_phrase_ends():
    assert rel("Our model outperforms the baseline on MMLU.", "MMLU") == {"mentions"}  # a benchmark is no rival
    assert rel("It gains more than 100% in benchmarks like BBH.", "BBH") == {"mentions"}
    assert rel("Models such as GPT-4 use RLHF.", "RLHF") == {"mentions"}  # "use" only counts for the paper itself
    assert rel("We use RLHF.", "RLHF") == {"builds-on"}


def test_a_paper_introduces_the_name_its_title_introduces():
    table = one("We present FooNet. FooNet beats BarNet.", title="FooNet: A Better Network")
    assert set(table.loc[table["name"] == "FooNet", "relation"]) == {"introduces"}
    assert set(table.loc[table["name"] == "BarNet", "relation"]) == {"compares"}


def test_one_row_per_relation_and_no_mentions_row_beside_a_relation():
    table = one("We build on PPO. PPO is popular. Our method outperforms PPO.")
    assert sorted(table.loc[table["name"] == "PPO", "relation"]) == ["builds-on", "compares"]


# ---------------------------------------------------------------- the vocabulary file

def test_a_users_vocabulary_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nterms:\n  - {name: Zebra Tuning, type: method, aliases: [ZT, zebra-tuning]}\n"
                    "  - {name: HoofBench, type: benchmark}\n", encoding="utf-8")
    vocab = load_vocabulary(path)
    assert vocab.name == "mine" and len(vocab.terms) == 2
    assert vocab.relations == load_vocabulary().relations  # sections left out come from the shipped file
    papers = pd.DataFrame([dict(paper_id="a", title="T", abstract="Unlike zebra tuning, ours wins on HoofBench. PPO.")])
    table = extract_mentions(papers, path).set_index("name")
    assert table.loc["Zebra Tuning", "relation"] == "replaces" and table.loc["HoofBench", "type"] == "benchmark"
    assert table.loc["PPO", "type"] == "unknown"  # not in this vocabulary: found by its shape, untyped


@pytest.mark.parametrize("text, fragment, line", [
    ("terms:\n  - {name: A, type: gadget}\n", "type must be one of", 2),
    ("terms:\n  - {name: A, type: method}\n  - {name: B, type: method, aliases: [a]}\n", "already a spelling of", 3),
    ("terms:\n  - {name: A, type: method, colour: red}\n", "unknown key 'colour'", 2),
    ("terms: [\n", "not valid YAML", 2),
    ("name: x\n", "needs a list 'terms'", None),
    ("terms: []\nrelations:\n  admires: {before: [likes]}\n", "unknown key 'admires'", 3),
])
def test_vocabulary_errors_name_the_term_and_line(text, fragment, line):
    with pytest.raises(VocabularyError, match=fragment) as info:
        parse_vocabulary(text, source="v.yaml")
    assert info.value.line == line


def test_name_keys():
    assert name_key("Low-Rank  Adaptation") == name_key("low rank adaptation") == "lowrankadaptation"
    assert name_key("optimisation") == name_key("optimization")


# ---------------------------------------------------------------- the corpus

@pytest.fixture(scope="module")
def tagged(corpus):
    return tag_papers(corpus)


@pytest.fixture(scope="module")
def corpus_mentions(tagged):
    return extract_mentions(tagged)


def test_extract_methods_adds_a_list_column(corpus, corpus_mentions):
    out = extract_methods(corpus, mentions_table=corpus_mentions)
    assert list(out.columns) == list(corpus.columns) + ["methods"]
    assert all(isinstance(m, list) for m in out["methods"])
    counts = method_counts(out).set_index("method")["papers"]
    for name in ("RLHF", "PPO", "GRPO", "DPO", "EWC", "LoRA", "MNIST"):
        assert counts[name] >= 1, name
    assert "LLM" not in counts and "AI" not in counts


def test_corpus_mentions_are_typed_and_carry_evidence(corpus, corpus_mentions):
    m = corpus_mentions
    assert list(m.columns) == ["paper_id", "name", "type", "relation", "cue", "sentence", "surface", "source"]
    assert set(m["type"]) <= {"method", "model", "benchmark", "metric", "tool", "unknown"}
    assert set(m["relation"]) == {"introduces", "builds-on", "replaces", "compares", "mentions"}
    assert (m["sentence"].str.len() > 0).all()
    # the sentence as written, LaTeX accents shown as the letters they make
    flat = lambda text: " ".join(re.sub(r"https?://\S+|www\.\S+", " ", latex_accents(text)).split())
    abstracts = {p: flat(t + " " + a) for p, t, a in zip(corpus["paper_id"], corpus["title"], corpus["abstract"])}
    assert all(s in abstracts[p] for p, s in zip(m["paper_id"], m["sentence"]))
    assert not m.duplicated(["paper_id", "name", "relation"]).any()
    # a stated relation replaces the "mentions" row of the same name
    both = m.groupby(["paper_id", "name"])["relation"].agg(set)
    assert not any("mentions" in r and len(r) > 1 for r in both)


def vision_pair():
    return pd.DataFrame([
        dict(paper_id="v1", title="Vision-R1: Incentivizing Reasoning", abstract="We propose Vision-R1 for reasoning.",
             acronym="Vision-R1"),
        dict(paper_id="v2", title="Vision-R1: Human-Free Alignment", abstract="Vision-R1 aligns vision models.",
             acronym="Vision-R1"),
        dict(paper_id="c", title="Later Work", abstract="Our method builds on Vision-R1 and beats it.", acronym=""),
        dict(paper_id="d", title="FooNet: A Network", abstract="We present FooNet.", acronym="FooNet"),
        dict(paper_id="e", title="Using Things", abstract="We extend FOONET and foonet-style tricks.", acronym=""),
        dict(paper_id="f", title="Plain Title", abstract="Nothing named here.", acronym=""),
    ])


def test_same_name_papers_are_kept_apart():
    g = lineage_graph(vision_pair())
    assert not g.has_edge("v1", "v2") and not g.has_edge("v2", "v1")
    assert g.graph["same_name"] == {"Vision-R1": ["v1", "v2"]}
    assert g.nodes["v1"]["same_name"] == ["v2"] and g.nodes["v2"]["same_name"] == ["v1"]
    for src in ("v1", "v2"):  # the later paper may cite either: linked to both, marked ambiguous
        assert g.edges[src, "c"]["ambiguous"] and g.edges[src, "c"]["relation"] == "builds-on"
        assert g.edges[src, "c"]["sentence"] == "Our method builds on Vision-R1 and beats it."


def test_lineage_finds_any_case_and_alias():
    g = lineage_graph(vision_pair())
    assert g.has_edge("d", "e") and g.edges["d", "e"]["method"] == "FooNet"  # "FOONET": any case with its capitals
    assert not g.edges["d", "e"]["ambiguous"]
    assert "f" not in g and "f" in lineage_graph(vision_pair(), include_isolates=True)
    assert g.nodes["d"]["title"] == "FooNet: A Network" and g.nodes["d"]["acronym"] == "FooNet"


def test_lineage_skips_a_paper_that_defines_the_name_otherwise():
    papers = pd.DataFrame([
        dict(paper_id="a", title="CLR: Channel-wise Lightweight Reprogramming", abstract="We propose CLR."),
        dict(paper_id="b", title="Cyclical Rates", abstract="We call it cyclical learning rates (CLR). CLR helps."),
        dict(paper_id="c", title="Reprogramming", abstract="We adopt CLR for continual learning."),
    ])
    g = lineage_graph(papers)
    assert g.has_edge("a", "c") and not g.has_edge("a", "b")


def test_lineage_on_shipped_corpus(tagged, corpus_mentions):
    g = lineage_graph(tagged, mentions_table=corpus_mentions)
    assert g.number_of_edges() >= 4
    assert not any(u == v for u, v in g.edges)
    assert set(g.graph["same_name"]["Vision-R1"]) == {"vision-r1-incentivizing-reasonin-4b84cadb",
                                                     "vision-r1-evolving-human-97c774b4"}
    ids = set(g.graph["same_name"]["Vision-R1"])
    assert not any(u in ids and v in ids for u, v in g.edges)
    for u, v, d in g.edges(data=True):
        assert {"method", "relation", "sentence", "ambiguous"} <= set(d)


def test_method_graph_is_bipartite():
    papers = pd.DataFrame({"paper_id": ["a", "b", "c", "d"], "title": ["A", "B", "C", "D"],
                           "methods": [["FooNet"], ["FooNet", "BarRL"], ["BarRL"], []]})
    g = method_graph(papers)
    kinds = nx.get_node_attributes(g, "kind")
    assert {n for n, k in kinds.items() if k == "method"} == {"FooNet", "BarRL"}
    assert nx.is_bipartite(g) and g.nodes["FooNet"]["papers"] == 2
    assert set(method_graph(papers, min_papers=2).nodes) == {"a", "b", "c", "d", "FooNet", "BarRL"}


def test_families_follow_the_themes_of_the_papers():
    m = pd.DataFrame({"paper_id": ["a", "b", "c", "c"], "name": ["PPO", "PPO", "EWC", "PPO"],
                      "type": "method", "relation": "mentions"})
    tagged = pd.DataFrame({"paper_id": ["a", "b", "c"],
                           "theme": [["alignment-feedback"], ["reasoning-rl", "alignment-feedback"], ["continual-learning"]]})
    fam = method_families(m, tagged).set_index("name")
    # PPO: alignment 1 + 0.5, reasoning 1, continual 1
    assert fam.loc["PPO", "family"] == "alignment-feedback" and fam.loc["PPO", "papers"] == 3
    assert fam.loc["PPO", "themes"].startswith("alignment-feedback 1.5")
    assert fam.loc["EWC", "family"] == "continual-learning"


def test_method_network_joins_names_used_together_and_stated_relations():
    m = pd.DataFrame([
        dict(paper_id="a", name="FooRL", type="method", relation="introduces", sentence="We propose FooRL."),
        dict(paper_id="a", name="PPO", type="method", relation="replaces", sentence="Unlike PPO, FooRL is simple."),
        dict(paper_id="a", name="MMLU", type="benchmark", relation="mentions", sentence="On MMLU."),
        dict(paper_id="b", name="PPO", type="method", relation="mentions", sentence="PPO."),
        dict(paper_id="b", name="MMLU", type="benchmark", relation="mentions", sentence="MMLU."),
    ])
    g = method_network(m, min_papers=2)
    assert set(g.nodes) == {"PPO", "MMLU", "FooRL"}  # FooRL: one paper, but in a stated relation
    assert g.edges["PPO", "MMLU"]["papers"] == 2
    assert g.edges["FooRL", "PPO"]["relations"][0]["relation"] == "replaces"
    assert set(method_network(m, min_papers=2, types="method").nodes) == {"PPO", "FooRL"}


def test_top_methods_per_theme(tagged, corpus_mentions):
    table = top_methods_by_theme(corpus_mentions, tagged, n=3)
    assert table.columns.tolist() == ["theme", "papers", "top"]
    row = table.set_index("theme").loc["alignment-feedback", "top"]
    assert row.startswith("RLHF (")


# ---------------------------------------------------------------- figures

def test_method_network_figure(tagged, corpus_mentions):
    net = method_network(corpus_mentions, tagged, families=method_families(corpus_mentions, tagged))
    fig = plot_method_network(net, tagged).to_dict()
    nodes = [t for t in fig["data"] if t.get("customdata") is not None and t.get("mode") == "markers+text"]
    shown = {n for t in nodes for n in t["customdata"]}
    assert shown == set(net.nodes)
    assert {"PPO", "RLHF", "EWC"} <= shown
    buttons = fig["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons][:3] == ["all types", "method", "model"]
    method_only = buttons[1]["args"][0]["visible"]
    for trace, visible in zip(fig["data"], method_only):
        if trace.get("mode") == "markers+text" and visible:
            assert all(net.nodes[n]["type"] == "method" for n in trace["customdata"])
    legend = [t["name"] for t in fig["data"] if t.get("showlegend") is not False and t.get("legendgroup", "").startswith("family")]
    assert "alignment-feedback" in legend and "continual-learning" in legend
    arrows = [t for t in fig["data"] if t.get("name") in ("builds on", "replaces / alternative to", "compares with")]
    assert arrows and any("<b>" in h for t in arrows for h in t["hovertext"])


def test_figures_escape_corpus_text():
    papers = pd.DataFrame([
        dict(paper_id="a", title=INJECTION, abstract="We propose FooRL, a method. Unlike PPO, FooRL is simple.",
             acronym="FooRL", theme=["alignment-feedback"]),
        dict(paper_id="b", title="Second <b>bold</b>", abstract="We build on FooRL and PPO.", acronym="",
             theme=["reasoning-rl"]),
    ])
    m = extract_mentions(papers)
    m.loc[m["name"] == "PPO", "sentence"] = INJECTION  # as if an abstract held markup
    net = method_network(m, papers, min_papers=1, families=method_families(m, papers))
    figs = [plot_method_network(net, papers), plot_method_relations(method_relations(m, "PPO", papers), "PPO"),
            plot_lineage_network(lineage_graph(papers, mentions_table=m))]
    for fig in figs:
        text = json.dumps(fig.to_dict()["data"])
        assert INJECTION not in text and "<b>bold</b>" not in text
    assert "&lt;img src=x" in json.dumps(figs[1].to_dict()["data"])


def test_method_relations_figure(tagged, corpus_mentions):
    table = method_relations(corpus_mentions, "proximal policy optimization", tagged)  # any spelling
    assert len(table) >= 5 and table["relation"].iloc[0] in ("builds-on", "replaces", "compares")
    fig = plot_method_relations(table, "PPO").to_dict()
    columns = {t["name"] for t in fig["data"]}
    assert {"builds on", "compares with", "only mentions"} <= columns
    assert sum(len(t["x"]) for t in fig["data"]) == len(table)
    assert list(plot_method_relations(table.iloc[0:0], "Nothing").to_dict()["data"]) == []


def test_lineage_figure_marks_shared_names():
    fig = plot_lineage_network(lineage_graph(vision_pair())).to_dict()
    names = [t.get("name") for t in fig["data"]]
    assert "same name, different works" in names
    dashed = [t for t in fig["data"] if t.get("line", {}).get("dash") == "dash"]
    assert dashed  # links to the shared name are drawn dashed
    nodes = fig["data"][-1]
    hover = dict(zip(nodes["customdata"], nodes["hovertext"]))
    assert "a different work with the same name" in hover["v1"]


def test_relation_summary_counts_pairs():
    m = pd.DataFrame({"relation": ["mentions", "compares", "compares"], "type": ["model", "model", "method"]})
    table = relation_summary(m)
    assert table.loc["compares", "model"] == 1 and table.loc["compares", "method"] == 1
    assert list(table.index) == ["compares", "mentions"]


# ---------------------------------------------------------------- measuring

def test_evaluation_by_hand_on_a_tiny_case():
    papers = pd.DataFrame([dict(paper_id="p", title="T", abstract="")])
    predicted = pd.DataFrame([
        dict(paper_id="p", name="PPO", type="method", relation="compares", surface="PPO"),
        dict(paper_id="p", name="MMLU", type="model", relation="mentions", surface="MMLU"),
        dict(paper_id="p", name="Bogus", type="unknown", relation="builds-on", surface="Bogus"),
    ])
    gold = [{"title": "T", "mentions": [
        {"name": "proximal policy optimization", "also": ["PPO"], "type": "method", "relations": ["compares"]},
        {"name": "MMLU", "type": "benchmark", "relations": ["mentions"]},
        {"name": "GSM8K", "type": "benchmark", "relations": ["mentions"]},
    ]}]
    s = evaluate_mentions(papers, gold, predicted).set_index("metric")
    assert (s.loc["mention precision", "correct"], s.loc["mention precision", "total"]) == (2, 3)
    assert (s.loc["mention recall", "correct"], s.loc["mention recall", "total"]) == (2, 3)
    assert (s.loc["type accuracy", "correct"], s.loc["type accuracy", "total"]) == (1, 2)
    assert (s.loc["relation precision", "correct"], s.loc["relation precision", "total"]) == (1, 2)  # Bogus is wrong
    assert s.loc["relation recall", "value"] == 1.0
    with pytest.raises(ValueError, match="not among the papers"):
        evaluate_mentions(papers.assign(title="Other"), gold, predicted)
    assert evaluate_mentions(papers.assign(title="Other"), gold, predicted, missing="skip").attrs["papers"] == 0


def test_shipped_labels_meet_the_targets(tagged, corpus_mentions):
    """The development labels (read while the rules were written) meet the targets; the held-out
    labels (written after) are kept from sliding back below the figures the README reports."""
    labels = {k: [r for p in paths for r in load_mention_gold(p)] for k, paths in shipped_mention_labels().items()}
    dev = evaluate_mentions(tagged, labels["development"], corpus_mentions).set_index("metric")["value"]
    assert dev["mention precision"] >= 0.90 and dev["type accuracy"] >= 0.85 and dev["relation precision"] >= 0.80
    assert dev["mention recall"] >= 0.80
    held = evaluate_mentions(tagged, labels["held-out"], corpus_mentions).set_index("metric")["value"]
    assert held["mention precision"] >= 0.85 and held["type accuracy"] >= 0.85 and held["mention recall"] >= 0.75
    blind = evaluate_mentions(tagged, labels["blind annotators"], corpus_mentions).set_index("metric")["value"]
    assert blind["mention precision"] >= 0.80 and blind["type accuracy"] >= 0.85 and blind["relation precision"] >= 0.65
    table = mention_scores(tagged, corpus_mentions)
    assert table.columns.tolist() == ["metric", "development (32 papers)", "held-out (36 papers)",
                                      "blind annotators (100 papers)"]
    assert table.set_index("metric").loc["mention precision", "blind annotators (100 papers)"].endswith("/231)")


def test_labels_name_papers_of_the_corpus_once(corpus):
    titles = set(corpus["title"])
    seen = []
    for path in (p for paths in shipped_mention_labels().values() for p in paths):
        data = json.loads(path.read_text(encoding="utf-8"))
        seen += [r["title"] for r in data]
        assert all(r["title"] in titles for r in data)
    assert len(seen) == len(set(seen)) == 168


def test_cli_evaluates_against_labels(corpus_path, capsys):
    from paperlib.cli import main

    assert main(["methods", str(corpus_path), "--evaluate", str(shipped_mention_labels()["development"][0])]) == 0
    out = capsys.readouterr().out
    assert "mention precision" in out and "relation precision" in out
    assert main(["methods", str(corpus_path), "--vocabulary", "/no/such/file.yaml"]) == 2


# ---------------------------------------------------------------- the explorer's method filter

def test_explorer_filters_papers_by_method(tmp_path):
    from paperlib.site.explorer import Explorer, Query, explorer_table, filter_papers, results_view

    tagged = pd.DataFrame({
        "paper_id": ["p1", "p2", "p3"], "title": ["A", "B", INJECTION], "abstract": ["x. y.", "x. y.", "x. y."],
        "theme": [["t"], ["t"], ["u"]], "kind": ["method"] * 3, "domain": [["general"]] * 3,
        "methods": [["PPO", "MMLU"], ["DPO"], ["PPO"]],
    })
    table = explorer_table(tagged)
    assert filter_papers(table, Query(methods=("PPO",)))["paper_id"].tolist() == ["p1", "p3"]
    assert filter_papers(table, Query(methods=("ppo", "DPO"), theme=("t",)))["paper_id"].tolist() == ["p1", "p2"]
    assert results_view(table)["methods"].tolist() == ["PPO, MMLU", "DPO", "PPO"]
    with pytest.raises(KeyError, match="extract_methods"):
        filter_papers(table.drop(columns="methods"), Query(methods=("PPO",)))
    coords = pd.DataFrame({"paper_id": ["p1", "p2", "p3"], "x": [0.0, 1, 2], "y": [0.0, 1, 0]})
    ex = Explorer(table, coords, out_dir=tmp_path)
    assert ex.methods.options[0] == ("PPO (2)", "PPO")
    ex.methods.value = ("DPO",)
    assert ex.count.value.startswith("<b>1</b> of 3")


# ---------------------------------------------------------------- theme co-occurrence

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


# ---------------------------------------------------------------- the language of relations (broadened cues)

@pytest.mark.parametrize("abstract, name, expected", [
    # builds-on
    ("Our method is built upon DualPrompt.", "DualPrompt", "builds-on"),
    ("We build on top of LoRA to save memory.", "LoRA", "builds-on"),
    ("Our approach is a variant of DPO.", "DPO", "builds-on"),
    ("Our algorithm is an extension of EWC to streams.", "EWC", "builds-on"),
    ("Inspired by MAML, we learn an initialisation.", "MAML", "builds-on"),
    ("We draw inspiration from PPO and clip the ratio.", "PPO", "builds-on"),
    ("Our objective generalizes DPO.", "DPO", "builds-on"),
    ("We adapt CLIP to medical images.", "CLIP", "builds-on"),
    ("Our model learns from GPT-4 explanations.", "GPT-4", "builds-on"),
    ("We further introduce the classical EWC for selective updates.", "EWC", "builds-on"),
    ("We use EWC, combined with LoRA for efficiency.", "LoRA", "builds-on"),
    ("We instantiate the framework with GRPO as the RL algorithm.", "GRPO", "builds-on"),
    ("Our experiments with Mistral show gains.", "Mistral", "builds-on"),
    ("We distil a GPT-4 teacher into a small model.", "GPT-4", "builds-on"),
    # replaces
    ("Instead of relying on PPO, our method solves a classification problem.", "PPO", "replaces"),
    ("Our method works as an alternative to RLHF.", "RLHF", "replaces"),
    ("Our method eliminates the need for RLHF.", "RLHF", "replaces"),
    ("We learn rewards rather than using DPO.", "DPO", "replaces"),
    ("Replacing PPO with a simple ranking loss, we align the model.", "PPO", "replaces"),
    ("Our loss differs from DPO in one term.", "DPO", "replaces"),
    ("We circumvent RLHF altogether.", "RLHF", "replaces"),
    # compares
    ("Our model surpasses GPT-4 on two tasks.", "GPT-4", "compares"),
    ("It achieves gains over GRPO.", "GRPO", "compares"),
    ("We report results against DAPO.", "DAPO", "compares"),
    ("Our method versus PPO: a study.", "PPO", "compares"),
    ("Our method vs. GRPO: a study.", "GRPO", "compares"),
    ("Our model reaches parity with ChatGPT in zero-shot settings.", "ChatGPT", "compares"),
    ("Our model is strong while trailing behind GPT-4.", "GPT-4", "compares"),
    ("Our approach is better than DPO.", "DPO", "compares"),
    ("Our method shows competitive performance with GPT-4.", "GPT-4", "compares"),
])
def test_each_broadened_relation_cue(abstract, name, expected):
    assert rel(abstract, name) == {expected}


def test_a_cue_reaches_every_item_of_a_list():
    table = one("Our method outperforms PPO and DPO on math.")
    assert set(table.loc[table["relation"] == "compares", "name"]) == {"PPO", "DPO"}
    table = one("Our method outperforms PPO, strong DPO baselines, and KTO.")
    assert set(table.loc[table["relation"] == "compares", "name"]) == {"PPO", "DPO", "KTO"}
    # capitalised words inside an item are parts of a name: "with" reaches the last item
    text = "We demonstrate it with ResNets, Stochastic Depth networks, and DenseNets."
    assert rel(text, "DenseNet") == {"builds-on"} and rel(text, "ResNet") == {"builds-on"}
    # the list ends where the clause does
    assert rel("Our method outperforms PPO, while GAE is studied too.", "GAE") == {"mentions"}


def test_relation_cues_that_say_nothing_of_the_paper():
    # "in accordance with", "consistent with" cancel "with"; "with" relates no benchmark
    assert rel("We work in accordance with LLaMA's release policy.", "LLaMA") == {"mentions"}
    assert rel("Our results are consistent with GPT-4 judgements.", "GPT-4") == {"mentions"}
    assert rel("We run experiments with MMLU.", "MMLU") == {"mentions"}
    table = one("Our model outperforms the baseline on MMLU.")
    assert table.set_index("name").loc["MMLU", "relation"] == "mentions"


def test_cues_that_do_not_point_at_the_papers_own_work():
    # a bare "with" needs a word of working with something before it
    assert rel("Our model also works well with CoT prompting.", "CoT") == {"mentions"}
    assert rel("Our score rises to 98% with the GPT-4 judges.", "GPT-4") == {"mentions"}
    assert rel("Our models trained with SGD forget less.", "SGD") == {"builds-on"}
    # "X based on ...": X is based on something, the paper is not built on X
    assert rel("We run our method on ImageNet based on the proposed protocol.", "ImageNet") == {"mentions"}
    assert rel("We propose a PPO based method for alignment.", "PPO") == {"builds-on"}
    # improving a benchmark is improving a score on it; a widely used name is not one the paper uses
    assert rel("Our method also enhances out-of-domain results on HumanEval.", "HumanEval") == {"mentions"}
    assert rel("Our method improves Llama-3 on math.", "Llama 3") == {"builds-on"}
    assert rel("Our model scores 73% on the widely used MathVista.", "MathVista") == {"mentions"}


def test_broadened_relations_keep_their_sentence_as_evidence():
    table = one("Alignment matters. Our model reaches parity with ChatGPT. It is cheap.")
    row = table.set_index("name").loc["ChatGPT"]
    assert row["sentence"] == "Our model reaches parity with ChatGPT." and row["cue"] == "reaches parity with"


# ---------------------------------------------------------------- what a paper introduces (more ways to say it)

@pytest.mark.parametrize("title, abstract, name", [
    ("Robust Teachers", "We demonstrate our proposed method 'robust mean teacher' (RMT) on CIFAR10C.", "RMT"),
    ("Continual Test-Time Adaptation", "We further propose a new continual DomainNet-126 benchmark.", "DomainNet-126"),
    ("A Product Benchmark", "We contribute a unified benchmark dataset P9D which holds image-text pairs.", "P9D"),
    ("Graph Pre-training", "This paper introduces a generic framework W2PGNN to answer when to pre-train.", "W2PGNN"),
    ("Music Models", "For reinforcement learning, we propose the CLaMP-DPO method, which improves musicality.", "CLaMP-DPO"),
    ("Predictive, scalable and interpretable knowledge tracing on structured domains",
     "PSI-KT is a hierarchical generative approach to learner modelling.", "PSI-KT"),  # spells its title
    ("An Interactive Agent Foundation Model",
     "We propose an Interactive Agent Foundation Model that uses a multi-task training paradigm.",
     "Interactive Agent Foundation Model"),  # a capitalised phrase its title names
    ("Skills", "We call this approach SkillNet and test it on robots.", "SkillNet"),
    ("Skills", "A method dubbed Zorblax lets agents act.", None),  # not the paper's own: no "we" or "our"
    ("A Unified Framework", "This paper introduces Pairwise-RL, a framework for reward models.", "Pairwise-RL"),
    ("Robots", "We argue that replay is slow and propose HyperCRL, a method that learns fast.", "HyperCRL"),
    ("Task Prediction", "We call the new method TPL (Task-id Prediction based on Likelihood Ratio).", "TPL"),
    ("Generative Pre-Trained Diffusion Paradigm for Forecasting",
     "We explore the Generative Pre-trained Diffusion (GPD) paradigm for forecasting.", "GPD"),  # title starts with it
])
def test_more_ways_a_paper_introduces_a_name(title, abstract, name):
    table = one(abstract, title)
    own = set(table.loc[table["relation"] == "introduces", "name"])
    assert own == ({name} if name else set())


def test_a_name_a_proposed_method_uses_is_not_introduced():
    table = one("We propose a curriculum framework, which leverages the Upper Confidence Bound (UCB) rule.",
                "Curricula for RL")
    assert "introduces" not in set(table.loc[table["name"] == "UCB", "relation"])


def test_a_long_form_after_its_short_form_names_it():
    table = one("Our approach BOSS (BOotStrapping your own Skills) learns new tasks.", "Bootstrap Your Own Skills")
    assert table["name"].tolist() == ["BOSS"]  # "BOotStrapping" is the long form, no name of its own
    table = one("In this study, we introduce the PMoE, Progressive Mixture of Experts with Asymmetric Transformer.",
                "Continual Learning")
    assert table["name"].tolist() == ["PMoE"]  # the mixture of experts inside its long form is PMoE itself


# ---------------------------------------------------------------- false names rejected, never silently

@pytest.mark.parametrize("abstract, surface, reason", [
    ("We study syntax in masked language models (MLMs). MLMs learn fast.", "MLM", "kind of model"),
    ("We combine Speech Foundation Models (SFMs) and LLMs.", "SFM", "kind of model"),
    ("This paper focuses on speech-to-text translation (ST).", "ST", "idea"),
    ("A study of catastrophic interference (CI) in networks.", "CI", "idea"),
    ("Volunteers lend thousands of regular PCs for training.", "PCs", "capitals"),
    ("This is a step towards production levelASR models.", "levelASR", "run together"),
])
def test_false_names_are_rejected_with_a_reason(abstract, surface, reason):
    papers = pd.DataFrame([dict(paper_id="p", title="A Study", abstract=abstract)])
    rejected = []
    table = extract_mentions(papers, rejected=rejected)
    assert not any(name_key(n).startswith(name_key(surface).rstrip("s")) for n in table["name"])
    assert any(r["surface"] == surface and reason in r["reason"] and r["paper_id"] == "p" for r in rejected)


def test_a_citation_key_is_no_name_and_an_own_short_form_is_kept():
    assert mentions("We adopt the search of liu:pnas_google:DBLP:journals/corr/abs-1712 here.") == []
    # a paper's own short form is kept even when its long form ends like a kind of model or an idea
    table = one("We introduce the Peripheral Language Model (PLM) for edge devices.", "PLM: Peripheral Models")
    assert set(table.loc[table["name"] == "PLM", "relation"]) == {"introduces"}
    table = one("We propose Prediction Error-based Classification (PEC) for continual learning.",
                "Prediction Error-based Classification for Class-Incremental Learning")
    assert table.set_index("name").loc["PEC", "type"] == "method"


def test_check_labels_are_apart_from_each_other_and_from_the_other_labels(corpus):
    folder = shipped_mention_labels()["development"][0].parent
    seen = {r["title"] for name in ("methods_gold.json", "methods_heldout.json")
            for r in json.loads((folder / name).read_text(encoding="utf-8"))}
    for name, size in (("methods_check.json", 20), ("methods_check2.json", 20), ("methods_check3.json", 20),
                       ("methods_check4.json", 30), ("methods_check5.json", 30)):
        check = load_mention_gold(folder / name)
        titles = {r["title"] for r in check}
        assert len(check) == len(titles) == size and titles <= set(corpus["title"])
        assert not titles & seen, name
        seen |= titles


def test_labels_as_mentions_scores_one_annotator_against_another(corpus):
    gold = shipped_mention_labels()["development"][0]
    itself = evaluate_mentions(corpus, gold, labels_as_mentions(corpus, gold)).set_index("metric")["value"]
    assert (itself == 1.0).all()
    second = gold.parent / "methods_gold_second.json"
    other = evaluate_mentions(corpus, gold, labels_as_mentions(corpus, second)).set_index("metric")
    assert set(load_mention_gold(second)[0]) == {"title", "mentions"}
    assert 0.5 < other.loc["mention precision", "value"] < 1.0
    assert other.loc["mention precision", "total"] == sum(len(r["mentions"]) for r in load_mention_gold(second))
    with pytest.raises(ValueError, match="not among the papers"):
        labels_as_mentions(corpus.iloc[:3], gold)


def test_a_latex_accent_does_not_cut_a_name():
    table = one(r'We introduce T\"ULU 3, a family of open models.', "TÜLU 3: Open Post-Training")
    assert "ULU" not in set(table["name"])
    assert table.loc[table["relation"] == "introduces", "surface"].tolist() == ["TÜLU 3"]
