"""The notebook registry: which corpus papers each notebook of the collection covers.

Every notebook carries `metadata.paperlib = {"title", "summary", "reproduces": [corpus titles],
"related": [corpus titles]}`. The site index, `00_start_here` and the explorer read it from here,
so a paper with a runnable toy experiment can point to its notebook.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from paperlib.corpus.reader import normalise_title
from paperlib.paths import notebooks_dir

NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook's registry record (titles are exact corpus titles)."""

    notebook: str  # file name, e.g. "02_method_map.ipynb"
    title: str
    summary: str
    reproduces: tuple[str, ...] = ()
    related: tuple[str, ...] = ()


class RegistryError(ValueError):
    """A notebook whose `metadata.paperlib` is missing or malformed (names the file)."""


def _titles(value, path: Path, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise RegistryError(f"{path}: metadata.paperlib.{key} must be a list of corpus titles")
    return tuple(value)


def read_entry(path: str | Path) -> NotebookEntry:
    """Read one notebook's `metadata.paperlib` record without executing it."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read the notebook ({exc})") from exc
    meta = nb.get("metadata", {}).get("paperlib")
    if not isinstance(meta, dict):
        raise RegistryError(f"{path}: no metadata.paperlib record (title, summary, reproduces)")
    for key in ("title", "summary"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise RegistryError(f"{path}: metadata.paperlib.{key} must be a non-empty string")
    return NotebookEntry(
        notebook=path.name,
        title=meta["title"].strip(),
        summary=meta["summary"].strip(),
        reproduces=_titles(meta.get("reproduces"), path, "reproduces"),
        related=_titles(meta.get("related"), path, "related"),
    )


def notebook_paths(folder: str | Path | None = None, only: str | None = None) -> list[Path]:
    """The collection's notebooks (`NN_theme_topic.ipynb`) in name order; `only` is a regex on file names."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    pattern = re.compile(only) if only else None
    return sorted(
        p for p in folder.glob("*.ipynb")
        if NOTEBOOK_NAME.match(p.name) and (pattern is None or pattern.search(p.name))
    )


def load_registry(folder: str | Path | None = None) -> pd.DataFrame:
    """One row per notebook: notebook, title, summary, reproduces (list), related (list)."""
    rows = []
    for path in notebook_paths(folder):
        entry = read_entry(path)
        rows.append({
            "notebook": entry.notebook, "title": entry.title, "summary": entry.summary,
            "reproduces": list(entry.reproduces), "related": list(entry.related),
        })
    return pd.DataFrame(rows, columns=["notebook", "title", "summary", "reproduces", "related"])


def registry_papers(registry: pd.DataFrame, papers: pd.DataFrame) -> pd.DataFrame:
    """Tidy link table: notebook, relation ("reproduces"/"related"), paper_id, title, matched.

    Titles are matched to the corpus by `normalise_title` (case, accents, punctuation and spacing
    ignored); `matched` is False (and paper_id empty) for a title the corpus does not contain, so
    callers can report it.
    """
    by_title = {normalise_title(t): (pid, t) for pid, t in zip(papers["paper_id"], papers["title"])}
    rows = []
    for rec in registry.itertuples(index=False):
        for relation in ("reproduces", "related"):
            for title in getattr(rec, relation):
                pid, corpus_title = by_title.get(normalise_title(title), ("", title))
                rows.append({"notebook": rec.notebook, "relation": relation, "paper_id": pid,
                             "title": corpus_title, "matched": bool(pid)})
    return pd.DataFrame(rows, columns=["notebook", "relation", "paper_id", "title", "matched"])


def unmatched_titles(registry: pd.DataFrame, papers: pd.DataFrame) -> list[tuple[str, str]]:
    """(notebook, title) pairs whose title is not in the corpus."""
    links = registry_papers(registry, papers)
    bad = links[~links["matched"].astype(bool)]
    return list(zip(bad["notebook"], bad["title"]))


def notebooks_by_paper(registry: pd.DataFrame, papers: pd.DataFrame) -> pd.DataFrame:
    """Per corpus paper: paper_id, runnable (notebooks that reproduce it), related_notebooks (lists)."""
    links = registry_papers(registry, papers)
    links = links[links["matched"].astype(bool)]
    out = pd.DataFrame({"paper_id": papers["paper_id"].to_numpy()})
    for relation, column in (("reproduces", "runnable"), ("related", "related_notebooks")):
        grouped = links[links["relation"] == relation].groupby("paper_id")["notebook"].agg(
            lambda s: sorted(set(s)))
        out[column] = [grouped.get(pid, []) for pid in out["paper_id"]]
    return out


def notebook_table(registry: pd.DataFrame, papers: pd.DataFrame) -> pd.DataFrame:
    """One row per notebook for reading: notebook, title, summary, n_papers, papers (titles joined by '; ')."""
    links = registry_papers(registry, papers)
    rows = []
    for rec in registry.itertuples(index=False):
        mine = links[(links["notebook"] == rec.notebook) & (links["relation"] == "reproduces")]
        rows.append({"notebook": rec.notebook, "title": rec.title, "summary": rec.summary,
                     "n_papers": len(mine), "papers": "; ".join(mine["title"])})
    return pd.DataFrame(rows, columns=["notebook", "title", "summary", "n_papers", "papers"])


def coverage_sentence(registry: pd.DataFrame, papers: pd.DataFrame) -> str:
    """One sentence: how many notebooks, and how many corpus papers they reproduce."""
    links = registry_papers(registry, papers)
    runnable = links[(links["relation"] == "reproduces") & links["matched"].astype(bool)]["paper_id"].nunique()
    return (f"{len(registry)} notebooks; {runnable} of the {len(papers)} corpus papers have a runnable "
            f"toy reproduction.")
