"""Teachers' material: every notebook ends with exercises (each with a solution tagged `solution`)
and discussion questions linking the corpus papers; the site comes in two editions (solutions
folded, or left out) and as reveal.js slides that load nothing from the network."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest

from notebook_runs import collection, quick_run
from paperlib.cli import main
from paperlib.corpus.reader import load_corpus
from paperlib.paths import default_corpus_path
from paperlib.site import html as site

NOTEBOOKS = collection()
IDS = [p.stem for p in NOTEBOOKS]
SOLUTION = site.SOLUTION_TAG
PAPER_LINK = re.compile(r"\]\(papers/([^)\s]+)\.html\)")


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _section(nb, heading: str) -> int:
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith(heading)]
    assert len(starts) == 1, f"expected one cell starting with {heading!r}, found {len(starts)}"
    return starts[0]


# ------------------------------------------------------------------ the notebooks' material

@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_each_have_a_solution(path):
    nb = nbformat.read(str(path), as_version=4)
    start, end = _section(nb, "## Exercises"), _section(nb, "## Discussion")
    assert start < end
    cells = nb.cells[start + 1:end]
    exercises = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("**Exercise")]
    assert 2 <= len(exercises) <= 4, f"{len(exercises)} exercises"
    for n, i in enumerate(exercises, start=1):
        assert cells[i].source.startswith(f"**Exercise {n}.**")
        assert SOLUTION not in _tags(cells[i])
        code, words = cells[i + 1], cells[i + 2]
        assert code.cell_type == "code" and SOLUTION in _tags(code), f"exercise {n}: no solution code cell"
        assert words.cell_type == "markdown" and SOLUTION in _tags(words), f"exercise {n}: no explanation"
        assert words.source.startswith(f"**Solution {n}.**")
    # solution cells appear only in the exercises
    outside = [c for c in nb.cells[:start] + nb.cells[end:] if SOLUTION in _tags(c)]
    assert not outside


@pytest.fixture(scope="module")
def corpus_ids() -> set[str]:
    return set(load_corpus(default_corpus_path())["paper_id"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_discussion_questions_link_corpus_papers(path, corpus_ids):
    nb = nbformat.read(str(path), as_version=4)
    text = nb.cells[_section(nb, "## Discussion")].source
    questions = re.findall(r"^\s*\d+\.\s", text, flags=re.MULTILINE)
    assert 3 <= len(questions) <= 4, f"{len(questions)} discussion questions"
    links = PAPER_LINK.findall(text)
    assert links, "the questions link no paper page"
    assert not set(links) - corpus_ids, f"links to papers not in the corpus: {set(links) - corpus_ids}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_slide_breaks_are_marked(path):
    nb = nbformat.read(str(path), as_version=4)
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert kinds[0] == "slide", "the title cell opens the first slide"
    assert all(k in {"slide", "subslide", "fragment", "skip", "notes", "-"} for k in kinds)
    for c, kind in zip(nb.cells, kinds):
        if c.cell_type == "markdown" and re.match(r"#{1,2} ", c.source):
            assert kind == "slide", f"heading without a slide break: {c.source[:50]!r}"
        if "parameters" in _tags(c):
            assert kind == "skip"


# ------------------------------------------------------------------ two editions and slides

def _teaching_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    slide = {"slideshow": {"slide_type": "slide"}}
    nb.cells = [md("# A lesson", metadata=slide),
                code("quick = False  # fast run\nresults_dir = 'results'  # output folder",
                     metadata={"tags": ["parameters"], "slideshow": {"slide_type": "skip"}}),
                code("import plotly.graph_objects as go\ngo.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))"),
                md("## Exercises", metadata=slide),
                md("**Exercise 1.** Predict the sum.", metadata={"slideshow": {"slide_type": "subslide"}}),
                code("print('ANSWER', 40 + 2)", metadata={"tags": [SOLUTION]}),
                md("**Solution 1.** It is FORTY-TWO.", metadata={"tags": [SOLUTION]}),
                md("## Discussion", metadata=slide)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["paperlib"] = {"title": "A lesson", "summary": "a test", "reproduces": []}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def teaching_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("teaching")
    (root / "notebooks").mkdir()
    _teaching_notebook(root / "notebooks" / "00_lesson.ipynb")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["build", "--quick", "--notebooks", str(root / "notebooks"), "--out", str(root / "build"),
                     "--no-progress", "--edition", "both", "--slides"])
    return root / "build", code, printed.getvalue()


@pytest.mark.slow
def test_teacher_edition_folds_solutions(teaching_build):
    out, code, text = teaching_build
    assert code == 0, text
    page = (out / "site" / "00_lesson.html").read_text()
    folded = re.search(r'<details class="paperlib-solution">(.*?)</details>', page, flags=re.DOTALL)
    assert folded, "no folded solution"
    assert "ANSWER" in folded.group(1) and "FORTY-TWO" in folded.group(1)  # code, output and words in one block
    assert page.count('<details class="paperlib-solution">') == 1
    assert "Exercise 1." in page and "Exercise 1." not in folded.group(1)


@pytest.mark.slow
def test_student_edition_leaves_solutions_out(teaching_build):
    out, _, text = teaching_build
    page = (out / "site-student" / "00_lesson.html").read_text()
    assert "Exercise 1." in page and "ANSWER" not in page and "FORTY-TWO" not in page and "<details" not in page
    index = (out / "site-student" / "index.html").read_text()
    assert "Student edition" in index and 'href="00_lesson.html"' in index
    assert (out / "site-student" / "plotly.min.js").is_file()
    assert "student edition and slides" in text  # the time they add is in the summary



@pytest.mark.slow
def test_each_edition_offers_its_notebooks_to_download(teaching_build):
    out, _, _ = teaching_build
    for edition, solutions in (("site", 2), ("site-student", 0)):
        nb = nbformat.read(str(out / edition / "notebooks" / "00_lesson.ipynb"), as_version=4)
        assert sum(SOLUTION in _tags(c) for c in nb.cells) == solutions
        assert any(c.source.startswith("**Exercise 1.**") for c in nb.cells)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # as stored, not executed
        assert 'href="notebooks/00_lesson.ipynb"' in (out / edition / "index.html").read_text()


@pytest.mark.slow
def test_slides_load_nothing_from_the_network(teaching_build):
    out, _, _ = teaching_build
    for edition in ("site", "site-student"):
        deck = (out / edition / site.slides_name("00_lesson")).read_text()
        sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', deck)
        assert sources and not [s for s in sources if re.match(r"(https?:)?//", s)], sources
        for s in sources:
            assert (out / edition / s).is_file(), f"{edition}: {s} is not beside the slides"
        assert deck.count("<section") >= 3
        assert ("ANSWER" in deck) == (edition == "site")
        assert 'href="00_lesson.slides.html"' in (out / edition / "index.html").read_text()


def test_an_unknown_edition_is_refused(tmp_path):
    with pytest.raises(ValueError, match="edition"):
        site.export_page(_teaching_notebook(tmp_path / "x.ipynb"), tmp_path / "x.html", edition="teachers")
    with pytest.raises(SystemExit):
        main(["build", "--edition", "everyone"])


# ------------------------------------------------------------------ the collection's solutions

@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solutions_run_in_quick_mode_and_stay_out_of_the_student_edition(path, tmp_path_factory):
    result = quick_run(path, tmp_path_factory)
    assert result.status == "ok", f"{path.name} failed at {result.failing_cell}: {result.error}"
    nb = nbformat.read(result.executed, as_version=4)
    solutions = [c for c in nb.cells if SOLUTION in _tags(c)]
    code = [c for c in solutions if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "a solution cell did not run"
    out = tmp_path_factory.mktemp(f"student-{path.stem}")
    site.export_page(result.executed, out / "student.html", edition="student")
    site.export_page(result.executed, out / "teacher.html", edition="teacher")
    student, teacher = (out / "student.html").read_text(), (out / "teacher.html").read_text()
    assert "<details class=\"paperlib-solution\"" not in student and "<details class=\"paperlib-solution\"" in teacher
    assert "celltag_solution" not in student and "celltag_solution" in teacher
    assert not re.search(r"Solution \d\.", student) and re.search(r"Solution \d\.", teacher)
    markdown = "jp-Cell jp-MarkdownCell"
    assert teacher.count(markdown) - student.count(markdown) == len(solutions) - len(code)


# ------------------------------------------------------------------ exercise runs are shipped like the notebook's own

def test_exercise_runs_are_catalogued_and_named_in_the_solutions():
    import dataclasses

    from paperlib.experiments.catalog import EXPERIMENTS, exercise_configs, shipped_units
    from paperlib.experiments.runner import experiment_module
    from paperlib.paths import notebooks_dir

    shipped = {u.key for u in shipped_units()}
    for stem, name in EXPERIMENTS.items():
        module = experiment_module(name)
        fields = {f.name for f in dataclasses.fields(module.Config)}
        overrides = getattr(module, "EXERCISES", ())
        nb = nbformat.read(str(notebooks_dir() / f"{stem}.ipynb"), as_version=4)
        solutions = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and SOLUTION in _tags(c))
        for override in overrides:
            assert set(override) <= fields, f"{name}.EXERCISES names no Config field: {set(override) - fields}"
            parts = [v for k, v in override.items()
                     if isinstance(v, dict) and dataclasses.is_dataclass(getattr(module.Config(), k))]
            named = list(override) + [k for v in parts for k in v]  # and the fields changed in a nested config
            assert all(re.search(rf"\b{k}\s*=", solutions) for k in named), f"{stem}: {override} not in a solution"
        for quick in (False, True):
            for config in exercise_configs(stem, quick=quick):
                assert {u.key for u in module.units(config, device="cpu")} <= shipped
