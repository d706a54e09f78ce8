"""Executed notebooks to a static HTML site that works from disk with no network.

Plotly figures travel in the executed notebooks as their JSON mimetype; here each becomes a
`<div>` plus a `Plotly.newPlot` call, and plotly.js is written once per site next to the pages
(`plotly.min.js`) instead of once per figure, so pages stay small. The explorer's data becomes the
offline explorer (`explorer_page`); other widgets become a note. Nothing is loaded from a CDN
(no require.js, MathJax or widget manager). Corpus text reaching HTML goes through `html.escape`.
Notebook pages and the index link the corpus papers they name to their pages (`pages`).

Two editions: the teacher's folds each exercise's solution cells (tagged `solution`) into a
`<details>` block a student opens on purpose; the student's drops them (nbconvert's
`TagRemovePreprocessor`). `export_slides` writes the same notebook as reveal.js slides that load
reveal.js from files beside the page (`write_reveal_assets`).
"""
from __future__ import annotations

import copy
import html
from pathlib import Path

import jinja2
import nbformat
import pandas as pd

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_JS = "plotly.min.js"
EDITIONS = ("teacher", "student")
SOLUTION_TAG = "solution"
REVEAL_DIR = "reveal.js"
SLIDES_SUFFIX = ".slides.html"
NOTEBOOKS_DIR = "notebooks"  # the notebooks themselves, beside the pages, to open in JupyterLab
# reveal.js files the slides load, relative to the reveal.js package folder
REVEAL_FILES = ("LICENSE", "dist/reset.css", "dist/reveal.css", "dist/reveal.js", "dist/theme/white.css",
                "dist/plugin/notes.js")

# Solution cells (consecutive cells tagged `solution`) folded into one <details> block; a block
# that extends a template whose any_cell already wraps cells keeps that wrapping inside.
_FOLD_SOLUTIONS = """
{%- block any_cell scoped -%}
{%- set tags = cell.metadata.get('tags', []) -%}
{%- set solution = 'solution' in tags -%}
{%- set opens = solution and not (loop.previtem is defined and 'solution' in loop.previtem.metadata.get('tags', [])) -%}
{%- set closes = solution and not (loop.nextitem is defined and 'solution' in loop.nextitem.metadata.get('tags', [])) -%}
{%- if opens -%}<details class="paperlib-solution"><summary>Solution (open when you have tried it)</summary>{%- endif -%}
{{ super() }}
{%- if closes -%}</details>{%- endif -%}
{%- endblock any_cell -%}
"""

_PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
<script src="{{ resources.paperlib_plotly_src }}" charset="utf-8"></script>
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}
<nav class="paperlib-nav" style="padding: 8px 16px; font-family: sans-serif;">
<a href="index.html">&larr; paperlib notebook collection</a>{{ resources.paperlib_papers_nav }}</nav>
{%- endblock body_header -%}
{%- block html_head_css -%}
{{ super() }}
<style>details.paperlib-solution { border-left: 3px solid #7a9cc6; margin: 0.5em 0; padding: 0.2em 0.8em; }
details.paperlib-solution > summary { cursor: pointer; color: #2a5d9f; font-family: sans-serif; }</style>
{%- endblock html_head_css -%}
""" + _FOLD_SOLUTIONS

# reveal.js slides that load nothing from the network: reveal.js and plotly.js from files beside
# the page, no jQuery, require.js, MathJax or mermaid.
_SLIDES_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}
<script src="{{ resources.paperlib_plotly_src }}" charset="utf-8"></script>
{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<style>details.paperlib-solution > summary { cursor: pointer; color: #2a5d9f; }
.reveal .jp-OutputArea-output pre, .reveal .jp-InputArea pre { font-size: 0.5em; }
.reveal table { font-size: 0.45em; } .reveal .slides { text-align: left; }
.reveal .slides section { height: 100%; overflow-y: auto; }</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/dist/plugin/notes.js"></script>
<script>
Reveal.initialize({controls: true, progress: true, history: true, transition: "slide", slideNumber: "c/t",
                   width: 1100, height: 760, plugins: [RevealNotes]});
Reveal.on('slidechanged', function () { window.dispatchEvent(new Event('resize')); });
</script>
{% endblock footer_js %}
""" + _FOLD_SOLUTIONS


_WIDGET_NOTE = (
    '<div class="paperlib-widget-note" style="color:#666;font-style:italic">'
    "Interactive widget: open this notebook in JupyterLab to use it.</div>"
)


def _plotly_html(fig: dict) -> str:
    # plotly's JSON encoder escapes '<', '>' and '&', so text in a figure cannot close the script tag.
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False,
                       config={"responsive": True})


def static_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook ready for static HTML: plotly JSON to HTML, the explorer's
    data to the offline explorer, other widgets to a note."""
    from paperlib.site.explorer_page import EXPLORER_MIME, explorer_html

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    explorers = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            if PLOTLY_MIME in data:
                output["data"] = {"text/html": _plotly_html(data[PLOTLY_MIME])}
            elif EXPLORER_MIME in data:
                explorers += 1
                output["data"] = {"text/html": explorer_html(data[EXPLORER_MIME],
                                                             element_id=f"paperlib-explorer-{explorers}")}
            elif WIDGET_MIME in data:
                output["data"] = {"text/html": _WIDGET_NOTE}
    return nb


def write_plotly_js(site_dir: str | Path) -> Path:
    """Write plotly.js (the version the figures were made with) once into the site folder."""
    from plotly.offline import get_plotlyjs

    target = Path(site_dir) / PLOTLY_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    js = get_plotlyjs()
    if not target.exists() or target.stat().st_size != len(js.encode("utf-8")):
        target.write_text(js, encoding="utf-8")
    return target


def papers_nav(meta: dict, paper_ids=None) -> str:
    """The notebook page's links to the pages of the corpus papers its registry record names
    (those in `paper_ids`, the papers that have a page; none when not given), escaped."""
    from paperlib.corpus.reader import paper_id
    from paperlib.site.pages import paper_href

    if not paper_ids:
        return ""
    parts = []
    for key, label in (("reproduces", "reproduces"), ("related", "related papers")):
        titles = [t for t in meta.get(key) or [] if isinstance(t, str)]
        links = [f'<a href="{html.escape(paper_href(paper_id(t)), quote=True)}">{html.escape(t)}</a>'
                 for t in titles if paper_id(t) in paper_ids]
        if links:
            parts.append(f"{label}: " + " · ".join(links))
    return "".join(f' <span class="paperlib-papers">&middot; {p}</span>' for p in parts)


def _check_edition(edition: str) -> None:
    if edition not in EDITIONS:
        raise ValueError(f"unknown edition {edition!r}: expected one of {', '.join(EDITIONS)}")


def _edition_preprocessors(edition: str) -> list:
    """The student edition drops every cell tagged `solution`, outputs and all."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    _check_edition(edition)
    if edition == "teacher":
        return []
    return [TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG}, enabled=True)]


