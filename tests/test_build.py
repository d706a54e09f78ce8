"""The main job (`paperlib build`): tables, parameter injection, failures, site export, escaping."""
from __future__ import annotations

import contextlib
import io
import json
import re

import nbformat
import pandas as pd
import pytest

from paperlib import store
from paperlib.cli import main
from paperlib.corpus.relate import why_related
from paperlib.site import build
from paperlib.site import html as site

INJECTION = "<script>alert(1)</script>"


def make_nb(path, cells, *, params="quick = False  # fast run\nresults_dir = 'results'  # output folder",
            meta=None):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A test notebook"), p] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["paperlib"] = meta or {"title": path.stem, "summary": "a test", "reproduces": []}
    nbformat.write(nb, str(path))
    return path


# ------------------------------------------------------------------ fast unit tests

def test_data_tables_follow_the_store_convention(tmp_path):
    df = pd.DataFrame({"paper_id": ["a", "b"], "theme": [["x", "y"], []], "scores": [{"x": 1.5}, {}]})
    csv_path, pq_path = build.write_data_table(df, tmp_path, "papers")
    raw = pd.read_csv(csv_path, keep_default_na=False)
    assert json.loads(raw["theme"][0]) == ["x", "y"]  # lists as JSON text in CSV
    assert json.loads(raw["scores"][0]) == {"x": 1.5}
    assert store.read_table(csv_path)["theme"].tolist() == [["x", "y"], []]
    back_pq = store.read_table(pq_path)
    assert back_pq["theme"].tolist() == [["x", "y"], []]  # native lists in Parquet
    assert json.loads(back_pq["scores"][0]) == {"x": 1.5}


MINI_CORPUS = (
    "Continual Learning with Elastic Weights\nWe propose elastic weight consolidation (EWC), a penalty that "
    "reduces catastrophic forgetting in continual learning on permuted MNIST. Code: https://github.com/a/b.\n"
    "Curriculum Learning for Language Models\nWe order training data from easy to hard and compare EWC "
    "with a curriculum; accuracy improves by 3.5% on GLUE.\n"
    "Distilling a Teacher into a Student\nKnowledge distillation transfers a teacher's soft labels to a "
    "smaller student network, reaching 71.2% top-1 accuracy on ImageNet.\n"
    f"{INJECTION}\nAn abstract about reinforcement learning from human feedback with a reward model.\n")


def test_corpus_tables_round_trip_through_the_store(tmp_path):
    corpus = tmp_path / "mini.txt"
    corpus.write_text(MINI_CORPUS)
    tables = build.corpus_tables(corpus)
    build.write_corpus_tables(tmp_path / "data", corpus)
    for name, column in [("papers", "theme"), ("papers", "code_urls"), ("neighbours", "shared_terms"),
                         ("neighbours", "shared_tags"), ("clusters", "cluster_terms")]:
        for suffix in (".csv", ".parquet"):
            back = store.read_table(tmp_path / "data" / f"{name}{suffix}")
            assert back[column].tolist() == [list(v) for v in tables[name][column]], (name, column, suffix)
    neighbours = tables["neighbours"]
    first = neighbours.iloc[0]
    assert first["why"] == why_related(first["similarity"], first["shared_terms"], first["shared_tags"])


def test_only_declared_parameters_are_injected(tmp_path):
    nb = make_nb(tmp_path / "01_a_b.ipynb", [],
                 params="quick = False  # fast\nresults_dir = 'r'  # out\ncorpus_path = ''  # corpus")
    params = build.notebook_parameters(nb, quick=True, results_dir=tmp_path / "res",
                                       corpus=tmp_path / "c.txt", taxonomy=tmp_path / "t.yaml")
    assert params == {"quick": True, "results_dir": str(tmp_path / "res"), "corpus_path": str(tmp_path / "c.txt")}
    bare = make_nb(tmp_path / "02_a_b.ipynb", [], params="seed = 0  # seed")
    assert build.notebook_parameters(bare, quick=True, results_dir="r") == {}


def test_static_notebook_converts_plotly_and_widgets():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    fig = {"data": [{"type": "scatter", "x": [1], "y": [2], "text": ["</script><script>alert(1)</script>"]}],
           "layout": {}}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={site.PLOTLY_MIME: fig, "text/plain": "Figure"}),
        nbformat.v4.new_output("display_data", data={site.WIDGET_MIME: {"model_id": "x"}, "text/plain": "VBox()"}),
    ]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {}}
    out = site.static_notebook(nb)
    html0 = out.cells[0].outputs[0].data["text/html"]
    assert "Plotly.newPlot" in html0 and "plotly-graph-div" in html0
    assert "</script><script>alert" not in html0  # the JSON cannot close the script tag
    assert "JupyterLab" in out.cells[0].outputs[1].data["text/html"]
    assert "widgets" not in out.metadata
    assert site.PLOTLY_MIME in nb.cells[0].outputs[0].data  # the input is not modified


