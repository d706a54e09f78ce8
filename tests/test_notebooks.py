"""Every notebook in notebooks/: stored clean and well-formed, runs headless in quick mode with
papermill without an error cell, and its checked summary cells reproduce under nbval."""
from __future__ import annotations

import ast
import subprocess
import sys

import nbformat
import pytest

from notebook_runs import collection, error_outputs, quick_run

NOTEBOOKS = collection()
IDS = [p.stem for p in NOTEBOOKS]


def test_the_collection_is_not_empty():
    names = {p.name for p in NOTEBOOKS}
    assert {"00_start_here.ipynb", "01_corpus_tour.ipynb", "02_method_map.ipynb", "03_explorer.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    for c in code:
        assert not c.outputs and c.execution_count is None, "notebooks are stored without outputs"
        tree = ast.parse(c.source.replace("%", "#"))  # ignore magics
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, f"def/class in a notebook cell belongs in paperlib: {c.source[:80]!r}"
        assert "../data" not in c.source, "use paperlib.paths, not '../data'"
    # every parameter is a literal with a comment, and quick/results_dir are there for the tests
    params = code[0].source.splitlines()
    assigned = [ln.split("=")[0].strip().split(":")[0] for ln in params if "=" in ln and not ln.startswith("#")]
    assert {"quick", "results_dir"} <= set(assigned)
    for ln in params:
        if "=" in ln and not ln.lstrip().startswith("#"):
            assert "#" in ln, f"parameter without a comment: {ln!r}"
            ast.literal_eval(ln.split("=", 1)[1].split("#")[0].strip())
    meta = nb.metadata.get("paperlib", {})
    assert meta.get("title") and meta.get("summary") and isinstance(meta.get("reproduces", []), list)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_quick_mode(path, tmp_path_factory):
    result = quick_run(path, tmp_path_factory)
    assert result.status == "ok", f"{path.name} failed at {result.failing_cell}: {result.error}"
    nb = nbformat.read(result.executed, as_version=4)
    assert error_outputs(nb) == []


def _checked(path) -> bool:
    return "NBVAL_CHECK_OUTPUT" in path.read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if _checked(p)],
                         ids=[p.stem for p in NOTEBOOKS if _checked(p)])
def test_checked_cells_reproduce_under_nbval(path, tmp_path_factory):
    """nbval re-executes the papermill copy and compares the cells marked `# NBVAL_CHECK_OUTPUT`."""
    result = quick_run(path, tmp_path_factory)
    if result.status != "ok":
        pytest.fail(f"{path.name} did not run: {result.failing_cell}: {result.error}")
    run_dir = tmp_path_factory.mktemp(f"nbval-{path.stem}")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         "--rootdir", str(run_dir), result.executed],
        cwd=run_dir, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
