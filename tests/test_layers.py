"""The package's architecture holds: the import-linter contracts in pyproject.toml, and no
import cycle between any two modules of paperlib."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_no_import_cycle_anywhere():
    import grimp

    graph = grimp.build_graph("paperlib", exclude_type_checking_imports=True)
    g = nx.DiGraph()
    for module in graph.modules:
        if module == "paperlib":  # the package's lazy top-level names, not a module dependency
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != "paperlib":
                g.add_edge(module, imported)
    # a package imports its own modules through __init__; a cycle through a parent package is not a real one
    cycles = [c for c in nx.simple_cycles(g) if not any(a.startswith(b + ".") or b.startswith(a + ".")
                                                        for a in c for b in c if a != b)]
    assert not cycles, cycles[:5]


def test_the_halves_are_folders():
    pkg = ROOT / "paperlib"
    for part in ("corpus", "experiments", "site"):
        assert (pkg / part / "__init__.py").is_file(), part
    for theme in ("continual", "curriculum", "distillation", "editing"):
        assert (pkg / "experiments" / theme / "__init__.py").is_file(), theme
    flat = sorted(p.name for p in pkg.glob("*.py"))
    assert flat == ["__init__.py", "cli.py", "errors.py", "paths.py", "store.py"], flat
