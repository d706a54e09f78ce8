"""Readers for each corpus file format: bytes in, (line, title, abstract) records out.

Each reader either returns every record it found or raises `CorpusFormatError` with the
line; in lenient mode it returns what it could not read as (line, title, reason) instead.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import mmap
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import textcols
from paperlib.errors import CorpusFormatError

FORMATS = ("listing", "bibtex", "csv", "tsv", "json", "jsonl")
_BY_SUFFIX = {".bib": "bibtex", ".bibtex": "bibtex", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
              ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SNIFFED_SUFFIXES = {"", ".txt", ".text", ".md", ".list", ".listing"}


@dataclass
class Records:
    """The records of one file as three parallel columns (lists, or Arrow and numpy arrays from the column-wise reader)."""

    lines: list[int] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)

    def append(self, line: int, title: str, abstract: str) -> None:
        self.lines.append(line)
        self.titles.append(title)
        self.abstracts.append(abstract)

    def __len__(self) -> int:
        return len(self.lines)


Skipped = tuple[int | None, str, str]  # line, title (may be ''), reason


_SURROGATE = re.compile("[\udc80-\udcff]")


def has_undecodable(text: str) -> bool:
    """True if decoding left lone surrogates (bytes invalid in the encoding, kept by surrogateescape)."""
    return _SURROGATE.search(text) is not None


def printable(text: str) -> str:
    """Text safe to print even if it holds undecodable bytes."""
    return text.encode("utf-8", "replace").decode("utf-8")


# Encodings in which a newline byte is always a newline: lines can be decoded one by one.
_LINE_SAFE = {"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15", "utf-8-sig"}


def _map(f) -> bytes | mmap.mmap:
    """The file mapped, for the column-wise reader to work on the pages in place; read where it cannot be
    mapped (empty files, pipes, file systems without mmap)."""
    try:
        if os.fstat(f.fileno()).st_size:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        pass
    return f.read()


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None


def _decode_lines(data: bytes, path: Path, encoding: str, strict: bool) -> tuple[list[str], bool]:
    """The file's lines, and whether invalid bytes were kept as lone surrogates (lenient mode only).

    Lines are decoded one by one where the encoding allows it: each line then gets its own
    compact string (one emoji does not widen the whole file) and a bad byte names its line.
    """
    codec = _codec(encoding)
    if codec not in _LINE_SAFE:
        try:
            return data.decode(encoding).removeprefix("\ufeff").splitlines(), False
        except UnicodeDecodeError as e:
            if strict:
                raise _bad_byte(path, data[: e.start].count(b"\n") + 1, data[e.start], encoding) from None
            return data.decode(encoding, errors="surrogateescape").removeprefix("\ufeff").splitlines(), True
    raw = data.splitlines()
    try:
        lines = [ln.decode(encoding) for ln in raw]
        lossy = False
    except UnicodeDecodeError:
        for i, ln in enumerate(raw):
            try:
                ln.decode(encoding)
            except UnicodeDecodeError as e:
                if strict:
                    raise _bad_byte(path, i + 1, ln[e.start], encoding) from None
                break
        lines = [ln.decode(encoding, errors="surrogateescape") for ln in raw]
        lossy = True
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines, lossy


def _bad_byte(path: Path, line: int, byte: int, encoding: str) -> CorpusFormatError:
    return CorpusFormatError(path, line, f"byte 0x{byte:02x} is not valid {encoding}: expected text in {encoding} "
                                         "(pass encoding=... for another encoding)")


def detect_format(path: Path, text: str) -> str:
    """The format named by the suffix, else sniffed from the first characters of the text."""
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    head = text.lstrip()
    first_line = head.split("\n", 1)[0].lower()
    if head.startswith("@"):
        return "bibtex"
    if head.startswith("["):
        return "json"
    if head.startswith("{"):
        return "jsonl" if first_line.rstrip().endswith("}") else "json"
    if "title" in first_line and "abstract" in first_line:
        if "\t" in first_line:
            return "tsv"
        if "," in first_line:
            return "csv"
    if suffix in _SNIFFED_SUFFIXES:
        return "listing"
    raise CorpusFormatError(path, 1, f"unknown corpus format {suffix!r}: {_EXPECTED_FORMATS}")


_EXPECTED_FORMATS = ("expected a listing (title and abstract lines alternating), BibTeX (.bib), "
                     "CSV/TSV or JSON/JSON Lines with 'title' and 'abstract' columns")


def read_records(path: Path, *, encoding: str, strict: bool, format: str | None, fast: bool = True):
    """(format, records, skipped, lossy) of one file; lossy: undecodable bytes were kept as surrogates.

    `fast=False` skips the column-wise listing reader (the tests compare the two readers).
    """
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    columnwise = (fast and format in (None, "listing") and _codec(encoding) in ("utf-8", "utf-8-sig")
                  and (format == "listing" or path.suffix.lower() not in _BY_SUFFIX))
    try:
        with path.open("rb") as f:
            data = _map(f) if columnwise else f.read()
    except FileNotFoundError:
        raise CorpusFormatError(path, None, "no such file") from None
    except IsADirectoryError:
        raise CorpusFormatError(path, None, "is a folder, expected a corpus file") from None
    if b"\x00" in data[:4096]:
        raise CorpusFormatError(path, None, f"binary file, unknown corpus format: {_EXPECTED_FORMATS}")
    if columnwise:
        records = read_listing_columns(path, data, format)
        if records is not None:
            return "listing", records, [], False
        data = data[:]
    lines, lossy = _decode_lines(data, path, encoding, strict)
    if not any(ln.strip() for ln in lines):
        raise CorpusFormatError(path, 1, "empty file: expected at least one paper (a title and its abstract)")
    fmt = format or detect_format(path, "\n".join(lines[:200]))
    if fmt == "listing":
        records, skipped = read_listing(lines, path, strict)
    else:
        text = "\n".join(lines)
        reader = {"bibtex": read_bibtex, "csv": read_delimited, "tsv": read_delimited,
                  "json": read_json, "jsonl": read_jsonl}[fmt]
        if fmt in ("csv", "tsv"):
            records, skipped = reader(text, path, strict, delimiter="\t" if fmt == "tsv" else ",")
        else:
            records, skipped = reader(text, path, strict)
    if not records and not skipped:
        raise CorpusFormatError(path, None, f"no papers found: {_EXPECTED_FORMATS}")
    return fmt, records, skipped, lossy


# --- the listing page --------------------------------------------------------------------------

# Lines a saved listing page puts before the first title, and words it glues to that title.
_BOILERPLATE = re.compile(r"^(get trending papers|subscribe|sign (in|up)|log ?in|newsletter|trending papers)\b", re.I)
_GLUED_PREFIX = re.compile(r"^(?:Subscribe|Sign up|Log in)(?=[A-Z0-9\"'(\[])")
_TITLE_MAX = 300
_SENTENCE_BREAK = re.compile(r"[a-z]{3}\. +[A-Z]")  # ". W" after a word: a sentence break, not "vs." or "e.g."


def _looks_like_abstract(line: str) -> bool:
    """Long, or more than one sentence of some length: an abstract, not a title."""
    return len(line) > _TITLE_MAX or (len(line) > 150 and _SENTENCE_BREAK.search(line) is not None)


def _body_start(lines) -> int:
    """Index of the first line after the page's leading boilerplate and blank lines."""
    for start, line in enumerate(lines):
        line = line.strip()
        if line and not (_BOILERPLATE.match(line) and not _GLUED_PREFIX.match(line)):
            return start
    return len(lines)


