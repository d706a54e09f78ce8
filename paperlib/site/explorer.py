"""The corpus explorer: search, facet and method filters, results table, map highlighting, "papers
like this" and a Markdown reading list.

The filtering, table and reading-list functions are plain functions on DataFrames (tested on
their own); `Explorer` only wires them to ipywidgets. Every corpus string shown in a widget is
escaped (`DataFrame.to_html(escape=True)` or `html.escape`).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from paperlib.corpus.figures import first_sentence, paper_hover
from paperlib.corpus.methods import method_counts
from paperlib.corpus.vocabulary import load_vocabulary, name_key
from paperlib.corpus.relate import PaperIndex, similar
from paperlib.corpus.tagging import as_list
from paperlib.site.explorer_page import EXPLORER_MIME, explorer_payload
from paperlib.site.reading import markdown_list

FACETS = ("theme", "kind", "domain")
METHODS_SHOWN = 5  # names per paper in the results table


def explorer_table(tagged: pd.DataFrame, runnable: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per paper for the explorer: the tagged corpus plus has_code and runnable
    (notebooks reproducing it, from `registry.notebooks_by_paper`) and a one-line summary."""
    table = tagged.copy()
    table["has_code"] = [bool(as_list(v)) for v in table.get("code_urls", pd.Series([[]] * len(table)))]
    if runnable is not None:
        table = table.merge(runnable[["paper_id", "runnable"]], on="paper_id", how="left")
        table["runnable"] = [as_list(v) for v in table["runnable"]]
    else:
        table["runnable"] = [[] for _ in range(len(table))]
    table["summary"] = [first_sentence(a) for a in table["abstract"]]
    return table


@dataclass(frozen=True)
class Query:
    """A search: words that must all appear (title or abstract) and facet values (any of)."""

    text: str = ""
    theme: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    has_code: bool = False  # only papers with a code link
    runnable: bool = False  # only papers with a runnable notebook
    methods: tuple[str, ...] = ()  # papers naming any of these methods (any spelling; needs a `methods` column)


def filter_papers(table: pd.DataFrame, query: Query) -> pd.DataFrame:
    """The rows of `table` matching `query`, in corpus order."""
    mask = np.ones(len(table), dtype=bool)
    words = [w for w in re.split(r"\s+", query.text.casefold().strip()) if w]
    if words:
        text = (table["title"].astype(str) + " " + table["abstract"].astype(str)).str.casefold()
        for w in words:
            mask &= text.str.contains(w, regex=False).to_numpy(dtype=bool)
    for facet in FACETS:
        wanted = set(getattr(query, facet))
        if wanted:
            mask &= np.array([bool(wanted & set(as_list(v))) for v in table[facet]], dtype=bool)
    if query.methods:
        if "methods" not in table.columns:
            raise KeyError("filtering by method needs a 'methods' column; run extract_methods on the papers first")
        vocabulary = load_vocabulary()
        terms = [vocabulary.term(m) for m in query.methods]  # any spelling: "direct preference optimization" is DPO
        wanted_keys = {name_key(m) for m in query.methods} | {name_key(t.name) for t in terms if t is not None}
        mask &= np.array([bool(wanted_keys & {name_key(m) for m in as_list(v)}) for v in table["methods"]], dtype=bool)
    if query.has_code:
        mask &= table["has_code"].to_numpy(dtype=bool)
    if query.runnable:
        mask &= np.array([bool(v) for v in table["runnable"]], dtype=bool)
    return table[mask]


def results_view(selection: pd.DataFrame, limit: int = 50) -> pd.DataFrame:
    """The columns a reader scans: title, theme, kind, domain, code, notebook (lists joined), and
    the first methods each paper names when the table has them."""
    view = pd.DataFrame({
        "title": selection["title"].astype(str),
        "theme": [", ".join(as_list(v)) for v in selection["theme"]],
        "kind": selection["kind"].astype(str),
        "domain": [", ".join(as_list(v)) for v in selection["domain"]],
        "code": ["yes" if v else "" for v in selection["has_code"]],
        "notebook": [", ".join(v) for v in selection["runnable"]],
    })
    if "methods" in selection.columns:
        view["methods"] = [", ".join(as_list(v)[:METHODS_SHOWN]) + (" …" if len(as_list(v)) > METHODS_SHOWN else "")
                           for v in selection["methods"]]
    return view.head(limit).reset_index(drop=True)


