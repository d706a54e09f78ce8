"""The notebook registry: reading metadata.paperlib, matching titles to the corpus, bad records."""
from __future__ import annotations


import nbformat
import pandas as pd
import pytest

from paperlib.site import registry as reg
from paperlib.paths import notebooks_dir

PAPERS = pd.DataFrame({
    "paper_id": ["a1", "b2", "c3"],
    "title": ["Overcoming Forgetting", "Curriculum Learning Revisited", "Distilling the Knowledge"],
})


def write_nb(folder, name, meta):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("quick = False  # fast run")]
    if meta is not None:
        nb.metadata["paperlib"] = meta
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def test_read_entry_and_registry(tmp_path):
    write_nb(tmp_path, "10_cl_forgetting.ipynb", {"title": "Forgetting", "summary": "EWC toy",
                                                  "reproduces": ["Overcoming  forgetting"], "related": ["Curriculum Learning Revisited"]})
    write_nb(tmp_path, "02_map.ipynb", {"title": "Map", "summary": "the map"})
    write_nb(tmp_path, "scratch.ipynb", {"title": "x", "summary": "y"})  # not NN_name: not part of the collection
    registry = reg.load_registry(tmp_path)
    assert registry["notebook"].tolist() == ["02_map.ipynb", "10_cl_forgetting.ipynb"]
    assert registry.loc[1, "reproduces"] == ["Overcoming  forgetting"]
    assert registry.loc[0, "reproduces"] == []


def test_title_matching_ignores_case_and_spacing_and_reports_unknown(tmp_path):
    write_nb(tmp_path, "10_cl_forgetting.ipynb", {"title": "F", "summary": "s",
                                                  "reproduces": ["overcoming   FORGETTING", "No Such Paper"]})
    registry = reg.load_registry(tmp_path)
    links = reg.registry_papers(registry, PAPERS)
    assert links[["paper_id", "title", "matched"]].values.tolist() == [
        ["a1", "Overcoming Forgetting", True], ["", "No Such Paper", False]]
    assert reg.unmatched_titles(registry, PAPERS) == [("10_cl_forgetting.ipynb", "No Such Paper")]
    by_paper = reg.notebooks_by_paper(registry, PAPERS)
    assert by_paper.set_index("paper_id").loc["a1", "runnable"] == ["10_cl_forgetting.ipynb"]
    assert by_paper.set_index("paper_id").loc["b2", "runnable"] == []
    table = reg.notebook_table(registry, PAPERS)
    assert table.loc[0, "n_papers"] == 2


@pytest.mark.parametrize("meta, message", [
    (None, "no metadata.paperlib"),
    ({"title": "", "summary": "s"}, "title must be a non-empty string"),
    ({"title": "t", "summary": "s", "reproduces": "Overcoming Forgetting"}, "reproduces must be a list"),
])
def test_bad_records_name_the_file(tmp_path, meta, message):
    path = write_nb(tmp_path, "05_bad_one.ipynb", meta)
    with pytest.raises(reg.RegistryError, match=message) as info:
        reg.read_entry(path)
    assert "05_bad_one.ipynb" in str(info.value)


def test_unreadable_notebook(tmp_path):
    path = tmp_path / "06_broken.ipynb"
    path.write_text("{not json")
    with pytest.raises(reg.RegistryError, match="cannot read"):
        reg.read_entry(path)


def test_only_filters_by_regex(tmp_path):
    for name in ("00_start_here.ipynb", "01_corpus_tour.ipynb", "10_cl_forgetting.ipynb"):
        write_nb(tmp_path, name, {"title": "t", "summary": "s"})
    assert [p.name for p in reg.notebook_paths(tmp_path, only=r"^0[01]_")] == ["00_start_here.ipynb", "01_corpus_tour.ipynb"]


def test_collection_registry_matches_shipped_corpus(corpus):
    """Every notebook in notebooks/ has a record and its titles are exact corpus titles."""
    registry = reg.load_registry(notebooks_dir())
    assert len(registry) > 0
    assert reg.unmatched_titles(registry, corpus) == []
    titles = set(corpus["title"])
    for rec in registry.itertuples():
        for t in list(rec.reproduces) + list(rec.related):
            assert t in titles, f"{rec.notebook}: {t!r} is not spelled exactly as in the corpus"
