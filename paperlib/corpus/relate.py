"""Relate papers: nearest neighbours with a "why related" line, clusters with automatic labels
and their stability across seeds, and a 2-D map.

Two papers are compared by a weighted mean of cosines: of their TF-IDF vectors (words and
two-word phrases), of their theme profiles (the tagger's score for each theme, when the papers
are tagged) and, with the `[embeddings]` extra, of their sentence embeddings (meaning). Each
part is a block of one vector per paper, scaled by the square root of its weight, so one dot
product gives the whole similarity and every search below works on the joined vectors.

`PaperIndex` holds what is fitted once per corpus (the vectorizer, the vectors) and what is
derived from it on first use (neighbours, clusters, the map). The functions below give the same
tables from papers alone; pass `index=` to reuse a fitted index across calls.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from functools import partial
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from paperlib.corpus.embeddings import embed_texts
from paperlib.corpus.reader import normalise_title
from paperlib.corpus.tagging import as_list, tag_papers
from paperlib.corpus.taxonomy import Taxonomy, load_taxonomy
from paperlib.corpus.terms import analyse, class_tfidf_terms, overlaps, paper_texts

_EXACT_LIMIT = 5_000  # above this many papers neighbours are searched within groups, not all pairs
# Clusters: the consensus of many k-means runs on the exact LSA of the TF-IDF vectors (30
# dimensions) joined with the theme profiles. On the shipped corpus (11 clusters, seeds 0-4) the
# mean adjusted Rand index between seeds was 0.43 for one k-means run on a seeded 20-dim LSA,
# 0.77 for the consensus on words alone and 0.89 with the theme profiles.
_CLUSTER_DIMS = 30
_CONSENSUS_LIMIT = 2_000  # above this many papers one k-means (best of 10 starts) replaces the consensus
_MAP_DIMS = 50  # LSA dimensions the t-SNE map starts from
_PHRASE_LIMIT = 20_000  # above this many papers TF-IDF uses single words only (half the cost)


def _threads_for(n_rows: int):
    """One BLAS/OpenMP thread for small problems: on a shared machine their spin-waits cost more
    than the parallelism gains (t-SNE of 257 papers: 38 s with all threads, 3 s with one)."""
    return threadpool_limits(limits=1) if n_rows < 20_000 else nullcontext()


def _vectorise(texts: list[str], ngram_range=None, min_df=None, max_df=None):
    """(CSR matrix with L2-normalised rows, fitted TfidfVectorizer) of the texts."""
    if not texts:
        raise ValueError("no papers to vectorise")
    if ngram_range is None:
        ngram_range = (1, 2) if len(texts) <= _PHRASE_LIMIT else (1, 1)
    if ngram_range[0] != 1:
        raise ValueError(f"ngram_range must start at 1, got {tuple(ngram_range)}")
    big = len(texts) >= 50
    vec = TfidfVectorizer(
        analyzer=partial(analyse, ngram_max=ngram_range[1]), sublinear_tf=True,
        min_df=min_df if min_df is not None else (2 if big else 1),
        max_df=max_df if max_df is not None else (0.5 if big else 1.0),
        dtype=np.float32,
    )
    try:
        matrix = vec.fit_transform(texts)
    except ValueError as exc:  # every word is a stop word or too rare
        raise ValueError(f"cannot build TF-IDF vectors: {exc}") from None
    return matrix.tocsr(), vec


def tfidf_matrix(papers: pd.DataFrame, *, ngram_range=None, min_df=None, max_df=None):
    """(sparse matrix with L2-normalised rows, fitted TfidfVectorizer) for title + abstract.

    Defaults adapt to corpus size: words and two-word phrases up to 20k papers, words only above;
    terms in at least 2 papers and at most half of them once there are 50 papers or more, every
    term otherwise (small hand-made corpora).
    """
    return _vectorise(paper_texts(papers), ngram_range, min_df, max_df)


def find_paper(papers: pd.DataFrame, query: str) -> int:
    """Row position of a paper given its paper_id, its title (case, accents and punctuation
    ignored), or words of its title (all must appear; an ambiguous query lists the candidates)."""
    ids = papers["paper_id"].astype(str).tolist() if "paper_id" in papers.columns else []
    if query in ids:
        return ids.index(query)
    titles = papers["title"].astype(str).tolist()
    norm = [normalise_title(t) for t in titles]
    q = normalise_title(query)
    if q in norm:
        return norm.index(q)
    words = q.split()
    hits = [i for i, t in enumerate(norm) if words and all(w in t for w in words)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise KeyError(f"no paper with id or title matching {query!r}")
    shown = "; ".join(repr(titles[i]) for i in hits[:5])
    raise KeyError(f"{len(hits)} papers match {query!r}: {shown}{' ...' if len(hits) > 5 else ''}; be more specific")


def _locate_exact(ids: list[str], titles: list[str], paper: str) -> int:
    """Row of the paper whose id, title or normalised title is `paper`."""
    if paper in ids:
        return ids.index(paper)
    if paper in titles:
        return titles.index(paper)
    q = normalise_title(paper)
    for i, t in enumerate(titles):
        if normalise_title(t) == q:
            return i
    raise KeyError(f"no paper with paper_id or exact title {paper!r} (find_paper accepts title words)")


def _tag_info(papers: pd.DataFrame, taxonomy: Taxonomy | str | Path | None,
              profile_facet: str | None) -> tuple[list[set[str]], np.ndarray | None]:
    """Per paper, the tags "why related" compares (those of the taxonomy's multi-tag facets, less
    each facet's default tag: "general" says nothing about two papers), and the papers' profiles
    on `profile_facet` (rows of positive tag scores, L2-normalised; None when the papers carry no
    scores or the taxonomy has no such facet).

    With a taxonomy, papers that lack one of its facet columns are tagged with it first. Without
    one, the shipped taxonomy only names the columns to read: papers without them have no tags.
    """
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    if taxonomy is not None and not set(tax.facet_names) <= set(papers.columns):
        papers = tag_papers(papers, tax)
    facets = [(f.name, f.default) for f in tax.facets if f.select == "multi" and f.name in papers.columns]
    sets = [set() for _ in range(len(papers))]
    for name, default in facets:
        for tags, value in zip(sets, papers[name].tolist()):
            tags.update(t for t in as_list(value) if t != default)
    profiles = None
    if profile_facet and profile_facet in tax.facet_names and {"scores", profile_facet} <= set(papers.columns):
        names = [t for t in tax.facet(profile_facet).tag_names if t != tax.facet(profile_facet).default]
        rows = [v if isinstance(v, dict) else {} for v in papers["scores"].tolist()]
        profiles = np.array([[max(0.0, float(r.get(t, 0.0))) for t in names] for r in rows], dtype=np.float32)
        profiles = normalize(profiles) if profiles.size and profiles.any() else None
    return sets, profiles


def why_related(similarity: float, shared_terms=(), shared_tags=()) -> str:
    """The "why related" line of two papers: their cosine, the terms that weigh most in both, the
    tags both carry."""
    why = f"cosine {similarity:.2f}"
    if shared_terms:
        why += "; shared terms: " + ", ".join(shared_terms)
    if shared_tags:
        why += "; both tagged " + ", ".join(shared_tags)
    return why


def _shared_terms(matrix, terms, sources: np.ndarray, targets: np.ndarray, n_terms: int,
                  chunk: int = 20_000) -> list[list[str]]:
    """For each pair of rows, up to `n_terms` terms by weight in both (product of their TF-IDF
    weights), skipping a term that repeats a chosen one."""
    out: list[list[str]] = []
    for start in range(0, len(sources), chunk):
        stop = start + chunk
        out += _top_terms(matrix[sources[start:stop]].multiply(matrix[targets[start:stop]]).tocsr(), terms, n_terms)
    return out


def _top_terms(weights, terms, n_terms: int) -> list[list[str]]:
    """For each row of a sparse CSR matrix of term weights, up to `n_terms` terms by weight,
    skipping a term that repeats a chosen one."""
    out: list[list[str]] = []
    for r in range(weights.shape[0]):
        lo, hi = weights.indptr[r], weights.indptr[r + 1]
        chosen: list[str] = []
        for t in weights.indices[lo:hi][np.argsort(-weights.data[lo:hi], kind="stable")]:
            if len(chosen) == n_terms:
                break
            if not overlaps(str(terms[t]), chosen):
                chosen.append(str(terms[t]))
        out.append(chosen)
    return out


class PaperIndex(BaseEstimator):
    """The vectors of a corpus, fitted once, with its neighbours, clusters and map on demand.

    Parameters: `taxonomy` (a `Taxonomy` or YAML path) gives the tags the "why related" line
    compares: papers not tagged with it are tagged on fit; without one, the tags the papers carry
    on the shipped taxonomy's facets are read and untagged papers are related by words only.
    `ngram_range`, `min_df`, `max_df` as in `tfidf_matrix`; `n_neighbors`, `n_clusters` (None:
    `default_n_clusters`) and `map_method` ("tsne" or "svd") shape `neighbours_`, `cluster_labels_`
    and `map_`; `random_state` seeds all three.

    How papers are compared: `tag_weight` is the share of the theme profiles (the tags of
    `tag_facet`) in every similarity when the papers carry tag scores (0 turns it off);
    `embeddings="minilm"` (the `[embeddings]` extra) adds sentence embeddings, taking
    `embedding_weight` of the text's share from TF-IDF. `consensus_runs` k-means runs make one
    clustering (their consensus), so that clusters depend little on the seed.

    Learned on fit: `vectorizer_`, `tfidf_` (rows L2-normalised), `terms_`, `paper_ids_`,
    `titles_`, `texts_`, `tag_sets_`, `profiles_` (theme profiles or None), `embeddings_` (or
    None), `weights_` (share of words, meaning and themes) and `vectors_` (the joined vectors
    whose dot products are the similarities). Computed on first use and kept: `neighbours_`
    ((indices, similarities), each n x n_neighbors), `cluster_labels_` (0 = largest cluster)
    and `map_` (n x 2 coordinates).
    """

    def __init__(self, *, taxonomy: Taxonomy | str | Path | None = None, ngram_range=None, min_df=None,
                 max_df=None, n_neighbors: int = 10, n_clusters: int | None = None, map_method: str = "tsne",
                 random_state: int = 0, tag_weight: float = 0.3, tag_facet: str | None = "theme",
                 embeddings: str | None = None, embedding_weight: float = 0.5, consensus_runs: int = 50):
        self.taxonomy = taxonomy
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.n_neighbors = n_neighbors
        self.n_clusters = n_clusters
        self.map_method = map_method
        self.random_state = random_state
        self.tag_weight = tag_weight
        self.tag_facet = tag_facet
        self.embeddings = embeddings
        self.embedding_weight = embedding_weight
        self.consensus_runs = consensus_runs

    def fit(self, papers: pd.DataFrame, y=None) -> PaperIndex:
        """Vectorise the papers' titles and abstracts, read (or make) their tags and join the vectors."""
        if self.embeddings not in (None, "minilm"):
            raise ValueError(f"embeddings must be None or 'minilm', got {self.embeddings!r}")
        if not 0 <= self.tag_weight < 1 or not 0 <= self.embedding_weight <= 1:
            raise ValueError("tag_weight must be in [0, 1) and embedding_weight in [0, 1]")
        self.texts_ = paper_texts(papers)
        self.tfidf_, self.vectorizer_ = _vectorise(self.texts_, self.ngram_range, self.min_df, self.max_df)
        self.terms_ = self.vectorizer_.get_feature_names_out()
        self.paper_ids_ = (papers["paper_id"].to_numpy() if "paper_id" in papers.columns
                           else np.array([str(i) for i in range(len(papers))], dtype=object))
        self.titles_ = papers["title"].to_numpy()
        self.tag_sets_, profiles = _tag_info(papers, self.taxonomy, self.tag_facet if self.tag_weight else None)
        self.profiles_ = profiles
        self.embeddings_ = embed_texts(self.texts_) if self.embeddings == "minilm" else None
        themes = self.tag_weight if profiles is not None else 0.0
        meaning = (1 - themes) * self.embedding_weight if self.embeddings_ is not None else 0.0
        self.weights_ = {"words": 1.0 - themes - meaning, "meaning": meaning, "themes": themes}
        self.vectors_ = self._join(self.tfidf_, self.embeddings_, profiles)
        self._computed: dict = {}
        return self

    def _join(self, tfidf, embeddings, profiles):
        """The blocks of one or more papers, each scaled by the square root of its weight."""
        w = self.weights_
        if w["meaning"] == 0 and w["themes"] == 0:
            return tfidf
        blocks = [tfidf * np.float32(math.sqrt(w["words"]))]
        if w["meaning"]:
            blocks.append(sp.csr_matrix(embeddings * np.float32(math.sqrt(w["meaning"]))))
        if w["themes"]:
            blocks.append(sp.csr_matrix(profiles * np.float32(math.sqrt(w["themes"]))))
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def query_vector(self, text: str):
        """The joined vector of a free text (words, and meaning with embeddings; no themes)."""
        self._fitted()
        tfidf = self.vectorizer_.transform([text]).astype(np.float32)
        emb = embed_texts([text]) if self.embeddings_ is not None else None
        prof = np.zeros((1, self.profiles_.shape[1]), dtype=np.float32) if self.weights_["themes"] else None
        return self._join(tfidf.tocsr(), emb, prof)

    def similarity_matrix(self) -> np.ndarray:
        """All pairwise similarities (n x n, dense): for small corpora and evaluation."""
        v = self._fitted().vectors_
        return np.asarray((v @ v.T).toarray(), dtype=np.float64)

    # ---- learned state computed on first use

    @property
    def neighbours_(self) -> tuple[np.ndarray, np.ndarray]:
        return self._neighbours(min(self.n_neighbors, len(self._fitted().paper_ids_) - 1), self.random_state)

    @property
    def cluster_labels_(self) -> np.ndarray:
        return self._cluster_labels(_check_clusters(len(self._fitted().paper_ids_), self.n_clusters),
                                    self.random_state)

    @property
    def map_(self) -> np.ndarray:
        return self._coords(self.map_method, self.random_state)

    # ---- cached pieces, keyed by their arguments

    def _fitted(self) -> PaperIndex:
        if not hasattr(self, "tfidf_"):
            raise NotFittedError("this PaperIndex is not fitted yet; call .fit(papers) first")
        return self

    def _memo(self, key: tuple, compute):
        done = self._fitted()._computed
        if key not in done:
            done[key] = compute()
        return done[key]

    def _neighbours(self, k: int, seed: int):
        exact = self.vectors_.shape[0] <= _EXACT_LIMIT  # the exact search uses no randomness
        return self._memo(("neighbours", k, None if exact else seed),
                          lambda: nearest_neighbours(self.vectors_, k, seed=seed))

    def _lsa(self, dims: int, seed: int) -> np.ndarray:
        return self._memo(("lsa", dims, seed), lambda: _lsa(self.tfidf_, seed, dims))

    def _features(self, text_dims: int, seed: int | None) -> np.ndarray:
        """Dense rows for clusters and the map: the LSA of the TF-IDF vectors (exact when `seed`
        is None), joined with the embeddings and theme profiles under the index's weights."""
        def compute():
            low = _lsa_exact(self.tfidf_, text_dims) if seed is None else self._lsa(text_dims, seed)
            w = self.weights_
            parts = [low * math.sqrt(w["words"])]
            if w["meaning"]:
                parts.append(self.embeddings_ * math.sqrt(w["meaning"]))
            if w["themes"]:
                parts.append(self.profiles_ * math.sqrt(w["themes"]))
            return np.hstack(parts).astype(np.float64) if len(parts) > 1 else low
        return self._memo(("features", text_dims, seed), compute)

    def _cluster_labels(self, n_clusters: int, seed: int) -> np.ndarray:
        return self._memo(("clusters", n_clusters, seed, self.consensus_runs),
                          lambda: _consensus_labels(self._features(_CLUSTER_DIMS, None), n_clusters, seed,
                                                    self.consensus_runs))

    def _coords(self, method: str, seed: int) -> np.ndarray:
        if method not in ("tsne", "svd"):
            raise ValueError(f"method must be 'tsne' or 'svd', got {method!r}")
        n = self._fitted().tfidf_.shape[0]
        if n < 3:
            raise ValueError(f"need at least 3 papers for a map, got {n}")
        return self._memo(("map", method, seed), lambda: _map_coords(self, method, seed))

    def _explain(self, sources: np.ndarray, targets: np.ndarray, n_terms: int) -> tuple[list, list]:
        """(shared terms, shared tags) of each pair of rows."""
        terms = _shared_terms(self.tfidf_, self.terms_, sources, targets, n_terms)
        tags = [sorted(self.tag_sets_[i] & self.tag_sets_[j]) for i, j in zip(sources.tolist(), targets.tolist())]
        return terms, tags


def _index_for(papers: pd.DataFrame, index: PaperIndex | None, taxonomy=None) -> PaperIndex:
    """`index` checked against `papers`, or a new index fitted on them."""
    if index is None:
        return PaperIndex(taxonomy=taxonomy).fit(papers)
    if taxonomy is not None:
        raise ValueError("give the taxonomy to PaperIndex(taxonomy=...) when passing an index")
    index._fitted()
    ids = papers["paper_id"].to_numpy() if "paper_id" in papers.columns else None
    if len(papers) != len(index.paper_ids_) or (ids is not None and not np.array_equal(ids, index.paper_ids_)):
        raise ValueError("the index was fitted on other papers than these (paper ids differ); "
                         "fit one on these: PaperIndex().fit(papers)")
    return index


def similar(papers: pd.DataFrame, paper: str, k: int = 10, *, n_terms: int = 5,
            taxonomy: Taxonomy | str | Path | None = None, index: PaperIndex | None = None) -> pd.DataFrame:
    """The k papers closest to `paper`, each with the terms that weigh most in both and the tags
    both share ("why related").

    `paper` is a paper_id or a title; any other text is a query in words ("elastic weight
    consolidation"): the papers are then ranked by their similarity to the text itself, and
    `result.attrs["query"]` says so ("paper" or "text"). The similarity is the index's weighted
    mean of cosines (words; themes when the papers are tagged; meaning with embeddings), shown as
    "cosine" in the why line.

    Tags come from tagged papers (`tag_papers`), or from `taxonomy`, which tags papers that lack
    its facets. Untagged papers without a taxonomy are related by their words alone: shared_tags
    stays empty and nothing is tagged behind the caller's back. `index`: a `PaperIndex` fitted on
    these papers, to reuse across calls (its taxonomy applies).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ids = papers["paper_id"].astype(str).tolist() if "paper_id" in papers.columns else []
    try:
        i = _locate_exact(ids, papers["title"].astype(str).tolist(), paper)
    except KeyError:
        return similar_to_text(papers, paper, k, n_terms=n_terms, taxonomy=taxonomy, index=index)
    index = _index_for(papers, index, taxonomy)
    matrix = index.vectors_
    sims = (matrix @ matrix[i].T).toarray().ravel()
    sims[i] = -np.inf
    order = np.argsort(-sims, kind="stable")[: min(k, len(sims) - 1)]
    terms, tags = index._explain(np.full(len(order), i), order, n_terms)
    out = pd.DataFrame({
        "paper_id": index.paper_ids_[order], "title": index.titles_[order],
        "similarity": [float(sims[j]) for j in order], "shared_terms": terms, "shared_tags": tags,
        "why": [why_related(sims[j], a, b) for j, a, b in zip(order, terms, tags)],
    }, columns=["paper_id", "title", "similarity", "shared_terms", "shared_tags", "why"])
    out.attrs["query"] = "paper"
    return out


def similar_to_text(papers: pd.DataFrame, text: str, k: int = 10, *, n_terms: int = 5,
                    taxonomy: Taxonomy | str | Path | None = None, index: PaperIndex | None = None) -> pd.DataFrame:
    """The k papers closest to a text in words (a phrase, a sentence, an abstract), with the terms
    of the text that weigh most in each; the columns of `similar`, `attrs["query"] == "text"`.

    A text none of whose words occur in the corpus raises KeyError."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    index = _index_for(papers, index, taxonomy)
    q = index.query_vector(text)
    words = index.vectorizer_.transform([text])
    if words.nnz == 0:
        raise KeyError(f"no paper with id or title matching {text!r}, and none of its words is in the papers")
    sims = np.asarray((index.vectors_ @ q.T).toarray()).ravel()
    order = np.argsort(-sims, kind="stable")[: min(k, len(sims))]
    terms = _top_terms(index.tfidf_[order].multiply(words.astype(np.float32)).tocsr(), index.terms_, n_terms)
    out = pd.DataFrame({
        "paper_id": index.paper_ids_[order], "title": index.titles_[order],
        "similarity": [float(sims[j]) for j in order], "shared_terms": terms,
        "shared_tags": [[] for _ in order],
        "why": [why_related(sims[j], a) for j, a in zip(order, terms)],
    }, columns=["paper_id", "title", "similarity", "shared_terms", "shared_tags", "why"])
    out.attrs["query"] = "text"
    return out


def _top_k_rows(block: np.ndarray, k: int, offset: np.ndarray | None):
    """Top-k columns per row of a dense similarity block, ties broken by column index."""
    k = min(k, block.shape[1])
    part = np.argpartition(-block, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(block, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    return (offset[idx] if offset is not None else idx), vals


def nearest_neighbours(matrix, k: int = 10, *, chunk: int = 2000, exact: bool | None = None, seed: int = 0):
    """(indices, similarities), each (n, k): every row's k most cosine-similar other rows.

    Rows must be L2-normalised (as tfidf_matrix returns them). Up to 5,000 rows this is
    exact, by chunks of sparse dot products (memory chunk x n, never n x n). Above it, rows are
    grouped by k-means on a low-rank projection and compared with the rows of their own and the
    nearest groups only, so cost grows close to linearly; similarities are still exact cosines.
    """
    matrix = sp.csr_matrix(matrix) if not sp.issparse(matrix) else matrix.tocsr()
    n = matrix.shape[0]
    if n < 2:
        raise ValueError("need at least two rows to find neighbours")
    k = min(k, n - 1)
    if exact is None:
        exact = n <= _EXACT_LIMIT
    if exact:
        return _knn_exact(matrix, k, chunk)
    return _knn_grouped(matrix, k, seed)


def _knn_exact(matrix, k, chunk):
    n = matrix.shape[0]
    idx_out = np.empty((n, k), dtype=np.int64)
    sim_out = np.empty((n, k), dtype=np.float32)
    t = matrix.T.tocsc()
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = (matrix[start:stop] @ t).toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        idx, vals = _top_k_rows(block, k, None)
        idx_out[start:stop], sim_out[start:stop] = idx, vals
    return idx_out, sim_out


def _knn_grouped(matrix, k, seed, *, dims: int = 64, probes: int = 3, fit_rows: int = 5000):
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD

    n = matrix.shape[0]
    rng = np.random.default_rng(seed)
    n_groups = max(2, int(math.sqrt(n)))
    # One thread: on a shared machine BLAS/OpenMP spin-waits cost more than they gain here.
    with threadpool_limits(limits=1):
        # The projection is learnt on a sample of rows, then applied to all (cost linear in n).
        sample = np.sort(rng.choice(n, size=min(n, fit_rows), replace=False))
        dims = max(1, min(dims, matrix.shape[1] - 1, len(sample) - 1))
        svd = TruncatedSVD(n_components=dims, n_iter=3, random_state=seed).fit(matrix[sample])
        low = normalize(svd.transform(matrix)).astype(np.float32)
        km = MiniBatchKMeans(n_clusters=n_groups, random_state=seed, batch_size=2048, n_init=1,
                             max_iter=20).fit(low)
    labels = km.labels_
    centres = normalize(km.cluster_centers_).astype(np.float32)
    # Each group is searched against the members of its `probes` nearest groups (itself first).
    near = np.argsort(-(centres @ centres.T), axis=1)[:, :probes]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_groups + 1))
    members = [order[bounds[g]:bounds[g + 1]] for g in range(n_groups)]
    idx_out = np.zeros((n, k), dtype=np.int64)
    sim_out = np.full((n, k), -np.inf, dtype=np.float32)
    for g in range(n_groups):
        rows = members[g]
        if rows.size == 0:
            continue
        cand = np.sort(np.concatenate([members[h] for h in near[g]]))
        block = (matrix[rows] @ matrix[cand].T).toarray()
        block[rows[:, None] == cand[None, :]] = -np.inf
        idx, vals = _top_k_rows(block, k, cand)
        kk = idx.shape[1]
        idx_out[rows, :kk], sim_out[rows, :kk] = idx, vals
    return idx_out, sim_out


def _edges(ids: np.ndarray, idx: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
    n, kk = idx.shape
    return pd.DataFrame({
        "source": np.repeat(ids, kk), "target": ids[idx.ravel()],
        "similarity": sims.ravel().astype(float), "rank": np.tile(np.arange(1, kk + 1), n),
    })


def knn_graph(papers: pd.DataFrame, k: int = 10, *, matrix=None, seed: int = 0,
              index: PaperIndex | None = None) -> pd.DataFrame:
    """The k-nearest-neighbour graph as a tidy edge table: source, target (paper ids), similarity, rank.

    `matrix`: row vectors to use instead of the papers' TF-IDF; `index`: a fitted `PaperIndex` to reuse.
    """
    if matrix is not None:
        idx, sims = nearest_neighbours(matrix, k, seed=seed)
        return _edges(papers["paper_id"].to_numpy(), idx, sims)
    index = _index_for(papers, index)
    idx, sims = index._neighbours(min(k, len(index.paper_ids_) - 1), seed)
    return _edges(index.paper_ids_, idx, sims)


def neighbour_table(papers: pd.DataFrame, k: int = 5, *, n_terms: int = 5, seed: int = 0,
                    taxonomy: Taxonomy | str | Path | None = None, index: PaperIndex | None = None) -> pd.DataFrame:
    """Every paper's k nearest papers with why each is related, as `similar` gives them one paper
    at a time: paper_id, rank, neighbour_id, neighbour_title, similarity, shared_terms, shared_tags, why."""
    index = _index_for(papers, index, taxonomy)
    n = len(index.paper_ids_)
    idx, sims = index._neighbours(min(k, n - 1), seed)
    sources, targets = np.repeat(np.arange(n), idx.shape[1]), idx.ravel()
    terms, tags = index._explain(sources, targets, n_terms)
    similarity = sims.ravel()
    return pd.DataFrame({
        "paper_id": index.paper_ids_[sources], "rank": np.tile(np.arange(1, idx.shape[1] + 1), n),
        "neighbour_id": index.paper_ids_[targets], "neighbour_title": index.titles_[targets],
        "similarity": similarity.astype(float), "shared_terms": terms, "shared_tags": tags,
        "why": [why_related(s, a, b) for s, a, b in zip(similarity, terms, tags)],
    })


def _lsa_exact(matrix, dims: int) -> np.ndarray:
    """Rows projected on the top `dims` singular vectors, L2-normalised: an exact truncated SVD
    (ARPACK, fixed start) up to 20,000 rows, so no seed moves it; a randomised one above."""
    from scipy.sparse.linalg import svds

    n, m = matrix.shape
    dims = max(1, min(dims, n - 1, m - 1))
    with _threads_for(n):
        if n > 20_000:
            from sklearn.decomposition import TruncatedSVD

            return normalize(TruncatedSVD(n_components=dims, random_state=0).fit_transform(matrix))
        v0 = np.full(min(n, m), 1.0 / math.sqrt(min(n, m)))
        u, s, _ = svds(matrix.astype(np.float64), k=dims, v0=v0)
    order = np.argsort(-s, kind="stable")
    low = u[:, order] * s[order]
    # Each singular vector's sign is arbitrary: fix it so the largest entry is positive.
    signs = np.sign(low[np.abs(low).argmax(axis=0), np.arange(low.shape[1])])
    return normalize(low * np.where(signs == 0, 1.0, signs))


def _lsa(matrix, seed: int, dims: int = 50) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD

    dims = max(1, min(dims, matrix.shape[0] - 1, matrix.shape[1] - 1))
    with _threads_for(matrix.shape[0]):
        return normalize(TruncatedSVD(n_components=dims, random_state=seed).fit_transform(matrix))


def default_n_clusters(n_papers: int) -> int:
    """sqrt(n / 2) clusters, at least 2: 11 for the 257-paper corpus."""
    return max(2, round(math.sqrt(n_papers / 2)))


def _kmeans_labels(low: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    with threadpool_limits(limits=1):
        labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(low)
    return _relabel_by_size(labels, n_clusters)


def _consensus_labels(features: np.ndarray, n_clusters: int, seed: int, runs: int) -> np.ndarray:
    """Consensus clustering: `runs` k-means runs (one start each, seeds drawn from `seed`) count
    how often each pair of papers falls together; spectral clustering of that agreement gives the
    clusters (average linkage on it left single papers as clusters of their own). Above 2,000
    papers (or with runs < 2): one k-means, best of 10 starts."""
    from sklearn.cluster import KMeans, SpectralClustering

    n = features.shape[0]
    if runs < 2 or n > _CONSENSUS_LIMIT:
        return _kmeans_labels(features, n_clusters, seed)
    rng = np.random.default_rng(seed)
    together = np.zeros((n, n), dtype=np.float32)
    with threadpool_limits(limits=1):
        for _ in range(runs):
            labels = KMeans(n_clusters=n_clusters, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit_predict(features)
            together += labels[:, None] == labels[None, :]
    # a faint link between every pair keeps the graph connected when groups never meet
    affinity = together.astype(np.float64) / runs + 1e-6
    with threadpool_limits(limits=1):
        labels = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", assign_labels="discretize",
                                    random_state=0).fit_predict(affinity)
    return _relabel_by_size(labels, n_clusters)


def _relabel_by_size(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Clusters numbered by size (largest 0), ties by first member, so labels read the same across runs."""
    sizes = np.bincount(labels, minlength=n_clusters)
    first = np.array([np.flatnonzero(labels == c)[0] if sizes[c] else len(labels) for c in range(n_clusters)])
    order = np.lexsort((first, -sizes))
    rank = np.empty(n_clusters, dtype=np.int64)
    rank[order] = np.arange(n_clusters)
    return rank[labels]


def _check_clusters(n_papers: int, n_clusters: int | None) -> int:
    n_clusters = default_n_clusters(n_papers) if n_clusters is None else n_clusters
    if n_papers < 3:
        raise ValueError(f"need at least 3 papers to cluster, got {n_papers}")
    if not 2 <= n_clusters < n_papers:
        raise ValueError(f"n_clusters must be between 2 and {n_papers - 1} for {n_papers} papers, got {n_clusters}")
    return n_clusters


def cluster_papers(papers: pd.DataFrame, n_clusters: int | None = None, *, seed: int = 0,
                   n_label_terms: int = 3, index: PaperIndex | None = None) -> pd.DataFrame:
    """Clusters of the papers with automatic labels: paper_id, cluster (0 = largest), cluster_label
    (top c-TF-IDF terms), cluster_terms (top 10).

    The papers' TF-IDF vectors are reduced by an exact LSA to 30 dimensions and joined with the
    theme profiles of tagged papers (and embeddings, with an index that has them); the clusters
    are the consensus of the index's `consensus_runs` k-means runs seeded from `seed`."""
    n_clusters = _check_clusters(len(papers), n_clusters)
    index = _index_for(papers, index)
    labels = index._cluster_labels(n_clusters, seed)
    groups = {c: [index.texts_[i] for i in np.flatnonzero(labels == c)] for c in range(n_clusters)}
    terms = class_tfidf_terms(groups, n=10)
    names = {c: " · ".join(t for t, _ in terms[c][:n_label_terms]) for c in groups}
    return pd.DataFrame({
        "paper_id": index.paper_ids_,
        "cluster": labels.astype("int64"),
        "cluster_label": [names[c] for c in labels],
        "cluster_terms": [[t for t, _ in terms[c]] for c in labels],
    })


def cluster_stability_pairs(papers: pd.DataFrame, n_clusters: int | None = None,
                            seeds=(0, 1, 2, 3, 4), *, index: PaperIndex | None = None) -> pd.DataFrame:
    """Adjusted Rand index between the clusterings of every pair of seeds: seed_a, seed_b, ari;
    `attrs["nmi_with_theme"]`: mean normalised mutual information of the clusterings with each
    paper's first theme (when the papers are tagged)."""
    from sklearn.metrics import adjusted_rand_score

    seeds = tuple(seeds)
    if len(seeds) < 2:
        raise ValueError("cluster stability needs at least two seeds")
    n_clusters = _check_clusters(len(papers), n_clusters)
    index = _index_for(papers, index)
    runs = {s: index._cluster_labels(n_clusters, s) for s in seeds}
    rows = [dict(seed_a=a, seed_b=b, ari=float(adjusted_rand_score(runs[a], runs[b])))
            for a, b in combinations(seeds, 2)]
    out = pd.DataFrame(rows, columns=["seed_a", "seed_b", "ari"])
    if "theme" in papers.columns:
        out.attrs["nmi_with_theme"] = float(np.mean([cluster_theme_agreement(papers, runs[s]) for s in seeds]))
    return out


def cluster_agreement(papers: pd.DataFrame, n_clusters: int | None = None, seeds=(0, 1, 2, 3, 4), *,
                      indexes: dict | None = None) -> pd.DataFrame:
    """How stable the clusters are and how far they follow the themes, one row per way of
    clustering (`indexes`: name -> `PaperIndex` fitted on these papers; default one fitted here):
    clusters_from, stability (mean ARI between seeds), lowest_pair (lowest ARI of a pair of
    seeds), nmi_with_theme (mean NMI with each paper's first theme, when the papers are tagged)."""
    indexes = indexes or {"words and themes": _index_for(papers, None)}
    rows = []
    for name, index in indexes.items():
        pairs = cluster_stability_pairs(papers, n_clusters, seeds, index=index)
        rows.append(dict(clusters_from=name, stability=round(float(pairs["ari"].mean()), 3),
                         lowest_pair=round(float(pairs["ari"].min()), 3),
                         nmi_with_theme=round(pairs.attrs.get("nmi_with_theme", float("nan")), 3)))
    return pd.DataFrame(rows, columns=["clusters_from", "stability", "lowest_pair", "nmi_with_theme"])


def cluster_theme_agreement(papers: pd.DataFrame, labels, facet: str = "theme") -> float:
    """Normalised mutual information between cluster labels and each paper's first tag on
    `facet` (papers without one form their own group): 1 when clusters are the themes."""
    from sklearn.metrics import normalized_mutual_info_score

    first = [(as_list(v) or [""])[0] for v in papers[facet]]
    return float(normalized_mutual_info_score(first, np.asarray(labels)))


def cluster_stability(papers: pd.DataFrame, n_clusters: int | None = None, seeds=(0, 1, 2, 3, 4), *,
                      index: PaperIndex | None = None) -> float:
    """Mean pairwise adjusted Rand index of the clusterings under `seeds` (1 = identical partitions);
    `cluster_stability_pairs` gives the pairs."""
    return float(cluster_stability_pairs(papers, n_clusters, seeds, index=index)["ari"].mean())


def _map_coords(index: PaperIndex, method: str, seed: int) -> np.ndarray:
    if method == "svd":
        from sklearn.decomposition import TruncatedSVD

        return TruncatedSVD(n_components=2, random_state=seed).fit_transform(index.vectors_)
    from sklearn.manifold import TSNE

    n = index.tfidf_.shape[0]
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    low = index._features(_MAP_DIMS, seed)
    with _threads_for(n):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    metric="cosine").fit_transform(low)


def paper_map(papers: pd.DataFrame, *, method: str = "tsne", seed: int = 0,
              index: PaperIndex | None = None) -> pd.DataFrame:
    """2-D coordinates for every paper (paper_id, x, y): t-SNE of the LSA vectors, or their first
    two components with method="svd" (fast, for very large corpora)."""
    if method not in ("tsne", "svd"):
        raise ValueError(f"method must be 'tsne' or 'svd', got {method!r}")
    if len(papers) < 3:
        raise ValueError(f"need at least 3 papers for a map, got {len(papers)}")
    index = _index_for(papers, index)
    xy = index._coords(method, seed)
    return pd.DataFrame({"paper_id": index.paper_ids_, "x": xy[:, 0].astype(float), "y": xy[:, 1].astype(float)})
