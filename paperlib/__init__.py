"""paperlib: parse, tag and relate a corpus of papers on how models are trained,
and run small reproductions of their experiments."""
from __future__ import annotations

from .errors import CorpusFormatError, DatasetError, TaxonomyError
from .corpus import LoadReport, load_corpus, load_corpus_with_report
from .paths import default_corpus_path, default_taxonomy_path
from .taxonomy import Taxonomy, load_taxonomy
from .tagging import compute_tag_counts, evaluate_tags, load_gold, tag_papers, top_terms_by_tag
from .relate import (cluster_papers, cluster_stability, cluster_stability_pairs, find_paper, knn_graph,
                     paper_map, similar, tfidf_matrix)
from .methods import extract_methods, lineage_graph, method_counts, method_graph, theme_cooccurrence
from .claims import extract_claims

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
    # tagging and relations (issue 3)
    "Taxonomy",
    "cluster_papers",
    "cluster_stability",
    "cluster_stability_pairs",
    "compute_tag_counts",
    "evaluate_tags",
    "extract_claims",
    "extract_methods",
    "find_paper",
    "knn_graph",
    "lineage_graph",
    "load_gold",
    "load_taxonomy",
    "method_counts",
    "method_graph",
    "paper_map",
    "similar",
    "tag_papers",
    "tfidf_matrix",
    "theme_cooccurrence",
    "top_terms_by_tag",
]
