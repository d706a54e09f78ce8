"""paperlib: parse, tag and relate a corpus of papers on how models are trained,
and run small reproductions of their experiments."""
from __future__ import annotations

from .errors import CorpusFormatError, DatasetError, TaxonomyError
from .corpus import LoadReport, load_corpus, load_corpus_with_report
from .paths import default_corpus_path, default_taxonomy_path

__version__ = "0.1.0"

__all__ = [
    "CorpusFormatError",
    "DatasetError",
    "LoadReport",
    "TaxonomyError",
    "default_corpus_path",
    "default_taxonomy_path",
    "load_corpus",
    "load_corpus_with_report",
]
