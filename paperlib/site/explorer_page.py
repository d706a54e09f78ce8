"""The explorer as a static page: search, facet filters, a sortable table and the map, with no
kernel, no server and no network.

In a notebook, `Explorer` (the widgets) also carries its papers and map coordinates as data in the
mimetype `EXPLORER_MIME` (`explorer_payload`). JupyterLab shows the widgets and ignores that data;
the site export (`html.static_notebook`) turns it into `explorer_html`: an itables (DataTables)
table in its offline mode, a plotly map, the controls, and the papers as JSON for the small
script `paperlib-explorer.js` that ties them together. itables' DataTables bundle, that script and
the stylesheet are files beside the pages (`pages.write_assets`), like plotly.js.

Corpus text is escaped here, once: table cells and option labels with `html.escape`, hover labels
by `figures.paper_hover`, and the JSON block with `<`, `>` and `&` as unicode escapes.
"""
from __future__ import annotations

import html
import json
import math
import re

import pandas as pd

from paperlib.corpus.bibtex import bibtex_comment, bibtex_key
from paperlib.corpus.figures import first_sentence, paper_hover
from paperlib.corpus.tagging import as_list
from paperlib.site.pages import EXPLORER_JS, ITABLES_JS, STYLESHEET, paper_href
from paperlib.site.reading import FACETS as READING_FACETS
from paperlib.site.reading import MEDIA_TYPES, bibtex_comment_text, markdown_header

EXPLORER_MIME = "application/vnd.paperlib.explorer+json"
FACETS = ("theme", "kind", "domain")
_esc = html.escape


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def explorer_payload(table: pd.DataFrame, coords: pd.DataFrame | None = None, *, facets=FACETS,
                     heading: str = "Reading list") -> dict:
    """The explorer's papers as JSON-ready data: per paper its id, title, abstract, summary, code
    links, runnable notebooks, facet values and map position (x, y; None when off the map).

    `table` is an `explorer.explorer_table`; `coords` has paper_id, x, y (`relate.paper_map`).
    """
    xy = {}
    if coords is not None and len(coords):
        xy = {pid: (_number(x), _number(y)) for pid, x, y in zip(coords["paper_id"], coords["x"], coords["y"])}
    facets = [f for f in facets if f in table.columns]
    rows = []
    for rec in table.to_dict("records"):
        x, y = xy.get(rec["paper_id"], (None, None))
        rows.append({
            "paper_id": str(rec["paper_id"]), "title": str(rec["title"]), "abstract": str(rec["abstract"]),
            "summary": str(rec.get("summary") or first_sentence(rec["abstract"])),
            "code_urls": as_list(rec.get("code_urls")), "runnable": as_list(rec.get("runnable")),
            "facets": {f: as_list(rec.get(f)) for f in facets}, "x": x, "y": y,
        })
    return {"version": 1, "heading": heading, "facets": facets, "papers": rows}


def _json_script(value) -> str:
    """JSON for a `<script type="application/json">` block: nothing in it can end the block."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _paper_records(payload: dict) -> list[dict]:
    """The payload's papers as flat records, the shape `reading` and `figures` functions read."""
    out = []
    for p in payload["papers"]:
        rec = {k: v for k, v in p.items() if k != "facets"}
        rec.update(p["facets"])
        out.append(rec)
    return out


def _map_figure(records: list[dict], element_id: str):
    import plotly.graph_objects as go

    on_map = [(i, r) for i, r in enumerate(records) if r["x"] is not None and r["y"] is not None]
    frame = pd.DataFrame([r for _, r in on_map], columns=["title", "abstract", *FACETS])
    hover = paper_hover(frame) if len(frame) else []
    fig = go.Figure([
        go.Scatter(x=[r["x"] for _, r in on_map], y=[r["y"] for _, r in on_map], mode="markers",
                   name="all papers", text=hover, customdata=[i for i, _ in on_map],
                   hovertemplate="%{text}<extra></extra>", marker=dict(size=6, color="#c8c8c8")),
        go.Scatter(x=[], y=[], mode="markers", name="matching papers", text=[], customdata=[],
                   hovertemplate="%{text}<extra></extra>", marker=dict(size=9, color="#d62728")),
    ])
    fig.update_layout(height=460, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      margin=dict(l=10, r=10, t=40, b=10), hoverlabel=dict(align="left"),
                      title="The matching papers on the map (click a point to open its page)",
                      legend=dict(orientation="h", y=-0.02))
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=f"{element_id}-map",
                       config={"responsive": True}, validate=False)


