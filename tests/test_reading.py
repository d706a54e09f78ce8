"""Reading lists and session plans: BibTeX that load_corpus reads back, Markdown, CSV, the printable
handout, and session plans that keep every paper once and read methods before their successors."""
from __future__ import annotations

import io

import pandas as pd
import pytest

import paperlib
from paperlib.cli import main
from paperlib.corpus.bibtex import bibtex_comment, bibtex_escape, to_bibtex
from paperlib.corpus.formats import clean_latex, latex_accents
from paperlib.corpus.sessions import plan_sessions
from paperlib.site.explorer import reading_list_markdown
from paperlib.site.reading import export_reading_list, markdown_entry, markdown_header, reading_list

LATEX_TITLES = [
    r"50% of $x^2$ & #1 under_score {braces} ~ tilde \emph{not a command} \'e -- ``quoted'' --- end",
    r"T\"ULU 3 and PATIENT-{\Psi}: 40\% less \\ memory",
    "Zürich, ε-greedy and “curly quotes” — with an en–dash",
    "<script>alert(1)</script> & <img src=x onerror=alert(1)>",
    "@misc{inject, title={Not an entry}} % not a comment",
]
LATEX_ABSTRACTS = [
    "We fight catastrophic forgetting; accuracy rises by 3.5% on CIFAR-100 (~50% of the data).",
    r"Uses \ourapproach and \bf bold; braces } { unbalanced on purpose.",
    "Plain text abstract about distillation of a teacher into a student network.",
    "<b>bold</b> markup and a <script>alert(2)</script> in the abstract.",
    "} @article{x, title = {y}} and a trailing backslash \\",
]


@pytest.fixture
def latex_papers():
    return pd.DataFrame({"paper_id": [f"p{i}" for i in range(len(LATEX_TITLES))],
                         "title": LATEX_TITLES, "abstract": LATEX_ABSTRACTS})


# ------------------------------------------------------------------ BibTeX


@pytest.mark.parametrize("text, expected", [
    ("a & b", r"a \& b"), ("50%", r"50\%"), ("{x}", r"\{x\}"), ("a\\b", r"a\textbackslash{}b"),
    ("~", r"\textasciitilde{}"), ("x^2", r"x\textasciicircum{}2"), ("a--b", "a-{}-b"), ("---", "-{}-{}-"),
    ("``q''", "`{}`q'{}'"), ("  two   spaces ", "two spaces"), ("Zürich ε", "Zürich ε"),
])
def test_bibtex_escape(text, expected):
    assert bibtex_escape(text) == expected
    assert clean_latex(bibtex_escape(text)) == " ".join(text.split())


def test_the_reader_decodes_the_literal_commands():
    assert clean_latex(r"\{a\} \textbackslash{}b \textasciitilde{}c \textasciicircum d") == r"{a} \b ~c ^d"
    assert clean_latex(r"{\'e}t{\'e} -- \emph{x}") == "été – x"  # accents, the en dash, formatting commands


def test_bibtex_round_trip_through_load_corpus(tmp_path, latex_papers):
    path = tmp_path / "list.bib"
    path.write_text(reading_list(latex_papers, "bib", heading="Specials @ home"), encoding="utf-8")
    back = paperlib.load_corpus(path)
    assert back["title"].tolist() == [" ".join(t.split()) for t in LATEX_TITLES]
    assert back["abstract"].tolist() == [" ".join(a.split()) for a in LATEX_ABSTRACTS]
    assert back["paper_id"].tolist() == [paperlib.corpus.reader.paper_id(t) for t in LATEX_TITLES]


def test_bibtex_round_trip_of_the_shipped_corpus(tmp_path, corpus):
    path = tmp_path / "corpus.bib"
    path.write_text(to_bibtex(corpus), encoding="utf-8")
    back = paperlib.load_corpus(path)
    assert back["title"].tolist() == corpus["title"].tolist()
    assert back["abstract"].tolist() == corpus["abstract"].tolist()


