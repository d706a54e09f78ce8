"""Reading lists: a selection of papers as Markdown, BibTeX, CSV or a printable HTML handout,
in corpus order or split into sessions by `paperlib.corpus.sessions.plan_sessions`.

`reading_list(selection, format)` returns the text; `export_reading_list(selection, path)` writes
it, the format taken from the file name. A selection is any table of papers with title and
abstract (from `explorer.filter_papers`, a pandas filter or a hand-made list); tags, code links,
runnable notebooks and one-line summaries are used when present. Corpus text is text in every
format: HTML-escaped in Markdown and the handout, escaped for BibTeX (`corpus.bibtex`), quoted in CSV.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from paperlib.corpus.bibtex import bibtex_comment, bibtex_entry, to_bibtex
from paperlib.corpus.figures import first_sentence
from paperlib.corpus.sessions import plan_sessions
from paperlib.corpus.tagging import as_list

FORMATS = ("md", "bib", "csv", "html")
FACETS = ("theme", "kind", "domain")
SUFFIXES = {".md": "md", ".markdown": "md", ".bib": "bib", ".csv": "csv", ".html": "html", ".htm": "html"}
MEDIA_TYPES = {"md": "text/markdown", "bib": "application/x-bibtex", "csv": "text/csv", "html": "text/html"}
_esc = html.escape


def _summary(rec: dict) -> str:
    return rec.get("summary") or first_sentence(rec.get("abstract", ""))


def _tags(rec: dict) -> list[str]:
    return [", ".join(as_list(rec.get(f))) for f in FACETS if rec.get(f) is not None]


# ---------------------------------------------------------------- Markdown

def markdown_header(heading: str, n: int | str, sessions: int = 0) -> str:
    """The list's first lines: the heading and how many papers (and sessions)."""
    plan = f" in {sessions} sessions" if sessions else ""
    return f"# {_esc(heading)}\n\n{n} papers{plan}.\n"


def markdown_entry(rec: dict, *, level: int = 2, reason: str = "") -> str:
    """One paper as Markdown: a heading, then tags, one-line summary, code links, runnable notebooks
    (and why it sits where it does in a session plan), each escaped. Entries follow the header
    and each other directly."""
    lines = ["", f"{'#' * level} {_esc(str(rec['title']))}", "",
             f"- tags: {_esc(' | '.join(t for t in _tags(rec) if t))}",
             f"- summary: {_esc(_summary(rec))}"]
    lines += [f"- code: <{_esc(url)}>" for url in as_list(rec.get("code_urls"))]
    lines += [f"- runnable notebook: {_esc(nb)}" for nb in as_list(rec.get("runnable"))]
    if reason:
        lines.append(f"- why here: {_esc(reason)}")
    return "\n".join(lines) + "\n"


def _session_title(plan: pd.DataFrame, session: int) -> str:
    mine = plan[plan["session"] == session]
    groups = list(dict.fromkeys(mine["group"]))
    return f"Session {session}: {', '.join(groups)} ({len(mine)} paper{'' if len(mine) == 1 else 's'})"


def markdown_list(selection: pd.DataFrame, *, heading: str = "Reading list", plan: pd.DataFrame | None = None) -> str:
    """The selection as Markdown: the header, then one entry per paper (under one heading per
    session, in the plan's order, when `plan` is given). Corpus text is HTML-escaped so a Markdown
    viewer shows it as text, never as markup."""
    records = selection.to_dict("records")
    if plan is None:
        return markdown_header(heading, len(records)) + "".join(markdown_entry(r) for r in records)
    by_id = {r["paper_id"]: r for r in records}
    parts = [markdown_header(heading, len(records), plan["session"].nunique())]
    for session, rows in plan.groupby("session", sort=True):
        parts.append(f"\n## {_esc(_session_title(plan, session))}\n")
        parts += [markdown_entry(by_id[r.paper_id], level=3, reason=r.reason) for r in rows.itertuples()]
    return "".join(parts)


# ---------------------------------------------------------------- BibTeX and CSV

def bibtex_comment_text(heading: str, n: int | str) -> str:
    """The comment a BibTeX reading list starts with."""
    return f"{heading}: {n} papers"


def _bibtex(selection: pd.DataFrame, heading: str, plan: pd.DataFrame | None) -> str:
    if plan is None:
        return to_bibtex(selection, comment=bibtex_comment_text(heading, len(selection)))
    by_id = {r["paper_id"]: r for r in selection.to_dict("records")}
    parts = [bibtex_comment(bibtex_comment_text(heading, len(selection))) + "\n"]
    for session, rows in plan.groupby("session", sort=True):
        parts.append(bibtex_comment(_session_title(plan, session)))
        parts += [bibtex_entry(by_id[pid]) + "\n" for pid in rows["paper_id"]]
    return "".join(parts)


