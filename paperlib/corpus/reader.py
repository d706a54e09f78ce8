"""Read a corpus of papers (titles + abstracts) into one tidy DataFrame.

Formats: the saved listing page the project ships (title and abstract lines alternating),
BibTeX, CSV/TSV (Zotero exports included), JSON and JSON Lines. Every record read is
accounted for: kept, merged as a duplicate, or reported as skipped (strict=False) or
raised as a `CorpusFormatError` naming the file, the line and what was expected.
"""
from __future__ import annotations

import gc
import re
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import formats, textcols
from paperlib.errors import CorpusFormatError
from paperlib.corpus.formats import Records

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


_NON_WORD = re.compile(r"[^\w]+")
_ASCII_NON_WORD = re.compile(r"[^a-z0-9_]+")


def normalise_title(title: str) -> str:
    """The key that decides whether two titles name the same paper: lower case, accents dropped,
    every run of characters other than letters, digits and '_' made one space.

    `textcols.title_keys` gives the same key for a whole column (the loader's duplicate test and ids).
    """
    text = str(title)
    if text.isascii():
        return " ".join(_ASCII_NON_WORD.sub(" ", text.lower()).split())
    # Lower-cased a character at a time, as Arrow does (no final-sigma rule), then accents dropped.
    text = unicodedata.normalize("NFKD", "".join(c.lower() for c in text))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return " ".join(_NON_WORD.sub(" ", text).split())


def paper_id(title: str) -> str:
    """Stable id: a short slug of the title plus a hash of its normalised form."""
    return _ids([normalise_title(title)])[0]


_CODE_HOSTS = r"(?:github\.com|gitlab\.com|bitbucket\.org|huggingface\.co|codeberg\.org|sourceforge\.net|git\.io)"
_CODE_URL = re.compile(r"https?://(?:www\.)?" + _CODE_HOSTS + r"/[^\s<>()\[\]{}\"']+", re.IGNORECASE)
_ANY_URL = re.compile(r"https?://[^\s<>()\[\]{}\"']+", re.IGNORECASE)
_CODE_WORDS = re.compile(r"\b(?:code|implementation|repository|github|source|models? (?:are|is) (?:publicly )?available)\b", re.IGNORECASE)


_CODE_STEMS = ("code", "implementation", "repository", "github", "source", "available")


