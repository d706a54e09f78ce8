"""The site's own pages: one page per paper, the list of papers, the offline explorer's markup and
data, the shared files, links from the index and the notebook pages, and the size summary."""
from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest

from paperlib.corpus.reader import paper_id
from paperlib.site import build
from paperlib.site import html as site
from paperlib.site import pages
from paperlib.site.explorer import Explorer, explorer_table
from paperlib.site.explorer_page import EXPLORER_MIME, explorer_html, explorer_payload

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
CORPUS = [
    ("EWC: Elastic Weight Consolidation for Continual Learning",
     "We propose elastic weight consolidation, a penalty that reduces catastrophic forgetting in continual "
     "learning on permuted MNIST, keeping 90.0% accuracy on old tasks. Code: https://github.com/a/ewc."),
    ("Replay Against Forgetting in Continual Learning",
     "We compare rehearsal with EWC and find replay 3.5x better against catastrophic forgetting in "
     "class-incremental continual learning on split MNIST."),
    ("Distilling a Teacher into a Student",
     "Knowledge distillation transfers a teacher's soft labels to a smaller student network, reaching "
     "71.2% top-1 accuracy on ImageNet."),
    (f"{SCRIPT} Curriculum Learning {IMG}",
     f"We order training data from easy to hard {SCRIPT} and compare with EWC {IMG} on CIFAR-100."),
    ("Reward Models from Human Feedback",
     "A reward model trained on human preferences guides reinforcement learning from human feedback."),
]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "hostile.txt"
    path.write_text("".join(f"{t}\n{a}\n" for t, a in CORPUS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tables(corpus_file):
    return build.corpus_tables(corpus_file, neighbours=build.PAPER_NEIGHBOURS)


@pytest.fixture(scope="module")
def ids():
    return [paper_id(t) for t, _ in CORPUS]


@pytest.fixture(scope="module")
def links(ids):
    return pd.DataFrame([{"notebook": "10_ewc.ipynb", "relation": "reproduces", "paper_id": ids[0],
                          "title": CORPUS[0][0], "matched": True},
                         {"notebook": "11_other.ipynb", "relation": "related", "paper_id": ids[0],
                          "title": CORPUS[0][0], "matched": True}])


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory, tables, links):
    out = tmp_path_factory.mktemp("site")
    sizes = pages.write_paper_pages(out, tables, links, notebook_pages={"10_ewc.ipynb": "10_ewc.html"},
                                    explorer="03_explorer.html")
    assert set(sizes) == {pages.paper_page_name(pid) for pid in tables["papers"]["paper_id"]} | {"index.html"}
    return out


def _page(site_dir, i) -> str:
    return (site_dir / "papers" / pages.paper_page_name(paper_id(CORPUS[i][0]))).read_text(encoding="utf-8")


def test_page_names_are_safe_file_names():
    assert pages.paper_page_name("ewc-elastic-1a2b3c4d") == "ewc-elastic-1a2b3c4d.html"
    assert pages.paper_page_name("../etc/passwd") == "_etc_passwd.html"
    assert pages.paper_href("a b") == "papers/a_b.html" and pages.paper_href("x", prefix="") == "x.html"


def test_a_paper_page_shows_what_is_known_about_the_paper(site_dir, ids):
    page = _page(site_dir, 0)
    assert f"<h1>{CORPUS[0][0]}</h1>" in page and "permuted MNIST" in page
    assert '<link rel="stylesheet" href="../paperlib.css">' in page and "<script" not in page
    assert "Tags and their evidence" in page and "continual learning" in page  # a phrase behind a tag
    assert '<a href="https://github.com/a/ewc" rel="noopener noreferrer">' in page
    assert "<b>90%</b> accuracy on old tasks" in page  # a numeric claim with its sentence
    neighbours = re.findall(r'<ol class="neighbours">(.*?)</ol>', page, re.S)[0]
    assert neighbours.count("<li>") == len(CORPUS) - 1 and "cosine" in neighbours
    assert f'href="{pages.paper_page_name(ids[1])}"' in neighbours
    # lineage out: the papers naming EWC; the notebooks, linked when they have a page
    lineage_out = re.findall(r'<ul class="lineage-out">(.*?)</ul>', page, re.S)[0]
    assert f'href="{pages.paper_page_name(ids[1])}"' in lineage_out and re.search(r"\([a-z ]+ EWC\)", lineage_out)
    assert '<a href="../10_ewc.html">10_ewc.ipynb</a> <span class="why">(reproduces it)' in page
    assert "11_other.ipynb <span" in page  # no page: named, not linked
    assert '<a href="../03_explorer.html">explorer</a>' in page and '<a href="../index.html">' in page


def test_lineage_in_links_the_paper_whose_method_it_names(site_dir, ids):
    page = _page(site_dir, 1)
    lineage_in = re.findall(r'<ul class="lineage-in">(.*?)</ul>', page, re.S)[0]
    assert f'href="{pages.paper_page_name(ids[0])}"' in lineage_in and re.search(r"\(it [a-z ]+ EWC\)", lineage_in)
    assert re.search(r"Named in the abstract: .*EWC <span", page)


def test_corpus_text_stays_text_on_every_page(site_dir):
    hostile = _page(site_dir, 3)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Curriculum Learning &lt;img src=x" in hostile
    for f in (site_dir / "papers").glob("*.html"):
        text = f.read_text(encoding="utf-8")
        assert SCRIPT not in text and IMG not in text and "<script" not in text, f.name
    listing = (site_dir / "papers" / "index.html").read_text(encoding="utf-8")
    assert listing.count("<tr>") == len(CORPUS) + 1 and "&lt;script&gt;" in listing


def test_only_web_addresses_become_links():
    assert pages._external("javascript:alert(1)") == "javascript:alert(1)"
    assert pages._external('https://x.org/"onmouseover=') == "https://x.org/&quot;onmouseover="
    assert pages._external("http://x.org/a?b=1&c=2") == ('<a href="http://x.org/a?b=1&amp;c=2" '
                                                          'rel="noopener noreferrer">http://x.org/a?b=1&amp;c=2</a>')


def test_pages_of_papers_no_longer_in_the_corpus_are_removed(tmp_path, tables):
    stale = tmp_path / "papers" / "gone-12345678.html"
    stale.parent.mkdir()
    stale.write_text("old")
    pages.write_paper_pages(tmp_path, tables)
    assert not stale.exists() and (tmp_path / "papers" / "index.html").exists()


# ------------------------------------------------------------------ the offline explorer's markup


@pytest.fixture(scope="module")
def table(tables, ids):
    runnable = pd.DataFrame({"paper_id": ids, "runnable": [["10_ewc.ipynb"], [], [], [], []]})
    return explorer_table(tables["papers"], runnable)


@pytest.fixture(scope="module")
def coords(ids):
    return pd.DataFrame({"paper_id": ids, "x": [0.0, 1, 2, 3, float("nan")], "y": [0.0, 1, 0, 1, 2]})


def test_payload_is_plain_data(table, coords, ids):
    payload = explorer_payload(table, coords)
    json.dumps(payload, allow_nan=False)
    assert payload["facets"] == ["theme", "kind", "domain"] and len(payload["papers"]) == len(CORPUS)
    first = payload["papers"][0]
    assert first["paper_id"] == ids[0] and first["runnable"] == ["10_ewc.ipynb"]
    assert first["code_urls"] == ["https://github.com/a/ewc"] and (first["x"], first["y"]) == (0.0, 0.0)
    assert payload["papers"][4]["x"] is None  # not on the map


def test_explorer_markup_escapes_and_ships_no_library(table, coords, ids):
    markup = explorer_html(explorer_payload(table, coords), element_id="ex")
    assert SCRIPT not in markup and IMG not in markup and "</script><script>alert" not in markup
    data = re.search(r'<script type="application/json" class="pe-data">(.*?)</script>', markup, re.S).group(1)
    assert "<" not in data and ">" not in data
    rows = json.loads(data)["rows"]
    assert rows[3]["title"] == CORPUS[3][0] and rows[0]["href"] == f"papers/{ids[0]}.html"
    assert f'href="papers/{ids[0]}.html"' in markup  # the table's title cell links the paper's page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Curriculum Learning" in markup
    assert re.search(r'<select multiple size="6" id="ex-kind" class="pe-facet" data-facet="kind">', markup)
    assert '<script src="itables-offline.js"></script>' in markup and 'src="paperlib-explorer.js"' in markup
    assert "cdn" not in markup.lower() and "https://www.unpkg.com" not in markup
    bundle = re.search(r'data-itables="(\w+)"', markup).group(1)
    assert f"window.{bundle} = " in pages.itables_offline_js()  # the shared loader defines what the page awaits
    assert len(re.findall(r'"customdata":\[0,1,2,3\]', markup)) == 1  # four papers on the map, by row


def test_static_notebook_turns_the_explorer_data_into_the_explorer(table, coords):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        site.WIDGET_MIME: {"model_id": "m"}, EXPLORER_MIME: explorer_payload(table, coords), "text/plain": "Explorer"})]
    other = nbformat.v4.new_code_cell("slider")
    other.outputs = [nbformat.v4.new_output("display_data", data={site.WIDGET_MIME: {"model_id": "s"}})]
    nb.cells = [cell, other]
    out = site.static_notebook(nb)
    assert 'class="paperlib-explorer" id="paperlib-explorer-1"' in out.cells[0].outputs[0].data["text/html"]
    assert "JupyterLab" in out.cells[1].outputs[0].data["text/html"]