def _table_html(records: list[dict], table_id: str) -> tuple[str, str]:
    """(itables HTML, name of the global promise of its DataTables bundle)."""
    import itables

    view = pd.DataFrame({
        "title": [f'<a href="{_esc(paper_href(r["paper_id"]), quote=True)}">{_esc(r["title"])}</a>' for r in records],
        "theme": [_esc(", ".join(r.get("theme", []))) for r in records],
        "kind": [_esc(", ".join(as_list(r.get("kind")))) for r in records],
        "domain": [_esc(", ".join(r.get("domain", []))) for r in records],
        "code": ["yes" if r["code_urls"] else "" for r in records],
        "notebook": [_esc(", ".join(r["runnable"])) for r in records],
    })
    markup = itables.to_html_datatable(
        view, table_id=table_id, connected=False, allow_html=True, maxBytes=0, showIndex=False,
        display_logo_when_loading=False, pageLength=25, lengthMenu=[10, 25, 50, 100, 500], order=[],
        layout={"topEnd": None}, classes="display compact", style="width:100%;margin:0")
    found = set(re.findall(r"await window\.(_itables_[A-Za-z0-9_]+)", markup))
    if len(found) != 1:
        raise RuntimeError("unexpected itables markup: cannot find its offline bundle; check the itables version")
    return markup, found.pop()


def explorer_html(payload: dict, *, element_id: str = "paperlib-explorer") -> str:
    """The offline explorer for a page in the site's root folder (scripts and stylesheet beside it)."""
    records = _paper_records(payload)
    heading = str(payload.get("heading") or "Reading list")
    facets = list(payload.get("facets", FACETS))
    table, bundle = _table_html(records, f"{element_id}-table")
    controls = [f'<div><label for="{element_id}-search">Search titles and abstracts</label>'
                f'<input type="search" id="{element_id}-search" class="pe-search" placeholder="all words must appear">'
                "</div>"]
    for facet in facets:
        counts: dict[str, int] = {}
        for r in records:
            for v in as_list(r.get(facet)):
                counts[v] = counts.get(v, 0) + 1
        options = "".join(f'<option value="{_esc(v, quote=True)}">{_esc(v)} ({n})</option>'
                          for v, n in sorted(counts.items()))
        control_id = _esc(f"{element_id}-{facet}", quote=True)
        controls.append(f'<div><label for="{control_id}">{_esc(facet)}</label>'
                        f'<select multiple size="6" id="{control_id}" class="pe-facet" '
                        f'data-facet="{_esc(facet, quote=True)}">{options}</select></div>')
    controls.append('<div><label><input type="checkbox" class="pe-has-code"> has code</label>'
                    '<label><input type="checkbox" class="pe-runnable"> has a notebook</label>'
                    '<button type="button" class="pe-clear">Clear</button></div>')
    # Headers around the number of papers, so the script writes what `reading.reading_list` writes.
    md_head = markdown_header(heading, "\x00").split("\x00")
    bib_head = (bibtex_comment(bibtex_comment_text(heading, "\x00")) + "\n").split("\x00")
    data = {
        "rows": [{"href": paper_href(r["paper_id"]), "key": bibtex_key(r["paper_id"]), "title": r["title"],
                  "abstract": r["abstract"], "summary": r["summary"], "facets": {f: as_list(r.get(f)) for f in facets},
                  "code_urls": r["code_urls"], "runnable": r["runnable"]} for r in records],
        # what the script needs to write the reading lists `reading.reading_list` writes
        "tagFacets": [f for f in READING_FACETS if f in facets],
        "headers": {"md": md_head, "bib": bib_head},
        "types": {"md": MEDIA_TYPES["md"], "bib": MEDIA_TYPES["bib"]},
    }
    return "\n".join([
        f'<link rel="stylesheet" href="{STYLESHEET}">',
        f'<div class="paperlib-explorer" id="{element_id}" data-table="{element_id}-table" data-itables="{bundle}">',
        f'<div class="pe-controls">{"".join(controls)}</div>',
        f'<p class="pe-count" aria-live="polite">{len(records)} papers</p>',
        f'<div class="pe-map">{_map_figure(records, element_id)}</div>',
        '<p class="pe-hover">Paper under the pointer: <a href="#"></a></p>',
        table,
        '<p class="pe-export">Reading list of the matching papers: '
        '<button type="button" data-format="md">Markdown</button>'
        '<button type="button" data-format="bib">BibTeX</button></p>',
        f'<script type="application/json" class="pe-data">{_json_script(data)}</script>',
        "</div>",
        f'<script src="{ITABLES_JS}"></script>',
        f'<script src="{EXPLORER_JS}"></script>',
    ])