def test_bibtex_entries_carry_tags_code_and_notebook():
    paper = pd.DataFrame([{"paper_id": "ewc-1a2b", "title": "EWC", "abstract": "Forgetting.",
                           "theme": ["continual-learning"], "kind": "method", "domain": ["vision", "vision"],
                           "code_urls": ["https://github.com/a/b_c", "https://x.org/{bad}"],
                           "runnable": ["10_ewc_permuted_mnist.ipynb"]}])
    text = to_bibtex(paper)
    assert text.startswith("@misc{ewc-1a2b,\n  title = {{EWC}},\n  abstract = {Forgetting.},\n")
    assert r"keywords = {continual-learning, method, vision}," in text
    assert "url = {https://github.com/a/b_c}," in text and "bad" not in text
    assert r"note = {Runnable notebook: 10\_ewc\_permuted\_mnist.ipynb}," in text


def test_bibtex_comments_cannot_start_an_entry():
    assert bibtex_comment("two\nlines @misc{x,") == "% two\n% lines misc{x,\n"


# ------------------------------------------------------------------ Markdown, CSV, handout


@pytest.fixture
def selection():
    return pd.DataFrame({
        "paper_id": ["a", "b", "c"],
        "title": ["EWC: Elastic Weight Consolidation", "<b>Replay</b> beats EWC", "Distilling Students"],
        "abstract": ["We propose EWC, a penalty against forgetting, improving accuracy by 12.5% on MNIST.",
                     "We compare replay with EWC and find replay 9.4x better in class-incremental learning.",
                     "Knowledge distillation of a teacher into a student network on ImageNet."],
        "theme": [["continual-learning"], ["continual-learning"], ["distillation"]],
        "kind": ["method", "empirical-study", "method"],
        "domain": [["vision"], ["vision"], ["vision"]],
        "code_urls": [["https://github.com/a/ewc"], [], []],
        "runnable": [["10_ewc_permuted_mnist.ipynb"], [], ["30_distillation.ipynb"]],
    })


def test_markdown_is_the_explorers_and_escaped(selection):
    text = reading_list(selection, "md", heading="Week <1>")
    assert text == reading_list_markdown(selection, heading="Week <1>")
    assert text == markdown_header("Week <1>", 3) + "".join(markdown_entry(r) for r in selection.to_dict("records"))
    assert text.startswith("# Week &lt;1&gt;\n\n3 papers.\n\n## EWC: Elastic Weight Consolidation\n")
    assert "<b>" not in text and "## &lt;b&gt;Replay&lt;/b&gt; beats EWC" in text
    assert "- runnable notebook: 10_ewc_permuted_mnist.ipynb" in text


def test_markdown_with_sessions(selection):
    text = reading_list(selection, "md", sessions=2)
    assert "3 papers in 2 sessions." in text
    assert "## Session 1: continual-learning (2 papers)" in text and "## Session 2: distillation (1 paper)" in text
    assert text.index("### EWC: Elastic") < text.index("### &lt;b&gt;Replay")
    assert "- why here: theme continual-learning; introduces EWC, named later by" in text


def test_csv_reads_back_and_carries_the_plan(tmp_path, selection):
    path = export_reading_list(selection, tmp_path / "out" / "list.csv", sessions=2)
    table = pd.read_csv(path)
    assert list(table.columns[:3]) == ["session", "position", "paper_id"]
    assert table["session"].tolist() == [1, 1, 2] and table["code_urls"][0] == "https://github.com/a/ewc"
    back = paperlib.load_corpus(path)
    assert back["title"].tolist() == selection["title"].tolist()


def test_handout_is_printable_text(selection):
    page = reading_list(selection, "html", heading="Handout <x>", related=1)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "src=" not in page
    assert page.count('<section class="paper">') == 3
    assert "<h3>&lt;b&gt;Replay&lt;/b&gt; beats EWC</h3>" in page and "<title>Handout &lt;x&gt;</title>" in page
    assert "<b>12.5%</b> on MNIST" in page and "<b>9.4x</b>" in page  # numeric claims
    assert page.count('<ul class="related">') == 3  # one related paper each, with why
    assert "cosine" in page
    assert "Runnable notebook: 30_distillation.ipynb" in page and "@media print" in page
    planned = reading_list(selection, "html", sessions=2)
    assert planned.count('<h2 class="session">') == 2 and "Why here: theme distillation" in planned


def test_export_picks_the_format_from_the_suffix(tmp_path, selection):
    for suffix in ("md", "bib", "csv", "html"):
        assert export_reading_list(selection, tmp_path / f"x.{suffix}").read_text(encoding="utf-8") == \
            reading_list(selection, suffix)
    with pytest.raises(ValueError, match="suffix"):
        export_reading_list(selection, tmp_path / "x.txt")
    with pytest.raises(ValueError, match="unknown reading-list format"):
        reading_list(selection, "pdf")