def _about_code(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] (a sentence) speaks of code; plain-ASCII sentences without any
    of the words are answered without the regex."""
    sentence = text[start:end]
    if sentence.isascii():
        lower = sentence.lower()
        if not any(stem in lower for stem in _CODE_STEMS):
            return False
    return _CODE_WORDS.search(text, start, end) is not None


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
            if not _about_code(abstract, start, end if end >= 0 else len(abstract)):
                url = ""
        if url and url not in urls:
            urls.append(url)
        pos = abstract.find("http", m.end())
    return urls


_NAME_TOKEN = re.compile(r"^(?=.*[^\W\d_])[\w.+-]+$")
_VERSION = re.compile(r"^(?:[vV]?\d+(?:\.\d+)*|[A-Z]{1,3}\d*|\d*[A-Z]{1,3})$")


_PARENTHESISED = re.compile(r"\(\s*([A-Z][\w-]*)\s*\)")


_TOKEN = re.compile(r"[\w.+-]+")
_OPEN_SPACE = re.compile(r"\(\s")
_ASCII_COINED = re.compile(r"[0-9]|[A-Za-z][A-Z]")


def _is_coined(word: str) -> bool:
    """A made-up name: digits, two capitals in a row, or a capital after a lower-case letter."""
    if word.isascii():
        return _ASCII_COINED.search(word) is not None
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
    if len(tokens) > 4 or not _NAME_TOKEN.match(tokens[0]) or not all(map(_TOKEN.fullmatch, tokens)):
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
    if initials and "(" + initials not in abstract and not _OPEN_SPACE.search(abstract):
        return ""  # no parenthesised word can start with the initials
    for m in _PARENTHESISED.finditer(abstract):
        if m.group(1).startswith(initials):
            return m.group(1)
    return ""


def _ids(keys: list[str]) -> list[str]:
    return textcols.ids_from_keys(textcols.as_column(keys)).to_pylist()


def _columns(records: Records, lossy: bool) -> tuple[pa.Array, pa.Array, pa.Array, np.ndarray, dict[int, tuple[str, str]]]:
    """The records as Arrow columns (titles and abstracts with whitespace squeezed, title keys, lines)
    and the records already known to be unreadable.

    Takes the text out of `records` (its title and abstract lists are left None).
    `lossy`: the text was decoded leniently; records holding undecodable bytes (which Arrow
    cannot store) get empty text here and their reason in the returned {index: (title, reason)}.
    """
    titles, abstracts = records.titles, records.abstracts
    records.titles = records.abstracts = None  # so each list is freed as soon as its column is built
    bad: dict[int, tuple[str, str]] = {}
    if lossy:
        for i, (t, a) in enumerate(zip(titles, abstracts)):
            if formats.has_undecodable(t) or formats.has_undecodable(a):
                bad[i] = (formats.printable(" ".join(t.split())),
                          "the record holds bytes that are not valid in the given encoding")
        titles = ["" if i in bad else t for i, t in enumerate(titles)]
        abstracts = ["" if i in bad else a for i, a in enumerate(abstracts)]
    titles = textcols.squeeze_space(textcols.as_column(titles))
    with _beside(len(titles)) as beside:
        keys = beside.submit(textcols.title_keys, titles)  # numpy and Arrow: runs beside the abstracts' squeeze
        abstracts = textcols.squeeze_space(textcols.as_column(abstracts))
        keys = keys.result()
    return titles, abstracts, keys, np.asarray(records.lines, dtype=np.int64), bad


def _finish(titles: pa.Array, abstracts: pa.Array, keys: pa.Array, lines: np.ndarray, bad: dict[int, tuple[str, str]],
            report: LoadReport, path: Path, strict: bool) -> pd.DataFrame:
    """Report empty records, merge duplicates, add ids and extractions (column-wise: corpora can be large)."""
    empty = np.flatnonzero((pc.binary_length(titles).to_numpy() == 0) | (pc.binary_length(abstracts).to_numpy() == 0))
    for j, t in zip(empty.tolist(), titles.take(pa.array(empty)).to_pylist()):
        if j not in bad:
            bad[j] = (t, "expected a title, found an empty one" if not t else
                      f"expected an abstract for the title {t[:60]!r}, found an empty one")
    if bad:
        for i in sorted(bad):
            if strict:
                raise CorpusFormatError(path, int(lines[i]), bad[i][1])
            report.skipped.append(Issue(int(lines[i]), *bad[i]))
        keep = pa.array(np.setdiff1d(np.arange(len(titles)), sorted(bad)))
        titles, abstracts, keys, lines = titles.take(keep), abstracts.take(keep), keys.take(keep), lines[keep.to_numpy()]

    if len(pc.unique(keys)) < len(keys):
        titles, abstracts, keys, lines = _merge_duplicates(titles, abstracts, keys, lines, report)
    with _beside(len(titles)) as beside:
        # The scans are Arrow and numpy passes that release the GIL: they run on the other core
        # while this thread hashes ids in Python.
        url_scan = beside.submit(_url_scan, abstracts)
        acronym_scan = beside.submit(_acronym_scan, titles)
        paper_ids = textcols.ids_from_keys(keys)
        code_urls = _code_url_column(abstracts, url_scan.result())
        acronyms = _acronym_column(titles, abstracts, acronym_scan.result())
    df = pd.DataFrame(
        {
            "paper_id": pd.array(paper_ids, dtype="str"),
            "title": pd.array(titles, dtype="str"),
            "abstract": pd.array(abstracts, dtype="str"),
            "source": str(path),
            "line": pd.array(lines, dtype="Int64"),
            "code_urls": code_urls,
            "acronym": pd.array(acronyms, dtype="str"),
        },
        columns=COLUMNS,
    )
    report.papers = len(df)
    return df


def _url_scan(abstracts: pa.Array):
    """The column-wide part of `_code_url_column`: rows with a link, and which of them need Python."""
    rows, counts = textcols.rows_containing(abstracts, b"http")
    texts = abstracts.take(pa.array(rows))
    single = pa.array(counts == 1)
    match = pc.extract_regex(texts, _SQUEEZED_URL)  # null where no URL; .field() would show those as ''
    found = pc.utf8_rtrim(match.field("url"), ".,;:")
    direct = pc.and_(pc.and_(single, pc.is_valid(match)),
                     pc.match_substring_regex(found, _SQUEEZED_CODE_URL, ignore_case=True))
    slow = pc.invert(pc.or_(direct, pc.and_(single, pc.is_null(match))))
    return (rows[direct.to_numpy(zero_copy_only=False)], found.filter(direct),
            rows[slow.to_numpy(zero_copy_only=False)], texts.filter(slow))


def _code_url_column(abstracts: pa.Array, scan=None) -> list[list[str]]:
    """`extract_code_urls` of every (whitespace-squeezed) abstract.

    The common case, one "http" that starts a code-host URL, is found by the column-wide
    `_url_scan`; the rest (several links, links whose sentence decides) go through `extract_code_urls`.
    """
    direct_rows, direct_urls, slow_rows, slow_texts = scan or _url_scan(abstracts)
    urls: list[list[str]] = [[] for _ in range(len(abstracts))]
    for i, url in zip(direct_rows.tolist(), direct_urls.to_pylist()):
        urls[i] = [url]
    for i, text in zip(slow_rows.tolist(), slow_texts.to_pylist()):
        urls[i] = extract_code_urls(text)
    return urls


# _ANY_URL and _CODE_URL for text whose only whitespace is the plain space (RE2 syntax).
_SQUEEZED_URL = r"(?P<url>http(?i:s?://)[^ <>()\[\]{}\"']+)"
_SQUEEZED_CODE_URL = r"^https?://(?:www\.)?" + _CODE_HOSTS + r"/[^ <>()\[\]{}\"']+"


def _acronym_scan(titles: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The column-wide part of `_acronym_column`: titles whose head is one ASCII word with a capital,
    and the other titles whose head (before the colon) is short enough to be a name."""
    one_word = pc.match_substring_regex(titles, r"^[A-Za-z0-9_.+-]*[A-Z][A-Za-z0-9_.+-]* ?:")
    maybe = pc.and_(pc.invert(one_word), pc.match_substring_regex(titles, r"^[^ :]+(?: [^ :]+){0,3} ?:"))
    return pc.indices_nonzero(one_word).to_numpy(), pc.indices_nonzero(maybe).to_numpy()


