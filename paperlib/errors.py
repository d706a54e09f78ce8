"""Errors paperlib raises for bad input: each names the file, the line and what was expected."""
from __future__ import annotations

from pathlib import Path


class PaperlibInputError(ValueError):
    """Bad input file; `.path` and `.line` say where (line is 1-based, None when not line-bound)."""

    def __init__(self, path: str | Path | None, line: int | None, message: str):
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = self.path or "<input>"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {message}")


class CorpusFormatError(PaperlibInputError):
    """A corpus file that cannot be read as the format it claims to be."""


class TaxonomyError(PaperlibInputError):
    """A taxonomy file that is malformed (names the tag and the line)."""


class DatasetError(PaperlibInputError):
    """A data file (IDX, download) that is truncated, corrupt or fails its checksum."""
