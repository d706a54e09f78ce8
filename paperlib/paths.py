"""Where paperlib finds its shipped data and keeps its downloads.

Everything that names a folder goes through here, so a notebook run by papermill
from any working directory finds the same files.
"""
from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def shipped_dir() -> Path:
    """The project's `data/` folder: the repository's own in a checkout, the wheel's copy otherwise."""
    for candidate in (_PKG.parent / "data", _PKG / "_data"):
        if (candidate / "corpus").is_dir():
            return candidate
    raise FileNotFoundError(f"paperlib's shipped data folder is missing (looked in {_PKG.parent / 'data'} and {_PKG / '_data'})")


def notebooks_dir() -> Path:
    """The folder of the collection's notebooks."""
    for candidate in (_PKG.parent / "notebooks", _PKG / "_notebooks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("paperlib's notebooks folder is missing")


def default_corpus_path() -> Path:
    """The embedded corpus of 257 training-paradigm papers."""
    return shipped_dir() / "corpus" / "training-paradigms.txt"


def default_taxonomy_path() -> Path:
    """The editable default taxonomy (YAML)."""
    return shipped_dir() / "taxonomy.yaml"


def data_home() -> Path:
    """Cache folder for downloads: `$PAPERLIB_DATA`, else the platform cache dir (created on use)."""
    env = os.environ.get("PAPERLIB_DATA")
    if env:
        home = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or (
            os.environ.get("LOCALAPPDATA") if os.name == "nt" else None
        ) or str(Path.home() / (".cache" if os.name != "darwin" else "Library/Caches"))
        home = Path(base) / "paperlib"
    home.mkdir(parents=True, exist_ok=True)
    return home


def results_dir(notebook: str, given: str | Path = "") -> Path:
    """Where a notebook writes its results: `given` if set, else `data_home()/results/<notebook>` (created)."""
    folder = Path(given).expanduser() if str(given) else data_home() / "results" / notebook
    folder.mkdir(parents=True, exist_ok=True)
    return folder