def _acronym_column(titles: pa.Array, abstracts: pa.Array, scan=None) -> np.ndarray:
    """`extract_acronym` of every (whitespace-squeezed) paper.

    A one-word head (found by `_acronym_scan`) is the name when it has at most 40 characters;
    the other short heads go through `extract_acronym`.
    """
    one_word, maybe = scan if scan is not None else _acronym_scan(titles)
    acronyms = np.full(len(titles), "", dtype=object)
    heads = [t.partition(":")[0].rstrip(" ") for t in titles.take(pa.array(one_word)).to_pylist()]
    acronyms[one_word] = [h if len(h) <= 40 else "" for h in heads]
    picked = pa.array(maybe)
    acronyms[maybe] = [extract_acronym(t, a) for t, a in zip(titles.take(picked).to_pylist(), abstracts.take(picked).to_pylist())]
    return acronyms


def _merge_duplicates(titles, abstracts, keys, lines, report: LoadReport):
    """Keep the first record of each normalised title, with the longest abstract of its group; report the rest."""
    title_list, abstract_list = titles.to_pylist(), abstracts.to_pylist()
    first_of: dict[str, int] = {}
    keep_rows: list[int] = []
    for i, key in enumerate(keys.to_pylist()):
        j = first_of.setdefault(key, i)
        if j == i:
            keep_rows.append(i)
            continue
        report.duplicates.append(Issue(int(lines[i]), title_list[i],
                                       f"same title as the record at line {lines[j]}; the longer abstract was kept"))
        if len(abstract_list[i]) > len(abstract_list[j]):
            abstract_list[j] = abstract_list[i]
    keep = pa.array(keep_rows, pa.int64())
    return (titles.take(keep), textcols.as_column(abstract_list).take(keep), keys.take(keep), lines[keep_rows])


class _Inline:
    """Stands in for the executor on small corpora, where a thread's start and hand-overs cost more than it saves."""

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc) -> None:
        return None


_THREADED_ROWS = 20_000


def _beside(rows: int) -> ThreadPoolExecutor | _Inline:
    """Where to run column work that releases the GIL: a second thread from `_THREADED_ROWS` papers on."""
    return ThreadPoolExecutor(max_workers=1) if rows >= _THREADED_ROWS else _Inline()


@contextmanager
def _gc_paused():
    """Hold the cyclic garbage collector while building columns of many small objects.

    Those allocations set off collections that walk every object (a third of the load time
    of a large corpus) and can free nothing: no reference cycles are made here.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_corpus_with_report(
    path: str | Path, *, encoding: str = "utf-8", strict: bool = True, format: str | None = None
) -> tuple[pd.DataFrame, LoadReport]:
    """Like `load_corpus`, and also return the `LoadReport` of merged and skipped records."""
    path = Path(path)
    fmt, records, skipped, lossy = formats.read_records(path, encoding=encoding, strict=strict, format=format)
    report = LoadReport(source=str(path), format=fmt)
    report.skipped.extend(Issue(line, title, reason) for line, title, reason in skipped)
    report.records_read = len(records) + len(skipped)
    columns = _columns(records, lossy)
    del records  # the Python strings go once the Arrow columns hold the text
    with _gc_paused():
        df = _finish(*columns, report, path, strict)
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