def _export(exporter, raw: nbformat.NotebookNode, stem: str, target: str | Path, resources: dict) -> int:
    nb = static_notebook(raw)
    nb.metadata["title"] = nb.metadata.get("paperlib", {}).get("title") or stem
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return _write(target, body)


def _write(target: str | Path, text: str) -> int:
    """Write a site file (folders made as needed); returns its size in bytes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target.stat().st_size


def export_page(executed: str | Path, html_path: str | Path, *, plotly_src: str = PLOTLY_JS,
                paper_ids=None, edition: str = "teacher") -> int:
    """Export one executed notebook to an HTML page; returns the page size in bytes. `paper_ids`:
    the papers that have a page, which the navigation links when the notebook names them;
    `edition`: "teacher" (solutions folded) or "student" (solutions left out)."""
    from nbconvert import HTMLExporter

    raw = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"paperlib_page.html.j2": _PAGE_TEMPLATE})],
        template_file="paperlib_page.html.j2",
        preprocessors=_edition_preprocessors(edition),
    )
    nav = papers_nav(raw.metadata.get("paperlib", {}), paper_ids)
    return _export(exporter, raw, Path(executed).stem, html_path,
                   {"paperlib_plotly_src": plotly_src, "paperlib_papers_nav": nav})


def export_notebook(source: str | Path, target: str | Path, *, edition: str = "teacher") -> int:
    """Write a collection notebook (as stored: no outputs) for readers to download; the student
    edition without its solution cells. Returns the size in bytes."""
    from nbconvert import NotebookExporter

    exporter = NotebookExporter(preprocessors=_edition_preprocessors(edition))
    body, _ = exporter.from_notebook_node(nbformat.read(str(source), as_version=4))
    return _write(target, body)


def slides_name(notebook_stem: str) -> str:
    """The file name of a notebook's slides, beside its page."""
    return notebook_stem + SLIDES_SUFFIX


def export_slides(executed: str | Path, html_path: str | Path, *, plotly_src: str = PLOTLY_JS,
                  reveal_prefix: str = REVEAL_DIR, edition: str = "teacher") -> int:
    """Export one executed notebook as reveal.js slides (breaks from the cells' `slideshow`
    metadata) that load reveal.js from `reveal_prefix` beside the page; returns the size in bytes."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        extra_loaders=[jinja2.DictLoader({"paperlib_slides.html.j2": _SLIDES_TEMPLATE})],
        template_file="paperlib_slides.html.j2",
        reveal_url_prefix=reveal_prefix,
        reveal_theme="white",
        preprocessors=_edition_preprocessors(edition),
    )
    return _export(exporter, nbformat.read(str(executed), as_version=4), Path(executed).stem, html_path,
                   {"paperlib_plotly_src": plotly_src})


def reveal_source() -> Path:
    """The reveal.js folder of the installed `pyreveal` package, which carries reveal.js's files."""
    import importlib.util

    spec = importlib.util.find_spec("pyreveal")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("slides need reveal.js, which comes with the package pyreveal: "
                                  "pip install 'paperlib[notebooks]'")
    root = Path(list(spec.submodule_search_locations)[0]) / "revealjs"
    missing = [f for f in REVEAL_FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: reveal.js files missing: {', '.join(missing)}")
    return root


def write_reveal_assets(site_dir: str | Path) -> list[Path]:
    """Copy the reveal.js files the slides load into `<site_dir>/reveal.js/` (once; rewritten when changed)."""
    import shutil

    root, out = reveal_source(), Path(site_dir) / REVEAL_DIR
    written = []
    for name in REVEAL_FILES:
        target = out / name
        if not target.is_file() or target.stat().st_size != (root / name).stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, target)
        written.append(target)
    return written


