"""Relate papers by their words: TF-IDF vectors, nearest neighbours with a "why related" line,
clusters with automatic labels and their stability across seeds, and a 2-D map.

`PaperIndex` holds what is fitted once per corpus (the vectorizer and the TF-IDF vectors) and
what is derived from it on first use (neighbours, clusters, the map). The functions below give
the same tables from papers alone; pass `index=` to reuse a fitted index across calls.
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

from paperlib.corpus.reader import normalise_title
from paperlib.corpus.tagging import as_list, tag_papers
from paperlib.corpus.taxonomy import Taxonomy, load_taxonomy
from paperlib.corpus.terms import analyse, class_tfidf_terms, overlaps, paper_texts

_EXACT_LIMIT = 5_000  # above this many papers neighbours are searched within groups, not all pairs
# LSA dimensions for clustering: on the shipped corpus fewer dimensions give steadier clusters
# (mean ARI over 5 seeds, 11 clusters: 10 dims 0.56, 20 dims 0.43, 50 dims 0.30).
_CLUSTER_DIMS = 20
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


def _tag_sets(papers: pd.DataFrame, taxonomy: Taxonomy | str | Path | None) -> list[set[str]]:
    """Per paper, the tags "why related" compares: those of the taxonomy's multi-tag facets, less
    each facet's default tag ("general" says nothing about two papers).

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
    return sets


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
        prod = matrix[sources[start:stop]].multiply(matrix[targets[start:stop]]).tocsr()
        for r in range(prod.shape[0]):
            lo, hi = prod.indptr[r], prod.indptr[r + 1]
            chosen: list[str] = []
            for t in prod.indices[lo:hi][np.argsort(-prod.data[lo:hi], kind="stable")]:
                if len(chosen) == n_terms:
                    break
                if not overlaps(str(terms[t]), chosen):
                    chosen.append(str(terms[t]))
            out.append(chosen)
    return out


