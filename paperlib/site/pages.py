"""The site's pages beyond the notebooks: one page per paper (`papers/<paper_id>.html`), the list of
all papers (`papers/index.html`), and the files every page shares, written once beside them.

A paper page shows the title, abstract, tags with their evidence, code links, numeric claims, the
nearest papers with why they are related, the methods the abstract names, the lineage in and out
(papers whose method it names, papers that name its method) and the notebooks that reproduce or
relate to it. Paper pages carry no script; they share one stylesheet (`paperlib.css`). Every
corpus string goes through `html.escape`, and only http(s) links become links.
"""
from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from paperlib.corpus.sessions import RELATION_VERBS
from paperlib.corpus.tagging import as_list
from paperlib.site.reading import claim_value

PAPERS_DIR = "papers"
STYLESHEET = "paperlib.css"
EXPLORER_JS = "paperlib-explorer.js"
ITABLES_JS = "itables-offline.js"
FACETS = ("theme", "kind", "domain")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_HTTP = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)
_esc = html.escape


def paper_page_name(paper_id: str) -> str:
    """The file name of a paper's page (paper ids are slugs; anything else is replaced)."""
    name = _UNSAFE_NAME.sub("_", str(paper_id)).lstrip(".") or "paper"
    return f"{name}.html"


def paper_href(paper_id: str, *, prefix: str = PAPERS_DIR + "/") -> str:
    """The link to a paper's page from the site's root folder (`prefix=""` from `papers/` itself)."""
    return prefix + paper_page_name(paper_id)


# ---------------------------------------------------------------- shared files

def _static(name: str) -> str:
    return resources.files("paperlib.site").joinpath("static", name).read_text(encoding="utf-8")


def itables_offline_js() -> str:
    """itables' offline loader (DataTables and its stylesheet, inlined) as a classic script: the
    script of `init_notebook_mode(connected=False)`, kept in one file instead of in every page."""
    from itables.javascript import generate_init_offline_itables_html
    from itables.options import dt_bundle

    block = generate_init_offline_itables_html(dt_bundle)
    scripts = re.findall(r"<script>(.*?)</script>", block, flags=re.DOTALL)
    if len(scripts) != 1:
        raise RuntimeError("unexpected itables offline loader: expected one <script> block; "
                           "check the installed itables version")
    return scripts[0].strip() + "\n"


def _write_if_changed(target: Path, text: str) -> Path:
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def write_assets(site_dir: str | Path, *, explorer: bool = True) -> list[Path]:
    """Write the stylesheet and, with `explorer`, the explorer's script and itables' offline loader
    into the site folder (rewritten only when they changed)."""
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    written = [_write_if_changed(site_dir / STYLESHEET, _static("paperlib.css"))]
    if explorer:
        written.append(_write_if_changed(site_dir / EXPLORER_JS, _static("explorer.js")))
        written.append(_write_if_changed(site_dir / ITABLES_JS, itables_offline_js()))
    return written


# ---------------------------------------------------------------- one page per paper

def _mapping(value) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return {}


def _relation(edge) -> str:
    """How a lineage edge's later paper relates to the method ("names" when nothing more is known)."""
    return RELATION_VERBS.get(str(getattr(edge, "relation", "") or ""), "names")


def _papers(n: int) -> str:
    return f"{n} paper" if n == 1 else f"{n} papers"


def _link(href: str, text: str) -> str:
    return f'<a href="{_esc(href, quote=True)}">{_esc(text)}</a>'


def _external(url: str) -> str:
    if _HTTP.match(url):
        return f'<a href="{_esc(url, quote=True)}" rel="noopener noreferrer">{_esc(url)}</a>'
    return _esc(url)


def _page(title: str, body: list[str], *, css: str) -> str:
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{_esc(title)}</title>", f'<link rel="stylesheet" href="{_esc(css, quote=True)}">',
                      '</head><body><main class="paperlib-page">', *body, "</main></body></html>"]) + "\n"


