"""Numeric claims in abstracts ("90.0% on K400", "9.4x faster", "7.5x fewer parameters") as a tidy
table: paper_id, value, unit, context (the words after the number) and the sentence."""
from __future__ import annotations

import re

import pandas as pd

_URL = re.compile(r"https?://\S+|www\.\S+")
# Sentence ends: . ! ? followed by space and a capital, digit or bracket (decimals have no space).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")
# A number not glued to a capital (K400, V2 are names) or to another number; "and9.4x" still counts.
_NUMBER = r"(?<![\d.A-Z_-])(?P<value>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
# Longest spellings first so "percentage points" wins over "points".
_UNITS = [
    ("%", r"\s?%"), ("pp", r"\s?(?:percentage points?|pp\b|points?\b)"),
    ("x", r"\s?(?:×|x\b|X\b|-?fold\b|times\b)"),
    ("B", r"\s?(?:B\b|billion\b)"), ("M", r"\s?(?:M\b|million\b)"), ("K", r"\s?(?:K\b|thousand\b)"),
    ("T", r"\s?(?:T\b|trillion\b)"),
]
_UNIT_RE = "|".join(f"(?P<u{i}>{pat})" for i, (_, pat) in enumerate(_UNITS))
_CLAIM = re.compile(_NUMBER + r"(?:" + _UNIT_RE + r")")
_CONTEXT_WORD = re.compile(r"[^\s,;:()]+")
_CONTEXT_STOP = re.compile(r"[,;:()]|\s(?:and|while|but|which|with|compared|whereas)\b|\s[a-z]+\d")


def sentences(text: str) -> list[str]:
    """Split an abstract into sentences (never inside a decimal number)."""
    text = " ".join(_URL.sub(" ", text or "").split())
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _context(rest: str, max_words: int = 6) -> str:
    stop = _CONTEXT_STOP.search(rest)
    if stop:
        rest = rest[: stop.start()]
    words = _CONTEXT_WORD.findall(rest)[:max_words]
    return " ".join(words).rstrip(".!?")


def claims_in(text: str) -> list[dict]:
    """Claims of one text: dicts with value, unit, context and sentence."""
    out = []
    for sentence in sentences(text):
        found = list(_CLAIM.finditer(sentence))
        for m, nxt in zip(found, found[1:] + [None]):
            unit = next(_UNITS[i][0] for i in range(len(_UNITS)) if m.group(f"u{i}") is not None)
            value = float(m.group("value").replace(",", ""))
            rest = sentence[m.end(): nxt.start() if nxt is not None else None]
            out.append(dict(value=value, unit=unit, context=_context(rest), sentence=sentence))
    return out


def extract_claims(papers: pd.DataFrame) -> pd.DataFrame:
    """All numeric claims of the papers' abstracts, one row per claim, in abstract order."""
    if "abstract" not in papers.columns:
        raise ValueError("extract_claims needs an 'abstract' column")
    ids = papers["paper_id"].tolist() if "paper_id" in papers.columns else [str(i) for i in range(len(papers))]
    rows = [dict(paper_id=pid, **claim)
            for pid, abstract in zip(ids, papers["abstract"].tolist()) if isinstance(abstract, str)
            for claim in claims_in(abstract)]
    df = pd.DataFrame(rows, columns=["paper_id", "value", "unit", "context", "sentence"])
    return df.astype({"value": "float64"})