def reading_table(selection: pd.DataFrame, plan: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of the CSV export: (session, position, reason when planned,) paper_id, title, theme,
    kind, domain, summary, code_urls, notebooks, abstract; lists joined by '; '."""
    rows = []
    reasons = {} if plan is None else {r.paper_id: r for r in plan.itertuples()}
    order = selection.to_dict("records")
    if plan is not None:
        by_id = {r["paper_id"]: r for r in order}
        order = [by_id[pid] for pid in plan["paper_id"]]
    for rec in order:
        row = {}
        if plan is not None:
            placed = reasons[rec["paper_id"]]
            row.update(session=placed.session, position=placed.position)
        row.update({"paper_id": rec.get("paper_id", ""), "title": rec["title"],
                    **{f: "; ".join(as_list(rec.get(f))) for f in FACETS},
                    "summary": _summary(rec), "code_urls": "; ".join(as_list(rec.get("code_urls"))),
                    "notebooks": "; ".join(as_list(rec.get("runnable")))})
        if plan is not None:
            row["reason"] = placed.reason
        row["abstract"] = rec["abstract"]
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the printable handout

_HANDOUT_CSS = """
body { font-family: Georgia, serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #111; line-height: 1.4; }
h1 { font-size: 1.7em; margin-bottom: 0.1em; } h2.session { margin-top: 1.6em; border-bottom: 2px solid #333; }
section.paper { border-top: 1px solid #bbb; padding: 0.5em 0 0.7em; break-inside: avoid; }
section.paper h3 { margin: 0.2em 0; font-size: 1.1em; }
.meta { color: #555; font-size: 0.9em; } .tag { border: 1px solid #999; border-radius: 3px; padding: 0 0.3em;
  margin-right: 0.3em; font-size: 0.85em; } ul { margin: 0.2em 0 0.2em 1.2em; padding: 0; }
@media print { body { margin: 0; max-width: none; font-size: 11pt; } a { color: inherit; text-decoration: none; } }
"""


def related_papers(selection: pd.DataFrame, corpus: pd.DataFrame | None = None, *, k: int = 3,
                   neighbours: pd.DataFrame | None = None) -> dict[str, list[tuple[str, str]]]:
    """Per selected paper_id, up to k (title, why related) of its nearest papers in `corpus`
    (the selection when not given), from `neighbours` (a `neighbour_table`) when given."""
    if neighbours is None:
        from paperlib.corpus.relate import PaperIndex, neighbour_table

        corpus = selection if corpus is None else corpus
        if len(corpus) < 2 or k < 1:
            return {}
        try:
            index = PaperIndex(random_state=0).fit(corpus.reset_index(drop=True))
            neighbours = neighbour_table(corpus.reset_index(drop=True), k, index=index)
        except ValueError:  # too few words to relate papers
            return {}
    wanted = set(selection["paper_id"])
    mine = neighbours[neighbours["paper_id"].isin(wanted)].sort_values(["paper_id", "rank"])
    out: dict[str, list[tuple[str, str]]] = {}
    for rec in mine.itertuples():
        if len(out.setdefault(rec.paper_id, [])) < k:
            out[rec.paper_id].append((str(rec.neighbour_title), str(rec.why)))
    return out


def _handout_section(rec: dict, claims: pd.DataFrame, related: dict, reason: str) -> str:
    tags = "".join(f'<span class="tag">{_esc(t)}</span>' for f in FACETS for t in as_list(rec.get(f)))
    parts = ['<section class="paper">', f"<h3>{_esc(str(rec['title']))}</h3>"]
    if tags:
        parts.append(f'<p class="meta">{tags}</p>')
    parts.append(f"<p>{_esc(_summary(rec))}</p>")
    if reason:
        parts.append(f'<p class="meta">Why here: {_esc(reason)}</p>')
    mine = claims[claims["paper_id"] == rec.get("paper_id")] if len(claims) else claims
    if len(mine):
        items = "".join(f"<li><b>{_esc(claim_value(c.value, c.unit))}</b> {_esc(str(c.context))}</li>"
                        for c in mine.itertuples())
        parts.append(f'<p class="meta">Claims:</p><ul class="claims">{items}</ul>')
    near = related.get(rec.get("paper_id"), [])
    if near:
        items = "".join(f'<li>{_esc(t)} <span class="meta">({_esc(why)})</span></li>' for t, why in near)
        parts.append(f'<p class="meta">Related papers:</p><ul class="related">{items}</ul>')
    notebooks = as_list(rec.get("runnable"))
    if notebooks:
        parts.append(f'<p class="meta">Runnable notebook: {_esc(", ".join(notebooks))}</p>')
    code = as_list(rec.get("code_urls"))
    if code:
        parts.append(f'<p class="meta">Code: {_esc(" ".join(code))}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def claim_value(value: float, unit: str) -> str:
    """A numeric claim's value with its unit: "90%", "9.4x", "7 B"."""
    text = f"{value:g}"
    return f"{text}{unit}" if unit in ("%", "x") else f"{text} {unit}"


def handout_html(selection: pd.DataFrame, *, heading: str = "Reading list", plan: pd.DataFrame | None = None,
                 corpus: pd.DataFrame | None = None, neighbours: pd.DataFrame | None = None,
                 claims: pd.DataFrame | None = None, related: int = 3) -> str:
    """A printable, self-contained HTML page (no script, no link to load): one section per paper
    with its tags, one-line summary, numeric claims, related papers and runnable notebook; grouped
    by session when `plan` is given."""
    from paperlib.corpus.claims import extract_claims

    claims = extract_claims(selection) if claims is None else claims
    near = related_papers(selection, corpus, k=related, neighbours=neighbours) if related else {}
    records = selection.to_dict("records")
    count = f"{len(records)} papers" + (f" in {plan['session'].nunique()} sessions" if plan is not None else "")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_esc(heading)}</title>", f"<style>{_HANDOUT_CSS}</style></head><body>",
             f"<h1>{_esc(heading)}</h1>", f'<p class="meta">{count}</p>']
    if plan is None:
        parts += [_handout_section(r, claims, near, "") for r in records]
    else:
        by_id = {r["paper_id"]: r for r in records}
        for session, rows in plan.groupby("session", sort=True):
            parts.append(f'<h2 class="session">{_esc(_session_title(plan, session))}</h2>')
            parts += [_handout_section(by_id[r.paper_id], claims, near, r.reason) for r in rows.itertuples()]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- one entry point

def reading_list(selection: pd.DataFrame, format: str = "md", *, heading: str = "Reading list",
                 sessions: int | pd.DataFrame | None = None, by: str = "theme",
                 corpus: pd.DataFrame | None = None, neighbours: pd.DataFrame | None = None,
                 related: int = 3) -> str:
    """The selection as a reading list in `format`: "md" (Markdown), "bib" (BibTeX that
    `load_corpus` reads back), "csv" or "html" (a printable handout).

    `sessions`: a number of sessions (planned by `plan_sessions(selection, sessions, by=by)`) or a
    plan it returned; the papers then follow the plan, under one heading per session, each with
    why it sits there. `corpus` (the papers the selection was drawn from) or `neighbours` (a
    `neighbour_table` of it) give the handout's related papers, `related` of them per paper.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown reading-list format {format!r}: expected one of {', '.join(FORMATS)}")
    missing = {"title", "abstract"} - set(selection.columns)
    if missing:
        raise ValueError(f"a reading list needs columns 'title' and 'abstract'; missing {sorted(missing)}")
    selection = selection.reset_index(drop=True)
    if "paper_id" not in selection.columns:
        from paperlib.corpus.reader import paper_id

        selection = selection.assign(paper_id=[paper_id(t) for t in selection["title"]])
    plan = None
    if isinstance(sessions, pd.DataFrame):
        plan = sessions
        if sorted(plan["paper_id"]) != sorted(selection["paper_id"]):
            raise ValueError("the session plan does not hold exactly the papers of the selection")
    elif sessions:
        plan = plan_sessions(selection, sessions, by=by)
    if format == "md":
        return markdown_list(selection, heading=heading, plan=plan)
    if format == "bib":
        return _bibtex(selection, heading, plan)
    if format == "csv":
        return reading_table(selection, plan).to_csv(index=False)
    return handout_html(selection, heading=heading, plan=plan, corpus=corpus, neighbours=neighbours,
                        related=related)


def export_reading_list(selection: pd.DataFrame, path: str | Path, *, format: str | None = None, **options) -> Path:
    """Write `reading_list(selection, format, **options)` to `path` (folders created); the format
    defaults to the file's suffix (.md, .bib, .csv, .html)."""
    path = Path(path)
    if format is None:
        format = SUFFIXES.get(path.suffix.lower())
        if format is None:
            raise ValueError(f"{path}: cannot tell the format from the suffix; use .md, .bib, .csv or .html "
                             "or pass format=")
    text = reading_list(selection, format, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return path
