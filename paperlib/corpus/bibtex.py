"""Papers as BibTeX entries that `load_corpus` reads back with the same titles and abstracts.

Corpus text is plain Unicode; in BibTeX some characters mean markup. Each of them is written as
the command that the BibTeX reader (`formats.clean_latex`) and LaTeX turn back into the character:
`\\&`, `\\%`, `\\$`, `\\#`, `\\_`, `\\{`, `\\}`, `\\textbackslash{}`, `\\textasciitilde{}`,
`\\textasciicircum{}`; the ligatures `--`, ``` `` ``` and `''` are split by an empty group (`-{}-`).
So no title or abstract can open or close a brace, end a field or start an entry. Titles sit in
double braces so that bibliography styles keep their capitals. Other Unicode stays as it is
(the file is UTF-8).
"""
from __future__ import annotations

import re

import pandas as pd

from paperlib.corpus.tagging import as_list

_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_"}
_LIGATURE = re.compile(r"(?<=-)(?=-)|(?<=`)(?=`)|(?<=')(?=')")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9:._-]+")
_URL_SAFE = re.compile(r"^https?://[^\s{}\\%#\"]+$")


def bibtex_escape(text: str) -> str:
    """`text` (whitespace runs made one space) as BibTeX field text that reads back as `text`."""
    out = "".join(_SPECIAL.get(ch, ch) for ch in " ".join(str(text).split()))
    return _LIGATURE.sub("{}", out)


def bibtex_key(paper_id: str) -> str:
    """A citation key from a paper id (letters, digits and `:._-` only)."""
    return _KEY_UNSAFE.sub("-", str(paper_id)).strip("-") or "paper"


def bibtex_comment(text: str) -> str:
    """`text` as BibTeX comment lines (`% ...`); '@' is dropped so no comment can start an entry."""
    return "".join(f"% {line}\n" for line in str(text).replace("@", "").splitlines() or [""])


def bibtex_entry(paper: dict, *, facets=("theme", "kind", "domain")) -> str:
    """One `@misc` entry: key from `paper_id`, title, abstract, keywords (the paper's tags), url
    (its first code link) and note (notebooks reproducing it), each present when the paper has it."""
    fields = [("title", "{" + bibtex_escape(paper["title"]) + "}"), ("abstract", bibtex_escape(paper["abstract"]))]
    tags = [t for f in facets for t in as_list(paper.get(f))]
    if tags:
        fields.append(("keywords", bibtex_escape(", ".join(dict.fromkeys(tags)))))
    urls = [u for u in as_list(paper.get("code_urls")) if _URL_SAFE.match(u)]
    if urls:
        fields.append(("url", urls[0]))
    notebooks = as_list(paper.get("runnable"))
    if notebooks:
        fields.append(("note", bibtex_escape("Runnable notebook: " + ", ".join(notebooks))))
    key = bibtex_key(paper.get("paper_id") or paper["title"])
    body = "".join(f"  {name} = {{{value}}},\n" for name, value in fields)
    return f"@misc{{{key},\n{body}}}\n"


def to_bibtex(papers: pd.DataFrame, *, comment: str = "") -> str:
    """Every paper as a BibTeX entry, in order, after `comment` (as `%` lines) when given."""
    missing = {"title", "abstract"} - set(papers.columns)
    if missing:
        raise ValueError(f"to_bibtex needs columns 'title' and 'abstract'; missing {sorted(missing)}")
    head = bibtex_comment(comment) + "\n" if comment else ""
    return head + "\n".join(bibtex_entry(rec) for rec in papers.to_dict("records"))