# ------------------------------------------------------------------ session plans

def _paper(pid, title, abstract, theme):
    return {"paper_id": pid, "title": title, "abstract": abstract, "theme": [theme]}


@pytest.fixture
def lineage_corpus():
    """Six papers in corpus order; B, C and F build on methods introduced by papers listed after them."""
    return pd.DataFrame([
        _paper("B", "Replay Beats Everything", "We compare against EWC and find replay wins.", "continual"),
        _paper("C", "Prompts for Continual Learning", "Prompt pools beat EWC and SI on split CIFAR.", "continual"),
        _paper("A", "EWC: Elastic Weight Consolidation", "A quadratic penalty against forgetting.", "continual"),
        _paper("D", "Curriculum by Difficulty", "Order data from easy to hard.", "curriculum"),
        _paper("E", "SPL: Self-Paced Learning", "The learner picks easy samples first.", "curriculum"),
        _paper("F", "Pacing Functions Revisited", "We revisit SPL pacing on CIFAR.", "curriculum"),
    ])


def _place(plan):
    return {r.paper_id: (r.session, r.position) for r in plan.itertuples()}


@pytest.mark.parametrize("sessions", [1, 2, 3, 6])
def test_every_paper_exactly_once_and_methods_first(lineage_corpus, sessions):
    plan = plan_sessions(lineage_corpus, sessions)
    assert sorted(plan["paper_id"]) == sorted(lineage_corpus["paper_id"])
    assert sorted(plan["session"].unique()) == list(range(1, sessions + 1))
    for s, rows in plan.groupby("session"):
        assert rows["position"].tolist() == list(range(1, len(rows) + 1))
    place = _place(plan)
    for earlier, later in [("A", "B"), ("A", "C"), ("E", "F")]:
        assert place[earlier] < place[later], (earlier, later, plan)


def test_groups_stay_whole_when_sizes_allow(lineage_corpus):
    plan = plan_sessions(lineage_corpus, 2)
    assert plan["paper_id"].tolist() == ["A", "B", "C", "D", "E", "F"]  # A moved before its successors
    assert plan["session"].tolist() == [1, 1, 1, 2, 2, 2]
    reasons = dict(zip(plan["paper_id"], plan["reason"]))
    after_ewc = "theme continual; after “EWC: Elastic Weight Consolidation”, whose method EWC it "
    assert reasons["B"].startswith(after_ewc)
    assert reasons["D"] == "theme curriculum"


def test_reasons_name_the_method_and_the_relation(lineage_corpus):
    lineage = pd.DataFrame({"source": ["A", "A", "E"], "target": ["B", "C", "F"], "method": ["EWC", "EWC", "SPL"],
                            "relation": ["compares", "mentions", "builds-on"]})
    reasons = dict(zip(*plan_sessions(lineage_corpus, 2, lineage=lineage)[["paper_id", "reason"]].T.values))
    assert reasons["A"] == ("theme continual; introduces EWC, named later by “Replay Beats Everything”; "
                            "introduces EWC, named later by “Prompts for Continual Learning”")
    after_ewc = "theme continual; after “EWC: Elastic Weight Consolidation”, whose method EWC it "
    assert reasons["B"] == after_ewc + "compares with" and reasons["C"] == after_ewc + "names"
    assert reasons["F"] == "theme curriculum; after “SPL: Self-Paced Learning”, whose method SPL it builds on"


def test_balance_beats_whole_groups_when_one_group_dominates():
    papers = pd.DataFrame([_paper(f"p{i}", f"Paper {i}", "Words about training.", "big") for i in range(9)]
                          + [_paper("q", "Other", "Other words.", "small")])
    plan = plan_sessions(papers, 3)
    assert plan.groupby("session").size().tolist() == [3, 3, 4]
    assert "spread over sessions 1, 2, 3" in plan["reason"][0]


def test_lineage_across_groups_orders_the_groups():
    papers = pd.DataFrame([
        _paper("x", "Big One", "We build on TinyNet.", "large"),
        _paper("y", "Big Two", "More words.", "large"),
        _paper("z", "TinyNet: A Small Network", "A small network.", "small"),
    ])
    plan = plan_sessions(papers, 2)
    assert plan["paper_id"].tolist() == ["z", "x", "y"]  # the small group first: the large one builds on it


