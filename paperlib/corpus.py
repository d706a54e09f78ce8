"""Placeholder while the full parser is written (lead is replacing this file)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class LoadReport:
    records_read: int = 0
    duplicates: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def _pid(title: str) -> str:
    return hashlib.sha1(" ".join(title.lower().split()).encode()).hexdigest()[:12]


def load_corpus_with_report(path, *, encoding="utf-8", strict=True, format=None):
    lines = [l.strip() for l in Path(path).read_text(encoding=encoding).splitlines()]
    lines = [l for l in lines[2:] if l]
    lines[0] = lines[0].removeprefix("Subscribe")
    rows = [dict(paper_id=_pid(t), title=t, abstract=a, source=str(path), line=3 + 2 * i)
            for i, (t, a) in enumerate(zip(lines[::2], lines[1::2]))]
    return pd.DataFrame(rows), LoadReport(len(rows))


def load_corpus(path, *, encoding="utf-8", strict=True, format=None):
    return load_corpus_with_report(path, encoding=encoding, strict=strict, format=format)[0]