def test_the_widget_explorer_carries_its_data(table, coords, tmp_path):
    explorer = Explorer(table, coords.dropna(), out_dir=tmp_path)
    bundle = explorer._repr_mimebundle_()
    assert site.WIDGET_MIME in bundle and "text/plain" in bundle
    papers = bundle[EXPLORER_MIME]["papers"]
    assert [p["paper_id"] for p in papers] == table["paper_id"].tolist()
    assert sum(p["x"] is not None for p in papers) == 4
    assert bundle[EXPLORER_MIME]["facets"] == ["theme", "kind", "domain", "methods"]  # the widget's method list too
    assert "EWC" in papers[1]["facets"]["methods"]
    assert 'data-facet="methods"' in explorer_html(bundle[EXPLORER_MIME])


# ------------------------------------------------------------------ links, shared files, sizes


def test_index_links_papers_and_the_explorer(ids):
    index_pages = pd.DataFrame([{"notebook": "10_ewc.ipynb", "title": "EWC", "summary": "s", "html": "10_ewc.html",
                                 "status": "ok", "page_bytes": 1024}])
    links = pd.DataFrame([{"notebook": "10_ewc.ipynb", "relation": "reproduces", "paper_id": ids[3],
                           "title": CORPUS[3][0], "matched": True},
                          {"notebook": "10_ewc.ipynb", "relation": "related", "paper_id": "",
                           "title": "Not in the corpus", "matched": False}])
    text = site.index_html(index_pages, links, paper_ids=set(ids), explorer="03_explorer.html")
    assert f'<li><a href="papers/{ids[3]}.html">&lt;script&gt;' in text and "<li>Not in the corpus</li>" in text
    assert '<a href="03_explorer.html">Explorer</a>' in text and '<a href="papers/index.html">All 5 papers</a>' in text
    assert SCRIPT not in text
    assert "papers/" not in site.index_html(index_pages, links)  # no paper pages: no links