def test_papers_naming_each_other_stay_together():
    papers = pd.DataFrame([
        _paper("m", "MAML: Meta-Learning", "Compared with REPTILE.", "meta"),
        _paper("o", "Other Work", "Unrelated words.", "meta"),
        _paper("r", "REPTILE: A First-Order Method", "Simplifies MAML.", "meta"),
    ])
    plan = plan_sessions(papers, 1)
    assert plan["paper_id"].tolist() in (["m", "r", "o"], ["o", "m", "r"])
    assert plan["reason"].str.contains("read them together").sum() == 1


def test_plan_from_a_given_lineage_table_and_by_column(lineage_corpus):
    lineage = pd.DataFrame({"source": ["D"], "target": ["E"], "method": ["CBD"]})
    papers = lineage_corpus.assign(cluster_label=["x", "x", "y", "y", "y", "x"])
    plan = plan_sessions(papers, 2, by="cluster_label", lineage=lineage)
    place = _place(plan)
    assert place["D"] < place["E"]
    assert plan["reason"].str.startswith("cluster ").all()


def test_plan_errors(lineage_corpus):
    with pytest.raises(ValueError, match="cannot split 6 papers into 7 sessions"):
        plan_sessions(lineage_corpus, 7)
    with pytest.raises(ValueError, match="positive whole number"):
        plan_sessions(lineage_corpus, 0)
    with pytest.raises(ValueError, match="twice"):
        plan_sessions(pd.concat([lineage_corpus, lineage_corpus.head(1)]), 2)
    with pytest.raises(KeyError, match="no column 'cluster_label'"):
        plan_sessions(lineage_corpus, 2, by="cluster_label")
    with pytest.raises(ValueError, match="exactly the papers"):
        reading_list(lineage_corpus, "md", sessions=plan_sessions(lineage_corpus.head(3), 1))


def test_top_level_names():
    assert paperlib.reading_list is reading_list and paperlib.plan_sessions is plan_sessions


# ------------------------------------------------------------------ the command line

@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "mini.txt"
    pairs = [
        ("EWC: Elastic Weight Consolidation", "We propose elastic weight consolidation (EWC), a penalty that "
         "reduces catastrophic forgetting in continual learning. Code: https://github.com/a/b."),
        ("Replay for Continual Learning", "Rehearsal of old examples beats EWC against catastrophic forgetting "
         "in continual learning; accuracy improves by 3.5%."),
        ("Distilling a Teacher into a Student", "Knowledge distillation transfers a teacher's soft labels to a "
         "smaller student network."),
        (r"Percent 50% & {braces} \ backslash <script>alert(1)</script>", "Continual learning abstract with "
         "catastrophic forgetting and a <img src=x onerror=alert(1)> tag."),
    ]
    path.write_text("".join(f"{t}\n{a}\n" for t, a in pairs), encoding="utf-8")
    return path


def test_cli_reading_list_bibtex_round_trip(tmp_path, corpus_file, capsys):
    out = tmp_path / "cl.bib"
    assert main(["reading-list", str(corpus_file), "--query", "catastrophic", "forgetting", "--out", str(out)]) == 0
    assert "3 papers ->" in capsys.readouterr().err
    back = paperlib.load_corpus(out)
    original = paperlib.load_corpus(corpus_file)
    chosen = original[original["abstract"].str.contains("catastrophic forgetting")]
    assert back["title"].tolist() == chosen["title"].tolist()
    assert back["abstract"].tolist() == chosen["abstract"].tolist()


def test_cli_reading_list_formats_and_errors(corpus_file, capsys):
    assert main(["reading-list", str(corpus_file), "--theme", "continual-learning", "--sessions", "2",
                 "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.count('<h2 class="session">') == 2 and "<script>" not in page
    assert main(["reading-list", str(corpus_file), "--theme", "no-such-theme"]) == 2
    assert "no-such-theme" in capsys.readouterr().err
    assert main(["reading-list", str(corpus_file), "--query", "zzzz"]) == 2
    assert "no paper matches" in capsys.readouterr().err
    assert main(["reading-list", str(corpus_file), "--format", "csv"]) == 0
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == 4


def test_latex_accents_alone_become_unicode():
    text = r'we introduce T\"ULU 3 and {\'e}t\'e, 50\% of {braces}'
    assert latex_accents(text) == "we introduce TÜLU 3 and {é}té, 50\\% of {braces}"
    assert latex_accents("no commands here") == "no commands here"