class PaperIndex(BaseEstimator):
    """TF-IDF vectors of a corpus, fitted once, with its neighbours, clusters and map on demand.

    Parameters: `taxonomy` (a `Taxonomy` or YAML path) gives the tags the "why related" line
    compares: papers not tagged with it are tagged on fit; without one, the tags the papers carry
    on the shipped taxonomy's facets are read and untagged papers are related by words only.
    `ngram_range`, `min_df`, `max_df` as in `tfidf_matrix`; `n_neighbors`, `n_clusters` (None:
    `default_n_clusters`) and `map_method` ("tsne" or "svd") shape `neighbours_`, `cluster_labels_`
    and `map_`; `random_state` seeds all three.

    Learned on fit: `vectorizer_`, `tfidf_` (rows L2-normalised), `terms_`, `paper_ids_`,
    `titles_`, `texts_`, `tag_sets_`. Computed on first use and kept: `neighbours_`
    ((indices, similarities), each n x n_neighbors), `cluster_labels_` (0 = largest cluster)
    and `map_` (n x 2 coordinates).
    """

    def __init__(self, *, taxonomy: Taxonomy | str | Path | None = None, ngram_range=None, min_df=None,
                 max_df=None, n_neighbors: int = 10, n_clusters: int | None = None, map_method: str = "tsne",
                 random_state: int = 0):
        self.taxonomy = taxonomy
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.n_neighbors = n_neighbors
        self.n_clusters = n_clusters
        self.map_method = map_method
        self.random_state = random_state

    def fit(self, papers: pd.DataFrame, y=None) -> PaperIndex:
        """Vectorise the papers' titles and abstracts and read (or make) their tags."""
        self.texts_ = paper_texts(papers)
        self.tfidf_, self.vectorizer_ = _vectorise(self.texts_, self.ngram_range, self.min_df, self.max_df)
        self.terms_ = self.vectorizer_.get_feature_names_out()
        self.paper_ids_ = (papers["paper_id"].to_numpy() if "paper_id" in papers.columns
                           else np.array([str(i) for i in range(len(papers))], dtype=object))
        self.titles_ = papers["title"].to_numpy()
        self.tag_sets_ = _tag_sets(papers, self.taxonomy)
        self._computed: dict = {}
        return self

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
        exact = self.tfidf_.shape[0] <= _EXACT_LIMIT  # the exact search uses no randomness
        return self._memo(("neighbours", k, None if exact else seed),
                          lambda: nearest_neighbours(self.tfidf_, k, seed=seed))

    def _lsa(self, dims: int, seed: int) -> np.ndarray:
        return self._memo(("lsa", dims, seed), lambda: _lsa(self.tfidf_, seed, dims))

    def _cluster_labels(self, n_clusters: int, seed: int) -> np.ndarray:
        return self._memo(("clusters", n_clusters, seed),
                          lambda: _kmeans_labels(self._lsa(_CLUSTER_DIMS, seed), n_clusters, seed))

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
    """The k papers closest to `paper` (a paper_id or a title) by TF-IDF cosine, each with the
    terms that weigh most in both and the tags both share ("why related").

    Tags come from tagged papers (`tag_papers`), or from `taxonomy`, which tags papers that lack
    its facets. Untagged papers without a taxonomy are related by their words alone: shared_tags
    stays empty and nothing is tagged behind the caller's back. `index`: a `PaperIndex` fitted on
    these papers, to reuse across calls (its taxonomy applies).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ids = papers["paper_id"].astype(str).tolist() if "paper_id" in papers.columns else []
    i = _locate_exact(ids, papers["title"].astype(str).tolist(), paper)
    index = _index_for(papers, index, taxonomy)
    matrix = index.tfidf_
    sims = (matrix @ matrix[i].T).toarray().ravel()
    sims[i] = -np.inf
    order = np.argsort(-sims, kind="stable")[: min(k, len(sims) - 1)]
    terms, tags = index._explain(np.full(len(order), i), order, n_terms)
    return pd.DataFrame({
        "paper_id": index.paper_ids_[order], "title": index.titles_[order],
        "similarity": [float(sims[j]) for j in order], "shared_terms": terms, "shared_tags": tags,
        "why": [why_related(sims[j], a, b) for j, a, b in zip(order, terms, tags)],
    }, columns=["paper_id", "title", "similarity", "shared_terms", "shared_tags", "why"])


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
    # Number clusters by size (largest 0), ties by first member, so labels read the same across runs.
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
    """k-means clusters of the papers' TF-IDF vectors (reduced by LSA to 20 dimensions) with automatic labels:
    paper_id, cluster (0 = largest), cluster_label (top c-TF-IDF terms), cluster_terms (top 10)."""
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
    """Adjusted Rand index between the clusterings of every pair of seeds: seed_a, seed_b, ari."""
    from sklearn.metrics import adjusted_rand_score

    seeds = tuple(seeds)
    if len(seeds) < 2:
        raise ValueError("cluster stability needs at least two seeds")
    n_clusters = _check_clusters(len(papers), n_clusters)
    index = _index_for(papers, index)
    runs = {s: index._cluster_labels(n_clusters, s) for s in seeds}
    rows = [dict(seed_a=a, seed_b=b, ari=float(adjusted_rand_score(runs[a], runs[b])))
            for a, b in combinations(seeds, 2)]
    return pd.DataFrame(rows, columns=["seed_a", "seed_b", "ari"])


def cluster_stability(papers: pd.DataFrame, n_clusters: int | None = None, seeds=(0, 1, 2, 3, 4), *,
                      index: PaperIndex | None = None) -> float:
    """Mean pairwise adjusted Rand index of the clusterings under `seeds` (1 = identical partitions);
    `cluster_stability_pairs` gives the pairs."""
    return float(cluster_stability_pairs(papers, n_clusters, seeds, index=index)["ari"].mean())


def _map_coords(index: PaperIndex, method: str, seed: int) -> np.ndarray:
    if method == "svd":
        from sklearn.decomposition import TruncatedSVD

        return TruncatedSVD(n_components=2, random_state=seed).fit_transform(index.tfidf_)
    from sklearn.manifold import TSNE

    n = index.tfidf_.shape[0]
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    low = index._lsa(_MAP_DIMS, seed)
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
