"""paperlib: parse, tag and relate a corpus of papers on how models are trained,
and run small reproductions of their experiments.

The top-level names load their module on first use, so `import paperlib` stays cheap
(a notebook about EWC need not import scikit-learn's text stack, nor a corpus notebook torch).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    # corpus reading (issue 2)
    "CorpusFormatError": "errors", "DatasetError": "errors", "TaxonomyError": "errors",
    "LoadReport": "corpus", "load_corpus": "corpus", "load_corpus_with_report": "corpus",
    "default_corpus_path": "paths", "default_taxonomy_path": "paths", "data_home": "paths",
    # tagging and relations (issue 3)
    "Taxonomy": "taxonomy", "load_taxonomy": "taxonomy",
    "compute_tag_counts": "tagging", "evaluate_tags": "tagging", "load_gold": "tagging",
    "tag_papers": "tagging", "top_terms_by_tag": "tagging",
    "cluster_papers": "relate", "cluster_stability": "relate", "cluster_stability_pairs": "relate",
    "find_paper": "relate", "knn_graph": "relate", "paper_map": "relate", "similar": "relate",
    "tfidf_matrix": "relate",
    "extract_methods": "methods", "lineage_graph": "methods", "method_counts": "methods",
    "method_graph": "methods", "theme_cooccurrence": "methods",
    "extract_claims": "claims",
    # the notebook registry (issue 4)
    "load_registry": "registry",
    # experiments (issues 5-7)
    "load_dataset": "datasets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'paperlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .claims import extract_claims
    from .corpus import LoadReport, load_corpus, load_corpus_with_report
    from .datasets import load_dataset
    from .errors import CorpusFormatError, DatasetError, TaxonomyError
    from .methods import extract_methods, lineage_graph, method_counts, method_graph, theme_cooccurrence
    from .paths import data_home, default_corpus_path, default_taxonomy_path
    from .registry import load_registry
    from .relate import (cluster_papers, cluster_stability, cluster_stability_pairs, find_paper, knn_graph,
                         paper_map, similar, tfidf_matrix)
    from .tagging import compute_tag_counts, evaluate_tags, load_gold, tag_papers, top_terms_by_tag
    from .taxonomy import Taxonomy, load_taxonomy