def test_index_escapes_corpus_text():
    pages = pd.DataFrame([{"notebook": "01_x_y.ipynb", "title": "Tour", "summary": "s", "html": "01_x_y.html",
                           "status": "ok", "page_bytes": 2048}])
    links = pd.DataFrame([{"notebook": "01_x_y.ipynb", "relation": "reproduces", "paper_id": "p",
                           "title": INJECTION, "matched": True}])
    page = site.index_html(pages, links)
    assert INJECTION not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="01_x_y.html"' in page and "2 KiB" in page


def test_cli_rejects_missing_files(tmp_path, capsys):
    assert main(["build", "--corpus", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "b")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert main(["build", "--only", "(", "--out", str(tmp_path / "b")]) == 2


# ------------------------------------------------------------------ a real (tiny) build

@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinybuild")
    nbs = root / "notebooks"
    nbs.mkdir()
    make_nb(nbs / "00_ok_page.ipynb", [
        "import plotly.graph_objects as go\nfrom pathlib import Path\n"
        "Path(results_dir).mkdir(parents=True, exist_ok=True)\n(Path(results_dir) / 'quick.txt').write_text(str(quick))",
        "go.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))",
    ])
    make_nb(nbs / "01_bad_page.ipynb", ["x = 1", "raise ValueError('boom in cell')", "print('never')"])
    out = root / "build"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["build", "--quick", "--notebooks", str(nbs), "--out", str(out), "--no-progress"])
    return out, code, printed.getvalue()


@pytest.mark.slow
def test_failing_notebook_does_not_stop_the_build(tiny_build):
    out, code, text = tiny_build
    assert code == 1
    assert "FAILED 01_bad_page.ipynb" in text and "raise ValueError('boom in cell')" in text
    assert "ValueError: boom in cell" in text
    # the failing copy is kept with its traceback, the other notebook ran and was exported
    bad = nbformat.read(str(out / "notebooks" / "01_bad_page.ipynb"), as_version=4)
    assert any(o.get("ename") == "ValueError" for c in bad.cells if c.cell_type == "code" for o in c.outputs)
    assert (out / "site" / "00_ok_page.html").exists() and (out / "site" / "01_bad_page.html").exists()
    assert (out / "results" / "00_ok_page" / "quick.txt").read_text() == "True"


@pytest.mark.slow
def test_site_pages_are_offline_and_small(tiny_build):
    out, _, text = tiny_build
    page = (out / "site" / "00_ok_page.html").read_text()
    assert re.search(r'<script[^>]*src="plotly.min.js"', page) and "Plotly.newPlot" in page
    for remote in ("cdnjs", "unpkg", "cdn.plot.ly", "mathjax"):
        assert remote not in page.lower()
    assert (out / "site" / "plotly.min.js").stat().st_size > 1_000_000  # plotly.js once, beside the pages
    assert (out / "site" / "00_ok_page.html").stat().st_size < 600_000
    index = (out / "site" / "index.html").read_text()
    assert 'href="00_ok_page.html"' in index and "failed" in index
    assert re.search(r"00_ok_page\.ipynb\s+[\d.]+\s+ok\s+[\d.]+", text)  # summary: notebook, seconds, status, KiB


@pytest.mark.slow
def test_corpus_tables(tmp_path):
    corpus = tmp_path / "mini.txt"
    corpus.write_text(MINI_CORPUS)
    files = build.write_corpus_tables(tmp_path / "data", corpus)
    names = {p.name for p in files}
    for table in ("papers", "neighbours", "claims", "methods", "clusters", "lineage"):
        assert f"{table}.csv" in names and f"{table}.parquet" in names
    papers = pd.read_parquet(tmp_path / "data" / "papers.parquet")
    assert len(papers) == 4 and {"theme", "kind", "domain", "methods"} <= set(papers.columns)
    neighbours = pd.read_csv(tmp_path / "data" / "neighbours.csv")
    assert {"paper_id", "neighbour_id", "rank", "similarity", "why"} <= set(neighbours.columns)