def _abstract_like(col: pa.Array, lengths: np.ndarray) -> np.ndarray:
    """`_looks_like_abstract` for a whole column whose character lengths are given."""
    out = lengths > _TITLE_MAX
    middle = np.flatnonzero((lengths > 150) & ~out)
    if len(middle):
        found = pc.match_substring_regex(col.take(pa.array(middle)), _SENTENCE_BREAK.pattern)
        out[middle] = found.to_numpy(zero_copy_only=False)
    return out


def _blank(lines: pa.Array, raw: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Which lines hold only whitespace; a line that starts with a visible ASCII byte is not asked twice."""
    first = raw[np.minimum(offsets[:-1], len(raw) - 1)] if len(raw) else np.zeros(len(lines), np.uint8)
    blank = np.zeros(len(lines), bool)
    unsure = np.flatnonzero((first <= 32) | (first >= 127) | (offsets[:-1] == offsets[1:]))
    if len(unsure):
        found = pc.match_substring_regex(lines.take(pa.array(unsure)), f"^{textcols.WHITESPACE_CLASS}*$")
        blank[unsure] = found.to_numpy(zero_copy_only=False)
    return blank


def read_listing_columns(path: Path, data: bytes | mmap.mmap, format: str | None) -> Records | None:
    """The listing read column-wise with Arrow, when the file is a regular UTF-8 listing.

    None sends the file to the line-by-line `read_listing`, which gives the same records and
    names the line of any problem: bad bytes, lone carriage returns, a record that breaks
    the alternation, a file sniffed as another format.
    """
    if format is None:
        head_end = -1
        for _ in range(200):
            head_end = data.find(b"\n", head_end + 1)
            if head_end < 0:
                break
        head = data[: head_end if head_end >= 0 else len(data)]
        try:
            if detect_format(path, head.decode("utf-8", "replace").removeprefix("\ufeff")) != "listing":
                return None
        except CorpusFormatError:
            return None
    raw = np.frombuffer(data, np.uint8)
    if data.find(b"\r") >= 0:
        returns = np.flatnonzero(raw == 13)
        if returns[-1] + 1 >= len(raw) or np.any(raw[returns + 1] != 10):
            return None  # a lone CR is a line break only bytes.splitlines() sees
    breaks = np.flatnonzero(raw == 10)
    bom = 3 if data[:3] == codecs.BOM_UTF8 else 0
    ends = breaks + 1 if data[-1:] == b"\n" else np.append(breaks + 1, len(data))
    offsets = np.concatenate(([bom], ends)).astype(np.int64)
    lines = pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        lines = lines.cast(pa.large_string())  # lines keep their line break: trimmed once they are columns
    except pa.ArrowInvalid:
        return None  # not valid UTF-8
    start = _body_start(lines.slice(0, 50).to_pylist())
    if start >= 50:
        return None
    rows = np.flatnonzero(~_blank(lines, raw, offsets)[start:]) + start
    t_rows, a_rows = rows[0::2], rows[1::2]
    if len(t_rows) == 0 or len(t_rows) != len(a_rows):
        return None
    titles = pc.utf8_trim(lines.take(pa.array(t_rows)), textcols.WHITESPACE)
    abstracts = lines.take(pa.array(a_rows))
    first = titles[0].as_py()
    unglued = _GLUED_PREFIX.sub("", first, count=1)
    if unglued != first:
        titles = pa.concat_arrays([pa.array([unglued], pa.large_string()), titles.slice(1)])
    if _abstract_like(titles, pc.utf8_length(titles).to_numpy()).any():
        return None  # read_listing re-pairs the lines after such a title and names it
    return Records(t_rows + 1, titles, abstracts)


def read_listing(raw: list[str], path: Path, strict: bool) -> tuple[Records, list[Skipped]]:
    """The file's lines as title and abstract lines alternating, after the page's leading boilerplate;
    blank lines ignored."""
    start = _body_start(raw)
    body = [ln.strip() for ln in raw[start:]]
    while body and not body[-1]:
        body.pop()
    if body:
        body[0] = _GLUED_PREFIX.sub("", body[0], count=1)
    titles, abstracts = body[0::2], body[1::2]
    # Fast path: no blank lines, an even count, and no title that looks like an abstract. The loop
    # below would then pair the lines the same way (it only re-pairs after a title that looks
    # like an abstract), however short an abstract is.
    if (len(titles) == len(abstracts) and all(body)
            and (max(map(len, titles), default=0) <= 150 or not any(map(_looks_like_abstract, titles)))):
        lines = list(range(start + 1, start + 1 + 2 * len(titles), 2))
        return Records(lines, titles, abstracts), []
    lines = [(start + i, ln) for i, ln in enumerate(body, start=1) if ln]

    records = Records()
    skipped: list[Skipped] = []

    def fail(lineno: int, title: str, reason: str) -> None:
        if strict:
            raise CorpusFormatError(path, lineno, reason)
        skipped.append((lineno, printable(title), reason))

    k = 0
    n = len(lines)
    while k < n:
        lineno, line = lines[k]
        if _looks_like_abstract(line):
            fail(lineno, "", f"expected a title line, found an abstract-like line ({len(line)} characters) "
                              "with no title before it")
            k += 1
            continue
        if k + 1 >= n:
            fail(lineno, line, f"expected an abstract line after the title {printable(line)[:60]!r}, found the end of the file")
            break
        next_no, nxt = lines[k + 1]
        # A short line followed by an abstract-like line is the next title: this title lost its abstract.
        if not _looks_like_abstract(nxt) and k + 2 < n and _looks_like_abstract(lines[k + 2][1]):
            fail(lineno, line, f"expected an abstract line after the title {printable(line)[:60]!r}, "
                               f"found another title at line {next_no}")
            k += 1
            continue
        records.append(lineno, line, nxt)
        k += 2
    return records, skipped


# --- BibTeX --------------------------------------------------------------------------------------

_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "r": "\u030a", "d": "\u0323", "b": "\u0331"}
_LETTERS = {"ss": "ß", "o": "ø", "O": "Ø", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
            "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ"}
_ACCENT_CMD = re.compile(r"\\([`'^\"~=.]|[uvHckrdb](?![a-zA-Z]))\s*(?:\{\s*(\\?[a-zA-Z])\s*\}|(\\?[a-zA-Z]))")
_LETTER_CMD = re.compile(r"\\(ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![a-zA-Z])\s?")
_SIMPLE_ESCAPES = {r"\&": "&", r"\%": "%", r"\$": "$", r"\#": "#", r"\_": "_", r"\{": "{", r"\}": "}",
                   "~": " ", "--": "–", "``": "“", "''": "”"}
_LATEX_MARKS = ("\\", "{", "}", "~", "--", "``", "''")
_FORMAT_CMD = re.compile(r"\\(?:emph|textit|textbf|textsc|texttt|mathrm|mathbf|text)\s*")
# Characters written as commands so that they survive the removal of braces: \{ \} and the text
# symbols for a backslash, a tilde and a caret (with their optional empty group or spaces).
_LITERAL_CMD = re.compile(r"\\(?:(textbackslash|textasciitilde|textasciicircum)(?![a-zA-Z])(?:\{\}|\s*)|([{}]))")
_LITERALS = {"textbackslash": "\\", "textasciitilde": "~", "textasciicircum": "^", "{": "{", "}": "}"}
_PLACEHOLDER = {ch: chr(0xE000 + i) for i, ch in enumerate(_LITERALS.values())}  # private-use characters


def _accent(m: re.Match) -> str:
    base = (m.group(2) or m.group(3)).lstrip("\\")
    return unicodedata.normalize("NFC", base + _ACCENTS[m.group(1)])


def latex_accents(value: str) -> str:
    """Only the LaTeX accents of a text as Unicode (`T\\"ULU` -> TÜLU), the rest as it is: for
    plain-text abstracts that carry a few of them."""
    return _ACCENT_CMD.sub(_accent, value) if "\\" in value else value


def clean_latex(value: str) -> str:
    """Turn BibTeX field text into plain Unicode: accents, escapes and protective braces removed;
    `\\{`, `\\}`, `\\textbackslash{}`, `\\textasciitilde{}` and `\\textasciicircum{}` give the character."""
    if not any(mark in value for mark in _LATEX_MARKS):
        return " ".join(value.split())
    held = any(p in value for p in _PLACEHOLDER.values())  # text that already holds them is left as it was
    if not held:
        value = _LITERAL_CMD.sub(lambda m: _PLACEHOLDER[_LITERALS[m.group(1) or m.group(2)]], value)
    value = _ACCENT_CMD.sub(_accent, value)
    value = _LETTER_CMD.sub(lambda m: _LETTERS[m.group(1)], value)
    value = _FORMAT_CMD.sub("", value)
    for src, dst in _SIMPLE_ESCAPES.items():
        value = value.replace(src, dst)
    value = value.replace("{", "").replace("}", "")
    if not held:
        for ch, placeholder in _PLACEHOLDER.items():
            value = value.replace(placeholder, ch)
    return " ".join(value.split())


_SPACE = re.compile(r"\s*")
_NAME = re.compile(r"[^\s,={}()\"#]+")
_BRACE_EVENTS = re.compile(r"[{}\\]")
_QUOTE_EVENTS = re.compile(r"[{}\\\"]")


class LineCounter:
    """Line number of a position, counted on from the last position asked (linear over a file)."""

    def __init__(self, text: str):
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        if pos < self.pos:  # asked backwards (an error message): count afresh
            return self.text.count("\n", 0, pos) + 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


class _BibScanner:
    """A position-tracking scanner over BibTeX text (line numbers for errors)."""

    def __init__(self, text: str, path: Path):
        self.text, self.path, self.pos = text, path, 0
        self._lines = LineCounter(text)

    def line(self, pos: int | None = None) -> int:
        return self._lines.at(self.pos if pos is None else pos)

    def error(self, message: str, pos: int | None = None) -> CorpusFormatError:
        return CorpusFormatError(self.path, self.line(pos), message)

    def skip_space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()

    def expect(self, ch: str, what: str) -> None:
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] != ch:
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end of the file"
            raise self.error(f"expected {what}, found {found}")
        self.pos += 1

    def name(self, what: str) -> str:
        self.skip_space()
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group(0)

    def _close(self, start: int, events: re.Pattern, quote: bool) -> str:
        """Text up to the brace (or quote) that closes the one at `start`, jumping between special characters."""
        depth, pos = (0 if quote else 1), start + 1
        while True:
            m = events.search(self.text, pos)
            if m is None:
                what = "'\"'" if quote else "'}'"
                raise self.error(f"expected a closing {what} for the {'quote' if quote else 'brace'} opened here", start)
            ch, pos = m.group(0), m.end()
            if ch == "\\":
                pos += 1
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0 and not quote:
                    self.pos = pos
                    return self.text[start + 1 : pos - 1]
            elif depth == 0:  # the closing quote
                self.pos = pos
                return self.text[start + 1 : pos - 1]

    def braced(self) -> str:
        return self._close(self.pos, _BRACE_EVENTS, quote=False)

    def quoted(self) -> str:
        return self._close(self.pos, _QUOTE_EVENTS, quote=True)

    def value(self, strings: dict[str, str]) -> str:
        parts = []
        while True:
            self.skip_space()
            ch = self.text[self.pos] if self.pos < len(self.text) else ""
            if ch == "{":
                parts.append(self.braced())
            elif ch == '"':
                parts.append(self.quoted())
            elif ch and (ch.isalnum() or ch in "_-:."):
                word = self.name("a field value")
                parts.append(word if word.isdigit() else strings.get(word.lower(), word))
            else:
                raise self.error("expected a field value: {...}, \"...\", a number or a @string name")
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] == "#":
                self.pos += 1
                continue
            return "".join(parts)


def read_bibtex(text: str, path: Path, strict: bool) -> tuple[Records, list[Skipped]]:
    """Entries with `title` and `abstract` fields; @string macros honoured, @comment/@preamble ignored."""
    sc = _BibScanner(text, path)
    records = Records()
    skipped: list[Skipped] = []
    strings: dict[str, str] = {}
    for m in re.finditer(r"@\s*([a-zA-Z]+)\s*([{(])", text):
        if m.start() < sc.pos:
            continue  # an '@' inside the previous entry's text
        kind = m.group(1).lower()
        start_line = sc.line(m.start())
        sc.pos = m.end()
        closer = "}" if m.group(2) == "{" else ")"
        if kind in ("comment", "preamble"):
            sc.pos = m.end() - 1
            if m.group(2) == "{":
                sc.braced()
            continue
        try:
            fields: dict[str, str] = {}
            if kind != "string":
                sc.name("a citation key")
                sc.expect(",", "',' after the citation key")
            while True:
                sc.skip_space()
                if sc.pos < len(text) and text[sc.pos] == closer:
                    sc.pos += 1
                    break
                field_name = sc.name("a field name or the end of the entry").lower()
                sc.expect("=", f"'=' after the field name {field_name!r}")
                fields[field_name] = sc.value(strings)
                sc.skip_space()
                if sc.pos < len(text) and text[sc.pos] == ",":
                    sc.pos += 1
                elif sc.pos < len(text) and text[sc.pos] == closer:
                    sc.pos += 1
                    break
                else:
                    raise sc.error(f"expected ',' or '{closer}' after the field {field_name!r}")
        except CorpusFormatError as e:
            if strict:
                raise
            skipped.append((start_line, "", f"unreadable @{kind} entry: {e.reason} (line {e.line})"))
            nxt = re.compile(r"\n\s*@").search(text, sc.pos if sc.pos > m.end() else m.end())
            sc.pos = nxt.start() + 1 if nxt else len(text)
            continue
        if kind == "string":
            strings.update(fields)
            continue
        title, abstract = clean_latex(fields.get("title", "")), clean_latex(fields.get("abstract", ""))
        if not title or not abstract:
            missing = "title" if not title else "abstract"
            reason = f"expected {'an' if missing == 'abstract' else 'a'} '{missing}' field in the @{kind} entry"
            if strict:
                raise CorpusFormatError(path, start_line, reason)
            skipped.append((start_line, title, reason))
            continue
        records.append(start_line, title, abstract)
    return records, skipped


# --- tables: CSV, TSV, JSON, JSON Lines -------------------------------------------------------------

_TITLE_KEYS = ("title",)
_ABSTRACT_KEYS = ("abstract", "abstract note", "abstractnote", "summary")


def _pick(keys: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {k.strip().lower(): k for k in keys if isinstance(k, str)}
    for w in wanted:
        if w in lowered:
            return lowered[w]
    return None


def _columns(keys: list[str], path: Path, line: int) -> tuple[str, str]:
    t, a = _pick(keys, _TITLE_KEYS), _pick(keys, _ABSTRACT_KEYS)
    if t is None or a is None:
        shown = ", ".join(repr(k) for k in keys[:12])
        raise CorpusFormatError(path, line, f"expected columns 'title' and 'abstract' (any case), found {shown or 'none'}")
    return t, a


def read_delimited(text: str, path: Path, strict: bool, *, delimiter: str) -> tuple[Records, list[Skipped]]:
    """CSV or TSV with a header row; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CorpusFormatError(path, 1, "expected a header row with 'title' and 'abstract'") from None
    t_col, a_col = _columns(header, path, 1)
    ti, ai = header.index(t_col), header.index(a_col)
    records = Records()
    skipped: list[Skipped] = []
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if strict:
                raise CorpusFormatError(path, line, f"expected a well-formed {'TSV' if delimiter == chr(9) else 'CSV'} row: {e}") from None
            skipped.append((line, "", f"malformed row: {e}"))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            reason = f"expected {len(header)} fields as in the header, found {len(row)}"
            if strict:
                raise CorpusFormatError(path, start, reason)
            skipped.append((start, row[ti] if ti < len(row) else "", reason))
            continue
        records.append(start, row[ti], row[ai])
    return records, skipped


def _json_record(obj, path: Path, line: int, strict: bool, skipped: list[Skipped]) -> tuple[int, str, str] | None:
    if not isinstance(obj, dict):
        reason = f"expected an object with 'title' and 'abstract', found {type(obj).__name__}"
        if strict:
            raise CorpusFormatError(path, line, reason)
        skipped.append((line, "", reason))
        return None
    t, a = _pick(list(obj), _TITLE_KEYS), _pick(list(obj), _ABSTRACT_KEYS)
    if t is None or a is None:
        reason = f"expected keys 'title' and 'abstract', found {', '.join(map(repr, list(obj)[:12]))}"
        if strict:
            raise CorpusFormatError(path, line, reason)
        skipped.append((line, str(obj.get(t, "")) if t else "", reason))
        return None
    return line, str(obj[t] or ""), str(obj[a] or "")


def read_json(text: str, path: Path, strict: bool) -> tuple[Records, list[Skipped]]:
    """A JSON array of objects (or an object holding one under 'papers'/'items'/'records'/'data')."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorpusFormatError(path, e.lineno, f"expected valid JSON: {e.msg} (column {e.colno})") from None
    if isinstance(data, dict):
        key = next((k for k in ("papers", "items", "records", "data") if isinstance(data.get(k), list)), None)
        if key is None:
            raise CorpusFormatError(path, 1, "expected a JSON array of papers, or an object with a 'papers' array")
        data = data[key]
    if not isinstance(data, list):
        raise CorpusFormatError(path, 1, "expected a JSON array of papers")
    lines = _element_lines(text, len(data))
    records = Records()
    skipped: list[Skipped] = []
    for obj, line in zip(data, lines):
        rec = _json_record(obj, path, line, strict, skipped)
        if rec:
            records.append(*rec)
    return records, skipped


def _element_lines(text: str, n: int) -> list[int]:
    """The line on which each element of the (first) JSON array starts."""
    decoder = json.JSONDecoder()
    start = text.find("[") + 1
    # If the array sits inside an object, find the array that holds the elements.
    stripped = text.lstrip()
    if stripped.startswith("{"):
        for key in ("papers", "items", "records", "data"):
            m = re.search(r'"' + key + r'"\s*:\s*\[', text)
            if m:
                start = m.end()
                break
    pos, lines, counter = start, [], LineCounter(text)
    for _ in range(n):
        while text[pos] in " \t\r\n,":
            pos += 1
        lines.append(counter.at(pos))
        _, pos = decoder.raw_decode(text, pos)
    return lines


def read_jsonl(text: str, path: Path, strict: bool) -> tuple[Records, list[Skipped]]:
    """One JSON object per line; blank lines ignored."""
    records = Records()
    skipped: list[Skipped] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            reason = f"expected one JSON object on the line: {e.msg} (column {e.colno})"
            if strict:
                raise CorpusFormatError(path, line_no, reason) from None
            skipped.append((line_no, "", reason))
            continue
        rec = _json_record(obj, path, line_no, strict, skipped)
        if rec:
            records.append(*rec)
    return records, skipped