_INDEX_CSS = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .summary { color: #444; } .status-failed { color: #b00020; font-weight: bold; }
section.notebook { border-top: 1px solid #ddd; padding: 0.6em 0; } .meta { color: #666; font-size: 0.9em; }
ul.papers { margin: 0.3em 0 0.3em 1.2em; padding: 0; } ul.papers li { margin: 0.1em 0; }
"""


def index_html(pages: pd.DataFrame, links: pd.DataFrame, *, corpus_name: str = "", paper_ids=None,
               explorer: str | None = None, edition: str = "teacher") -> str:
    """The site's index page as HTML.

    `pages`: notebook, title, summary, html (relative link or ""), status, page_bytes;
    `links`: the registry link table (notebook, relation, paper_id, title, matched);
    `paper_ids`: the papers that have a page (their titles become links, and the index links the
    list of all papers); `explorer`: the explorer page, linked at the top; `edition`: "teacher"
    or "student", said under the title; a `slides` column (relative link or "") links the slides.
    Every corpus-derived string is escaped.
    """
    from paperlib.site.pages import PAPERS_DIR, paper_href

    esc = html.escape
    paper_ids = set(paper_ids or ())

    def paper(pid: str, title: str) -> str:
        if pid in paper_ids:
            return f'<a href="{esc(paper_href(pid), quote=True)}">{esc(title)}</a>'
        return esc(title)

    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>paperlib: notebooks on how models are trained</title>",
        f"<style>{_INDEX_CSS}</style></head><body>",
        "<h1>paperlib notebook collection</h1>",
        '<p class="summary">Notebooks on how models are trained: a tour of the paper corpus, '
        "a method map, an explorer and small reproductions of the papers' experiments.</p>",
    ]
    _check_edition(edition)
    parts.append('<p class="meta edition">' + (
        "Teacher's edition: each exercise's solution is folded under it; open it on purpose."
        if edition == "teacher" else "Student edition: the exercises without their solutions.") + "</p>")
    if corpus_name:
        parts.append(f'<p class="meta">Corpus: {esc(corpus_name)}</p>')
    browse = []
    if explorer:
        browse.append(f'<a href="{esc(explorer, quote=True)}">Explorer</a>: search, filter and map the corpus, '
                      "take a reading list away")
    if paper_ids:
        browse.append(f'<a href="{PAPERS_DIR}/index.html">All {len(paper_ids)} papers</a>, one page each')
    if browse:
        parts.append('<p class="browse">' + " &middot; ".join(browse) + "</p>")
    for rec in pages.itertuples(index=False):
        status_cls = "status-ok" if rec.status == "ok" else "status-failed"
        heading = esc(rec.title)
        if rec.html:
            heading = f'<a href="{esc(rec.html, quote=True)}">{heading}</a>'
        size = f"{rec.page_bytes / 1024:.0f} KiB" if rec.page_bytes else "no page"
        deck = getattr(rec, "slides", "")
        deck = f' &middot; <a class="slides" href="{esc(deck, quote=True)}">slides</a>' if isinstance(deck, str) and deck else ""
        source = getattr(rec, "ipynb", "")
        if isinstance(source, str) and source:
            deck += f' &middot; <a class="ipynb" href="{esc(source, quote=True)}" download>notebook</a>'
        parts += [
            '<section class="notebook">',
            f"<h2>{heading}</h2>",
            f'<p class="summary">{esc(rec.summary)}</p>',
            f'<p class="meta">{esc(rec.notebook)} &middot; <span class="{status_cls}">'
            f"{esc(rec.status)}</span> &middot; {size}{deck}</p>",
        ]
        provenance = getattr(rec, "provenance", "")
        if isinstance(provenance, str) and provenance:
            parts.append(f'<p class="meta provenance">Numbers: {esc(provenance)}</p>')
        for relation, label in (("reproduces", "Reproduces"), ("related", "Related papers")):
            mine = links[(links["notebook"] == rec.notebook) & (links["relation"] == relation)]
            if len(mine):
                items = "".join(f"<li>{paper(pid, t)}</li>" for pid, t in zip(mine["paper_id"], mine["title"]))
                parts.append(f'<p class="meta">{label} ({len(mine)}):</p><ul class="papers {relation}">{items}</ul>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_index(site_dir: str | Path, pages: pd.DataFrame, links: pd.DataFrame, *, corpus_name: str = "",
                paper_ids=None, explorer: str | None = None, edition: str = "teacher") -> Path:
    """Write `index.html` into the site folder."""
    target = Path(site_dir) / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(index_html(pages, links, corpus_name=corpus_name, paper_ids=paper_ids, explorer=explorer,
                                 edition=edition), encoding="utf-8")
    return target
