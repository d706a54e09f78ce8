"""The explorer: search and facet filtering, escaped tables, the reading list, and the widgets."""
from __future__ import annotations

import pandas as pd
import pytest

from paperlib.site.explorer import (Explorer, Query, explorer_table, filter_papers, reading_list_markdown,
                               results_html, write_reading_list)

INJECTION = "<img src=x onerror=alert(1)>"


@pytest.fixture
def tagged():
    return pd.DataFrame({
        "paper_id": ["p1", "p2", "p3", "p4"],
        "title": ["Elastic Weight Consolidation", "Curriculum for Transformers", INJECTION, "Reward Models at Scale"],
        "abstract": ["We fight catastrophic forgetting in continual learning. More text.",
                     "Easy-to-hard ordering of training data for transformers. Second sentence.",
                     "Knowledge distillation of a teacher into a student. It works.",
                     "Reward models trained from human preference for transformers. Done."],
        "code_urls": [["https://github.com/a/ewc"], [], [], ["https://github.com/b/rm"]],
        "theme": [["continual-learning"], ["curriculum-progressive"], ["distillation"], ["alignment-feedback"]],
        "kind": ["method", "empirical-study", "method", "method"],
        "domain": [["general"], ["language"], ["vision"], ["language"]],
    })


@pytest.fixture
def table(tagged):
    runnable = pd.DataFrame({"paper_id": ["p1", "p2", "p3", "p4"],
                             "runnable": [["10_cl_forgetting.ipynb"], [], [], []]})
    return explorer_table(tagged, runnable)


def test_explorer_table_columns(table):
    assert table["has_code"].tolist() == [True, False, False, True]
    assert table["runnable"].tolist() == [["10_cl_forgetting.ipynb"], [], [], []]
    assert table["summary"][0] == "We fight catastrophic forgetting in continual learning."


@pytest.mark.parametrize("query, expected", [
    (Query(), ["p1", "p2", "p3", "p4"]),
    (Query(text="TRANSFORMERS"), ["p2", "p4"]),
    (Query(text="transformers reward"), ["p4"]),  # every word must appear
    (Query(text="transformers", kind=("method",)), ["p4"]),
    (Query(domain=("language", "vision")), ["p2", "p3", "p4"]),  # any of the chosen values
    (Query(has_code=True), ["p1", "p4"]),
    (Query(runnable=True), ["p1"]),
    (Query(text="no such word"), []),
])
def test_filter_papers(table, query, expected):
    assert filter_papers(table, query)["paper_id"].tolist() == expected


def test_results_html_escapes_titles(table):
    page = results_html(table)
    assert INJECTION not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "… and 2 more" in results_html(table, limit=2)


def test_reading_list(table, tmp_path):
    text = reading_list_markdown(filter_papers(table, Query(has_code=True)), heading="Mine")
    assert text.splitlines()[0] == "# Mine"
    assert "## Elastic Weight Consolidation" in text and "- code: <https://github.com/a/ewc>" in text
    assert "- tags: continual-learning | method | general" in text
    assert "- runnable notebook: 10_cl_forgetting.ipynb" in text
    assert "Curriculum" not in text
    path = write_reading_list(table, tmp_path / "sub" / "list.md")
    written = path.read_text()
    assert "4 papers." in written and INJECTION not in written and "&lt;img" in written


def test_widgets_follow_the_search(table, tmp_path):
    coords = pd.DataFrame({"paper_id": ["p1", "p2", "p3", "p4"], "x": [0.0, 1, 2, 3], "y": [0.0, 1, 0, 1]})
    ex = Explorer(table, coords, out_dir=tmp_path, k=2)
    assert ex.count.value.startswith("<b>4</b> of 4")
    ex.search.value = "transformers"
    assert ex.count.value.startswith("<b>2</b> of 4")
    assert list(ex.figure.data[1].x) == [1.0, 3.0]  # the map highlights the selection
    assert [v for _, v in ex.pick.options] == ["p2", "p4"]
    ex.search.value = ""
    ex.facets["domain"].value = ("vision",)
    assert ex.count.value.startswith("<b>1</b> of 4") and "&lt;img" in ex.results.value
    ex.pick.value = "p3"
    assert "why related" in ex.like.value and "cosine" in ex.like.value
    path = ex._write()
    assert path.parent == tmp_path and "1 papers." in path.read_text()
    index = ex._index
    ex.facets["domain"].value = ("language",)
    ex.pick.value = "p4"
    assert "both tagged language" in ex.like.value
    assert ex._index is index  # the TF-IDF index is fitted once and reused for every paper
