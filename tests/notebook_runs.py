"""Helpers shared by the notebook, browser and JupyterLab tests (not a test module).

`quick_run` executes a notebook once per test session with papermill in quick mode and keeps
the executed copy in the session's temp folder, so nbval and the site tests reuse it.
"""
from __future__ import annotations

from pathlib import Path

from paperlib.site import build
from paperlib.paths import notebooks_dir
from paperlib.site.registry import notebook_paths

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


def collection() -> list[Path]:
    """Every notebook of the collection (the glob the build uses)."""
    return notebook_paths(notebooks_dir())


def quick_run(path: Path, tmp_path_factory) -> build.NotebookResult:
    """Execute `path` with quick=True and a temp results_dir, once per session."""
    root = tmp_path_factory.getbasetemp() / "quick-runs"
    executed = root / "executed" / path.name
    marker = root / "status" / f"{path.stem}.txt"
    if marker.exists():
        status, failing_cell, error = marker.read_text().split("\n", 2)
        return build.NotebookResult(path.name, 0.0, status, str(executed), failing_cell=failing_cell, error=error)
    results_dir = root / "results" / path.stem
    params = build.notebook_parameters(path, quick=True, results_dir=results_dir)
    # run from an unrelated folder: notebooks must not depend on the working directory
    result = build.execute_notebook(path, executed, params, cwd=root / "cwd" / path.stem)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{result.status}\n{result.failing_cell}\n{result.error}")
    return result


def error_outputs(nb) -> list[str]:
    """ename: evalue of every error output in an executed notebook."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