def test_notebook_pages_link_the_papers_they_name(ids):
    meta = {"reproduces": [CORPUS[3][0]], "related": [CORPUS[1][0], "Not in the corpus"]}
    nav = site.papers_nav(meta, set(ids))
    assert f'<a href="papers/{ids[3]}.html">&lt;script&gt;alert(1)' in nav and SCRIPT not in nav
    assert "related papers: " in nav and "Not in the corpus" not in nav
    assert site.papers_nav(meta, None) == ""


def test_export_site_writes_paper_pages_and_links_them(tmp_path, corpus_file, ids):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Tour")]
    nb.metadata["paperlib"] = {"title": "Tour", "summary": "s", "reproduces": [CORPUS[0][0]]}
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nbformat.write(nb, str(notebooks / "01_tour_page.ipynb"))
    site_dir = tmp_path / "site"
    sizes = build.export_site([notebooks / "01_tour_page.ipynb"], site_dir, source_dir=notebooks, corpus=corpus_file)
    assert sizes["01_tour_page.ipynb"] > 0
    page = (site_dir / "01_tour_page.html").read_text(encoding="utf-8")
    assert f'<a href="papers/{ids[0]}.html">EWC: Elastic' in page
    index = (site_dir / "index.html").read_text(encoding="utf-8")
    assert f'href="papers/{ids[0]}.html"' in index
    for name in ("plotly.min.js", "paperlib.css", "paperlib-explorer.js", "itables-offline.js"):
        assert (site_dir / name).is_file(), name
    paper = (site_dir / "papers" / f"{ids[0]}.html").read_text(encoding="utf-8")
    assert '<a href="../01_tour_page.html">01_tour_page.ipynb</a>' in paper
    lines = build.format_site_sizes(build.site_file_sizes(site_dir))
    assert lines[0].startswith(f"paper pages: {len(CORPUS)} in papers/, median ")
    assert "itables-offline.js" in lines[1] and "plotly.min.js" in lines[1]


def test_the_build_summary_reports_page_sizes():
    sizes = {"plotly.min.js": 4_800_000, "paperlib.css": 2048, "index.html": 9000,
             "papers/a.html": 6000, "papers/b.html": 9000, "papers/index.html": 30_000}
    lines = build.format_site_sizes(sizes)
    assert lines[0] == ("paper pages: 2 in papers/, median 9 KiB, largest 9 KiB, 15 KiB in all; "
                        "no script, one shared stylesheet")
    assert "plotly.min.js 4.6 MiB" in lines[1] and "paperlib.css 2 KiB" in lines[1]
