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
    # reading corpora
    "CorpusFormatError": "errors", "DatasetError": "errors", "TaxonomyError": "errors",
    "LoadReport": "corpus.reader", "load_corpus": "corpus.reader", "load_corpus_with_report": "corpus.reader",
    "default_corpus_path": "paths", "default_taxonomy_path": "paths", "data_home": "paths",
    # tagging and relations
    "Taxonomy": "corpus.taxonomy", "load_taxonomy": "corpus.taxonomy",
    "compute_tag_counts": "corpus.tagging", "evaluate_tags": "corpus.tagging", "load_gold": "corpus.tagging",
    "tag_papers": "corpus.tagging", "top_terms_by_tag": "corpus.tagging",
    "cluster_papers": "corpus.relate", "cluster_stability": "corpus.relate", "cluster_stability_pairs": "corpus.relate",
    "find_paper": "corpus.relate", "knn_graph": "corpus.relate", "paper_map": "corpus.relate", "similar": "corpus.relate",
    "tfidf_matrix": "corpus.relate", "PaperIndex": "corpus.relate", "similar_to_text": "corpus.relate",
    "cross_validate_tags": "corpus.evaluation", "neighbour_quality": "corpus.evaluation",
    "kind_confusion": "corpus.evaluation", "ExampleScorer": "corpus.semantic",
    "extract_methods": "corpus.methods", "lineage_graph": "corpus.methods", "method_counts": "corpus.methods",
    "method_graph": "corpus.methods", "theme_cooccurrence": "corpus.methods",
    "extract_mentions": "corpus.methods", "method_network": "corpus.methods", "evaluate_mentions": "corpus.methods",
    "labels_as_mentions": "corpus.methods",
    "load_vocabulary": "corpus.vocabulary", "VocabularyError": "corpus.vocabulary",
    "extract_claims": "corpus.claims",
    "plan_sessions": "corpus.sessions",
    # the notebook registry and reading lists
    "load_registry": "site.registry",
    "reading_list": "site.reading",
    # experiments
    "load_dataset": "experiments.datasets",
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
    from paperlib.corpus.claims import extract_claims
    from paperlib.corpus.reader import LoadReport, load_corpus, load_corpus_with_report
    from paperlib.experiments.datasets import load_dataset
    from paperlib.errors import CorpusFormatError, DatasetError, TaxonomyError
    from paperlib.corpus.methods import extract_methods, lineage_graph, method_counts, method_graph, theme_cooccurrence
    from paperlib.corpus.methods import evaluate_mentions, extract_mentions, labels_as_mentions, method_network
    from paperlib.corpus.vocabulary import VocabularyError, load_vocabulary
    from paperlib.paths import data_home, default_corpus_path, default_taxonomy_path
    from paperlib.corpus.sessions import plan_sessions
    from paperlib.site.reading import reading_list
    from paperlib.site.registry import load_registry
    from paperlib.corpus.relate import (PaperIndex, cluster_papers, cluster_stability, cluster_stability_pairs, find_paper,
                         knn_graph, paper_map, similar, similar_to_text, tfidf_matrix)
    from paperlib.corpus.evaluation import cross_validate_tags, kind_confusion, neighbour_quality
    from paperlib.corpus.semantic import ExampleScorer
    from paperlib.corpus.tagging import compute_tag_counts, evaluate_tags, load_gold, tag_papers, top_terms_by_tag
    from paperlib.corpus.taxonomy import Taxonomy, load_taxonomy