def results_html(selection: pd.DataFrame, limit: int = 50) -> str:
    """The results table as escaped HTML (corpus text stays text)."""
    more = len(selection) - limit
    table = results_view(selection, limit).to_html(index=False, escape=True, border=0, classes="paperlib-results")
    return table + (f"<p>… and {more} more</p>" if more > 0 else "")


def reading_list_markdown(selection: pd.DataFrame, *, heading: str = "Reading list") -> str:
    """The selection as Markdown: title, tags, one-line summary, code links, runnable notebook
    (`reading.reading_list` gives BibTeX, CSV, a printable handout and session plans too).

    Corpus text is HTML-escaped so a Markdown viewer shows it as text, never as markup.
    """
    return markdown_list(selection, heading=heading)


def write_reading_list(selection: pd.DataFrame, path: str | Path, *, heading: str = "Reading list") -> Path:
    """Write `reading_list_markdown(selection)` to `path` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reading_list_markdown(selection, heading=heading), encoding="utf-8")
    return path


def similar_html(neighbours: pd.DataFrame) -> str:
    """The "papers like this" panel: title, similarity and why, escaped."""
    view = pd.DataFrame({"title": neighbours["title"].astype(str),
                         "similarity": neighbours["similarity"].round(2),
                         "why related": neighbours["why"].astype(str)})
    return view.to_html(index=False, escape=True, border=0, classes="paperlib-similar")


class Explorer:
    """The ipywidgets explorer over an `explorer_table`; `.widget` is what the notebook displays.

    `coords` (paper_id, x, y) places papers on the map; `similar_fn(paper_id)` returns the
    neighbours table (paper_id, title, similarity, why), by default `relate.similar` over the
    table with a `PaperIndex` fitted on its first use; `out_dir` receives reading lists.
    """

    def __init__(self, table: pd.DataFrame, coords: pd.DataFrame, *, out_dir: str | Path,
                 similar_fn=None, k: int = 5, limit: int = 50):
        import ipywidgets as w
        import plotly.graph_objects as go

        self.table = table.reset_index(drop=True)
        self.similar_fn = similar_fn or self._similar
        self.k = k
        self._index: PaperIndex | None = None
        self.out_dir = Path(out_dir)
        self.limit = limit
        self.reading_list_path: Path | None = None

        self.search = w.Text(placeholder="search titles and abstracts", description="Search",
                             continuous_update=True, layout=w.Layout(width="420px"))
        self.facets = {}
        for facet in FACETS:
            options = sorted({t for v in self.table[facet] for t in as_list(v)})
            self.facets[facet] = w.SelectMultiple(options=options, description=facet, rows=6,
                                                  layout=w.Layout(width="260px"))
        self.methods = None
        if "methods" in self.table.columns:
            counts = method_counts(self.table)
            # Select labels are plain text in the browser, so names need no escaping there
            self.methods = w.SelectMultiple(options=[(f"{m} ({n})", m) for m, n in zip(counts["method"], counts["papers"])],
                                            description="method", rows=6, layout=w.Layout(width="260px"))
        self.has_code = w.Checkbox(description="has code", indent=False)
        self.runnable = w.Checkbox(description="runnable experiment", indent=False)
        self.count = w.HTML()
        self.results = w.HTML()
        self.pick = w.Dropdown(description="Like this", options=[], layout=w.Layout(width="640px"))
        self.like = w.HTML()
        self.save = w.Button(description="Write reading list", icon="file-text", button_style="info")
        self.saved = w.HTML()

        xy = coords.merge(self.table[["paper_id", "title", "abstract", "theme", "kind", "domain"]], on="paper_id")
        self._xy = xy.set_index("paper_id")
        hover = paper_hover(xy)
        self.figure = go.FigureWidget([
            go.Scatter(x=xy["x"], y=xy["y"], mode="markers", name="all papers", text=hover,
                       hovertemplate="%{text}<extra></extra>", marker=dict(size=6, color="#c8c8c8")),
            go.Scatter(x=[], y=[], mode="markers", name="selection", text=[],
                       hovertemplate="%{text}<extra></extra>", marker=dict(size=9, color="#d62728")),
        ])
        self.figure.update_layout(height=480, xaxis=dict(visible=False), yaxis=dict(visible=False),
                                  margin=dict(l=10, r=10, t=30, b=10), title="Selection on the map",
                                  hoverlabel=dict(align="left"))
        self._hover = dict(zip(xy["paper_id"], hover))

        controls = [self.search, self.has_code, self.runnable, *self.facets.values()]
        for control in controls + ([self.methods] if self.methods is not None else []):
            control.observe(self._refresh, names="value")
        self.pick.observe(self._show_similar, names="value")
        self.save.on_click(self._write)
        self.widget = w.VBox([
            w.HBox([self.search, self.has_code, self.runnable]),
            w.HBox(list(self.facets.values()) + ([self.methods] if self.methods is not None else [])),
            self.count, self.results, self.figure,
            self.pick, self.like, w.HBox([self.save, self.saved]),
        ])
        self._refresh()

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The widgets for JupyterLab, plus the papers and the map as data that the site's export
        turns into the offline explorer (`explorer_page`)."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        facets = (*self.facets, "methods") if self.methods is not None else tuple(self.facets)
        bundle[EXPLORER_MIME] = explorer_payload(self.table, self._xy[["x", "y"]].reset_index(), facets=facets)
        return bundle

    def query(self) -> Query:
        """The current widget state as a `Query`."""
        return Query(text=self.search.value, has_code=self.has_code.value, runnable=self.runnable.value,
                     methods=tuple(self.methods.value) if self.methods is not None else (),
                     **{f: tuple(self.facets[f].value) for f in FACETS})

    def selection(self) -> pd.DataFrame:
        """The papers matching the widgets."""
        return filter_papers(self.table, self.query())

    def _refresh(self, _change=None) -> None:
        sel = self.selection()
        self.count.value = f"<b>{len(sel)}</b> of {len(self.table)} papers match"
        self.results.value = results_html(sel, self.limit)
        ids = [p for p in sel["paper_id"] if p in self._xy.index]
        with self.figure.batch_update():
            self.figure.data[1].x = self._xy.loc[ids, "x"].tolist()
            self.figure.data[1].y = self._xy.loc[ids, "y"].tolist()
            self.figure.data[1].text = [self._hover[p] for p in ids]
        # Dropdown labels are plain text in the browser, so titles need no escaping there
        self.pick.options = [(str(t)[:110], p) for t, p in zip(sel["title"].head(self.limit), sel["paper_id"])]

    def _similar(self, paper_id: str) -> pd.DataFrame:
        if self._index is None:
            self._index = PaperIndex().fit(self.table)
        return similar(self.table, paper_id, k=self.k, index=self._index)

    def _show_similar(self, change) -> None:
        if change["new"] is None:
            self.like.value = ""
            return
        self.like.value = similar_html(self.similar_fn(change["new"]))

    def _write(self, _button=None) -> Path:
        sel = self.selection()
        stem = re.sub(r"[^a-z0-9]+", "-", self.search.value.casefold()).strip("-") or "selection"
        self.reading_list_path = write_reading_list(sel, self.out_dir / f"reading-list-{stem}.md")
        self.saved.value = f"wrote {len(sel)} papers to <code>{html.escape(str(self.reading_list_path))}</code>"
        return self.reading_list_path
