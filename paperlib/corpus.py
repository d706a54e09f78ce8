"""Read a corpus of papers (titles + abstracts) into one tidy DataFrame.

Formats: the saved listing page the project ships (title and abstract lines alternating),
BibTeX, CSV/TSV (Zotero exports included), JSON and JSON Lines. Every record read is
accounted for: kept, merged as a duplicate, or reported as skipped (strict=False) or
raised as a `CorpusFormatError` naming the file, the line and what was expected.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import formats
from .errors import CorpusFormatError
from .formats import Records

COLUMNS = ["paper_id", "title", "abstract", "source", "line", "code_urls", "acronym"]


@dataclass(frozen=True)
class Issue:
    """One record that was merged or skipped, and why."""

    line: int | None
    title: str
    reason: str


@dataclass
class LoadReport:
    """What happened to every record read: papers + duplicates + skipped == records_read."""

    source: str
    format: str
    records_read: int = 0
    papers: int = 0
    duplicates: list[Issue] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.papers} papers, {len(self.duplicates)} duplicates merged, {len(self.skipped)} skipped "
            f"({self.records_read} records read from {self.source} as {self.format})"
        )

    def as_dict(self) -> dict:
        """Plain JSON-able form (kept in `df.attrs["load_report"]`, which Parquet stores too)."""
        issues = lambda items: [{"line": i.line, "title": i.title, "reason": i.reason} for i in items]
        return {"source": self.source, "format": self.format, "records_read": self.records_read,
                "papers": self.papers, "duplicates": issues(self.duplicates), "skipped": issues(self.skipped)}

    def to_frame(self) -> pd.DataFrame:
        """Merged and skipped records as a table (status, line, title, reason)."""
        rows = [("duplicate", i.line, i.title, i.reason) for i in self.duplicates]
        rows += [("skipped", i.line, i.title, i.reason) for i in self.skipped]
        return pd.DataFrame(rows, columns=["status", "line", "title", "reason"])


def normalise_title(title: str) -> str:
    """The key that decides whether two titles name the same paper (case, accents, punctuation ignored)."""
    return _keys(_clean([title]))[0]


def paper_id(title: str) -> str:
    """Stable id: a short slug of the title plus a hash of its normalised form."""
    return _ids([normalise_title(title)])[0]


_CODE_HOSTS = r"(?:github\.com|gitlab\.com|bitbucket\.org|huggingface\.co|codeberg\.org|sourceforge\.net|git\.io)"
_CODE_URL = re.compile(r"https?://(?:www\.)?" + _CODE_HOSTS + r"/[^\s<>()\[\]{}\"']+", re.IGNORECASE)
_ANY_URL = re.compile(r"https?://[^\s<>()\[\]{}\"']+", re.IGNORECASE)
_CODE_WORDS = re.compile(r"\b(?:code|implementation|repository|github|source|models? (?:are|is) (?:publicly )?available)\b", re.IGNORECASE)


def extract_code_urls(abstract: str) -> list[str]:
    """Repository links an abstract names: URLs on code hosts, or any URL in a sentence about code."""
    urls: list[str] = []
    pos = abstract.find("http")
    while pos >= 0:
        m = _ANY_URL.match(abstract, pos)
        if m is None:
            pos = abstract.find("http", pos + 4)
            continue
        url = m.group(0).rstrip(".,;:")
        if not _CODE_URL.match(url):
            start = abstract.rfind(". ", 0, m.start()) + 1
            end = abstract.find(". ", m.end())
            if not _CODE_WORDS.search(abstract, start, end if end >= 0 else len(abstract)):
                url = ""
        if url and url not in urls:
            urls.append(url)
        pos = abstract.find("http", m.end())
    return urls


_NAME_TOKEN = re.compile(r"^(?=.*[^\W\d_])[\w.+-]+$")
_VERSION = re.compile(r"^(?:[vV]?\d+(?:\.\d+)*|[A-Z]{1,3}\d*|\d*[A-Z]{1,3})$")


_PARENTHESISED = re.compile(r"\(\s*([A-Z][\w-]*)\s*\)")


def _is_coined(word: str) -> bool:
    """A made-up name: digits, two capitals in a row, or a capital after a lower-case letter."""
    pairs = zip(word, word[1:])
    return any(c.isdigit() for c in word) or any((a.isupper() or a.islower()) and b.isupper() for a, b in pairs)


def extract_acronym(title: str, abstract: str = "") -> str:
    """The short name a title introduces ("APP" from "APP: Anytime Progressive Pruning"), or ''.

    A one-word head before the colon is the name; of a longer head only a coined first word
    (with its version, as in "VideoMAE V2") counts; a plain phrase ("Relational Experience
    Replay") counts only through the acronym the abstract gives it in parentheses.
    """
    head, sep, _ = title.partition(":")
    head = head.strip()
    if not sep or not head or len(head) > 40:
        return ""
    tokens = head.split()
    if len(tokens) > 4 or not _NAME_TOKEN.match(tokens[0]) or not all(re.fullmatch(r"[\w.+-]+", t) for t in tokens):
        return ""
    if len(tokens) == 1:
        return head if any(c.isupper() for c in head) else ""
    first, rest = tokens[0], tokens[1:]
    coined = _is_coined(first)
    if coined and all(_VERSION.match(t) for t in rest):
        return head
    if coined:
        return first
    initials = "".join(t[0].upper() for t in tokens if t[0].isalpha())
    for m in _PARENTHESISED.finditer(abstract):
        if m.group(1).startswith(initials):
            return m.group(1)
    return ""


def _clean(texts: list[str]) -> list[str]:
    """Whitespace runs collapsed to one space, ends trimmed (the split only where a run exists)."""
    return [" ".join(x.split()) if ("  " in x or "\t" in x or "\n" in x or "\r" in x) else x.strip() for x in texts]


def _keys(titles: list[str]) -> list[str]:
    """`normalise_title` for a whole column (vectorised with Arrow)."""
    keys = pc.utf8_lower(pa.array(titles, pa.large_string()))
    keys = pc.replace_substring_regex(pc.utf8_normalize(keys, "NFKD"), r"\p{Mn}+", "")
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(keys, r"[^\p{L}\p{N}_]+", " ")).to_pylist()


def _ids(keys: list[str]) -> list[str]:
    sha1 = hashlib.sha1
    out = []
    for key in keys:
        slug = "-".join(key.split(" ", 4)[:4])[:32].strip("-") or "paper"
        out.append(f"{slug}-{sha1(key.encode('utf-8')).hexdigest()[:8]}")
    return out


def _finish(records: Records, report: LoadReport, path: Path, strict: bool, lossy: bool) -> pd.DataFrame:
    """Validate records, merge duplicates, add ids and extractions (column-wise: corpora can be large).

    `lossy`: the text was decoded leniently, so records may hold undecodable bytes to report.
    """
    lines = records.lines
    if records.clean:
        title_list, abstract_list = records.titles, records.abstracts
    else:
        title_list, abstract_list = _clean(records.titles), _clean(records.abstracts)
    bad: dict[int, str] = {}
    for i, (t, a) in enumerate(zip(title_list, abstract_list)):
        if not t:
            bad[i] = "expected a title, found an empty one"
        elif not a:
            bad[i] = f"expected an abstract for the title {t[:60]!r}, found an empty one"
        elif lossy and (formats.has_undecodable(t) or formats.has_undecodable(a)):
            bad[i] = "the record holds bytes that are not valid in the given encoding"
        else:
            continue
        if strict:
            raise CorpusFormatError(path, lines[i], bad[i])
        report.skipped.append(Issue(lines[i], formats.printable(t), bad[i]))
    if bad:
        keep = [i for i in range(len(lines)) if i not in bad]
        lines, title_list, abstract_list = ([col[i] for i in keep] for col in (lines, title_list, abstract_list))

    keys = _keys(title_list)
    first_of: dict[str, int] = {}
    keep_rows: list[int] = []
    for i, key in enumerate(keys):
        j = first_of.setdefault(key, i)
        if j == i:
            keep_rows.append(i)
            continue
        report.duplicates.append(Issue(lines[i], title_list[i],
                                       f"same title as the record at line {lines[j]}; the longer abstract was kept"))
        if len(abstract_list[i]) > len(abstract_list[j]):
            abstract_list[j] = abstract_list[i]
    if report.duplicates:
        keys = [keys[i] for i in keep_rows]
        title_list = [title_list[i] for i in keep_rows]
        abstract_list = [abstract_list[i] for i in keep_rows]
        lines = [lines[i] for i in keep_rows]
    df = pd.DataFrame(
        {
            "paper_id": _ids(keys),
            "title": pd.array(title_list, dtype="str"),
            "abstract": pd.array(abstract_list, dtype="str"),
            "source": str(path),
            "line": pd.array(lines, dtype="Int64"),
            "code_urls": [extract_code_urls(a) if "http" in a else [] for a in abstract_list],
            "acronym": [extract_acronym(t, a) if ":" in t else "" for t, a in zip(title_list, abstract_list)],
        },
        columns=COLUMNS,
    )
    report.papers = len(df)
    return df


def load_corpus_with_report(
    path: str | Path, *, encoding: str = "utf-8", strict: bool = True, format: str | None = None
) -> tuple[pd.DataFrame, LoadReport]:
    """Like `load_corpus`, and also return the `LoadReport` of merged and skipped records."""
    path = Path(path)
    fmt, records, skipped, lossy = formats.read_records(path, encoding=encoding, strict=strict, format=format)
    report = LoadReport(source=str(path), format=fmt)
    report.skipped.extend(Issue(line, title, reason) for line, title, reason in skipped)
    df = _finish(records, report, path, strict, lossy)
    report.records_read = len(records) + len(skipped)
    assert report.records_read == report.papers + len(report.duplicates) + len(report.skipped)
    df.attrs["load_report"] = report.as_dict()
    return df, report


def load_corpus(
    path: str | Path, *, encoding: str = "utf-8", strict: bool = True, format: str | None = None
) -> pd.DataFrame:
    """Read a corpus file into a DataFrame, one row per paper.

    Columns: paper_id, title, abstract, source, line, code_urls, acronym. The format is
    detected from the file (force it with `format=`: "listing", "bibtex", "csv", "tsv",
    "json", "jsonl"). With strict=False unreadable records are skipped and listed in
    `df.attrs["load_report"]` (a dict; `load_corpus_with_report` gives the `LoadReport`) instead of raising `CorpusFormatError`.
    """
    return load_corpus_with_report(path, encoding=encoding, strict=strict, format=format)[0]