class PaperPages:
    """Everything the paper pages need, indexed once: `tables` as `build.corpus_tables` returns them
    (papers with tags, evidence and methods; neighbours; claims; lineage), `links` the registry's
    link table (notebook, relation, paper_id, title, matched), `notebook_pages` notebook file name
    -> page file name for the notebooks that have a page, `explorer` the explorer page's name."""

    def __init__(self, tables: dict[str, pd.DataFrame], links: pd.DataFrame | None = None,
                 notebook_pages: dict[str, str] | None = None, explorer: str | None = None):
        self.papers = tables["papers"].reset_index(drop=True)
        self.titles = dict(zip(self.papers["paper_id"], self.papers["title"].astype(str)))
        empty = pd.DataFrame(columns=["paper_id"])
        self.neighbours = self._by_paper(tables.get("neighbours", empty))
        self.claims = self._by_paper(tables.get("claims", empty))
        lineage = tables.get("lineage", pd.DataFrame(columns=["source", "target", "method"]))
        self.lineage_out = {k: g for k, g in lineage.groupby("source")} if len(lineage) else {}
        self.lineage_in = {k: g for k, g in lineage.groupby("target")} if len(lineage) else {}
        mentions = tables.get("mentions")
        self.mentions = {}
        if mentions is not None and len(mentions) and {"paper_id", "name"} <= set(mentions.columns):
            self.mentions = {k: g.drop_duplicates("name") for k, g in mentions.groupby("paper_id", sort=False)}
            names = [list(g["name"]) for g in self.mentions.values()]
        else:
            names = [as_list(ms) for ms in self.papers.get("methods", pd.Series([[]] * len(self.papers)))]
        counts: dict[str, int] = {}
        for ms in names:
            for m in dict.fromkeys(ms):
                counts[m] = counts.get(m, 0) + 1
        self.method_counts = counts
        links = links if links is not None else pd.DataFrame(columns=["notebook", "relation", "paper_id", "matched"])
        links = links[links["matched"].astype(bool)] if len(links) else links
        self.notebooks = {k: g for k, g in links.groupby("paper_id")} if len(links) else {}
        self.notebook_pages = notebook_pages or {}
        self.explorer = explorer

    @staticmethod
    def _by_paper(df: pd.DataFrame) -> dict:
        return {k: g for k, g in df.groupby("paper_id", sort=False)} if len(df) else {}

    def _paper_link(self, paper_id: str, title: str | None = None) -> str:
        title = title if title is not None else self.titles.get(paper_id, paper_id)
        if paper_id in self.titles:
            return _link(paper_href(paper_id, prefix=""), title)
        return _esc(title)

    def _nav(self) -> str:
        items = [_link("../index.html", "paperlib"), _link("index.html", "all papers")]
        if self.explorer:
            items.append(_link(f"../{self.explorer}", "explorer"))
        return f'<nav>{" · ".join(items)}</nav>'

    def page(self, rec: dict) -> str:
        """The HTML of one paper's page."""
        pid = rec["paper_id"]
        body = [self._nav(), f"<h1>{_esc(str(rec['title']))}</h1>"]
        meta = [_esc(str(rec.get("kind") or ""))] + [_esc(t) for f in ("theme", "domain") for t in as_list(rec.get(f))]
        acronym = rec.get("acronym")
        if isinstance(acronym, str) and acronym:
            meta.append(f"introduces {_esc(acronym)}")
        body.append(f'<p class="meta">{" · ".join(m for m in meta if m)}</p>')
        body += ['<section class="abstract"><h2>Abstract</h2>', f"<p>{_esc(str(rec['abstract']))}</p></section>"]
        body.append(self._tags(rec))
        code = as_list(rec.get("code_urls"))
        if code:
            items = "".join(f"<li>{_external(u)}</li>" for u in code)
            body.append(f'<section class="code"><h2>Code</h2><ul>{items}</ul></section>')
        body.append(self._claims(pid))
        body.append(self._neighbours(pid))
        body.append(self._methods(rec))
        body.append(self._notebooks(pid))
        return _page(f"{rec['title']} · paperlib", [b for b in body if b], css=f"../{STYLESHEET}")

    def _tags(self, rec: dict) -> str:
        evidence, scores = _mapping(rec.get("evidence")), _mapping(rec.get("scores"))
        rows = []
        for facet in FACETS:
            for tag in as_list(rec.get(facet)):
                score = scores.get(tag)
                phrases = ", ".join(map(str, evidence.get(tag, []))) or "default tag of the facet (no phrase)"
                rows.append(f"<tr><td>{_esc(facet)}</td><td>{_esc(tag)}</td>"
                            f"<td>{'' if score is None else _esc(f'{float(score):.1f}')}</td>"
                            f'<td class="why">{_esc(phrases)}</td></tr>')
        if not rows:
            return ""
        return ('<section class="tags"><h2>Tags and their evidence</h2><table><tr><th>facet</th><th>tag</th>'
                f'<th>score</th><th>phrases that led to it</th></tr>{"".join(rows)}</table></section>')

    def _claims(self, pid: str) -> str:
        mine = self.claims.get(pid)
        if mine is None or not len(mine):
            return ""
        by_sentence: dict[str, list[str]] = {}
        for c in mine.itertuples():
            by_sentence.setdefault(str(c.sentence), []).append(
                f"<b>{_esc(claim_value(c.value, c.unit))}</b> {_esc(str(c.context))}")
        items = "".join(f'<li>{" · ".join(values)}<br><span class="why">{_esc(sentence)}</span></li>'
                        for sentence, values in by_sentence.items())
        return f'<section class="claims"><h2>Numeric claims</h2><ul>{items}</ul></section>'

    def _neighbours(self, pid: str) -> str:
        mine = self.neighbours.get(pid)
        if mine is None or not len(mine):
            return ""
        items = "".join(f"<li>{self._paper_link(r.neighbour_id, str(r.neighbour_title))}"
                        f'<br><span class="why">{_esc(str(r.why))}</span></li>'
                        for r in mine.sort_values("rank").itertuples())
        return (f'<section class="related"><h2>The {len(mine)} nearest papers</h2>'
                f'<ol class="neighbours">{items}</ol></section>')

    def _named(self, rec: dict) -> list[str]:
        """The names the paper's abstract uses, each with its type and relation when known."""
        typed = self.mentions.get(rec["paper_id"])
        if typed is None:
            return [f"{_esc(m)} <span class=\"why\">({_papers(self.method_counts.get(m, 1))})</span>"
                    for m in as_list(rec.get("methods"))]
        out = []
        for r in typed.to_dict("records"):
            about = [str(r[k]) for k in ("type", "relation") if isinstance(r.get(k), str) and r[k]
                     and r[k] not in ("unknown", "mentions")]
            about.append(_papers(self.method_counts.get(r["name"], 1)))
            out.append(f"{_esc(str(r['name']))} <span class=\"why\">({_esc(', '.join(about))})</span>")
        return out

    def _methods(self, rec: dict) -> str:
        pid = rec["paper_id"]
        parts = []
        names = self._named(rec)
        if names:
            parts.append(f"<p>Named in the abstract: {', '.join(names)}</p>")
        builds_on = self.lineage_in.get(pid)
        if builds_on is not None:
            items = "".join(f"<li>{self._paper_link(r.source)} <span class=\"why\">(it {_relation(r)} "
                            f"{_esc(str(r.method))})</span></li>" for r in builds_on.itertuples())
            parts.append(f'<p>Builds on (names their method):</p><ul class="lineage-in">{items}</ul>')
        built_on = self.lineage_out.get(pid)
        if built_on is not None:
            items = "".join(f"<li>{self._paper_link(r.target)} <span class=\"why\">({_relation(r)} "
                            f"{_esc(str(r.method))})</span></li>" for r in built_on.itertuples())
            parts.append(f'<p>Papers that name its method:</p><ul class="lineage-out">{items}</ul>')
        if not parts:
            return ""
        return '<section class="methods"><h2>Methods and lineage</h2>' + "".join(parts) + "</section>"

    def _notebooks(self, pid: str) -> str:
        mine = self.notebooks.get(pid)
        if mine is None:
            return ""
        items = []
        for rec in mine.itertuples():
            label = "reproduces it" if rec.relation == "reproduces" else "relates to it"
            page = self.notebook_pages.get(rec.notebook)
            name = _link(f"../{page}", rec.notebook) if page else _esc(rec.notebook)
            items.append(f"<li>{name} <span class=\"why\">({label})</span></li>")
        return f'<section class="notebooks"><h2>Notebooks</h2><ul>{"".join(items)}</ul></section>'

    def index(self) -> str:
        """`papers/index.html`: every paper, by title, with its kind and themes."""
        rows = sorted(self.papers.to_dict("records"), key=lambda r: str(r["title"]).casefold())
        items = "".join(f"<tr><td>{self._paper_link(r['paper_id'], str(r['title']))}</td>"
                        f"<td>{_esc(str(r.get('kind') or ''))}</td>"
                        f"<td>{_esc(', '.join(as_list(r.get('theme'))))}</td></tr>" for r in rows)
        body = [f'<nav>{_link("../index.html", "paperlib")}'
                + (f' · {_link(f"../{self.explorer}", "explorer")}' if self.explorer else "") + "</nav>",
                f"<h1>All papers ({len(rows)})</h1>",
                f"<table><tr><th>title</th><th>kind</th><th>theme</th></tr>{items}</table>"]
        return _page("All papers · paperlib", body, css=f"../{STYLESHEET}")

    def write(self, site_dir: str | Path) -> dict[str, int]:
        """Write every paper's page and the list into `<site_dir>/papers/`; pages of papers no longer
        in the corpus are removed. Returns file name -> bytes."""
        folder = Path(site_dir) / PAPERS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        sizes = {}
        for rec in self.papers.to_dict("records"):
            name = paper_page_name(rec["paper_id"])
            sizes[name] = len(_write_if_changed(folder / name, self.page(rec)).read_bytes())
        sizes["index.html"] = len(_write_if_changed(folder / "index.html", self.index()).read_bytes())
        for old in folder.glob("*.html"):
            if old.name not in sizes:
                old.unlink()
        return sizes


def write_paper_pages(site_dir: str | Path, tables: dict[str, pd.DataFrame], links: pd.DataFrame | None = None,
                      *, notebook_pages: dict[str, str] | None = None, explorer: str | None = None) -> dict[str, int]:
    """Write `papers/<paper_id>.html` for every paper of `tables` and `papers/index.html`; returns sizes."""
    return PaperPages(tables, links, notebook_pages, explorer).write(site_dir)
