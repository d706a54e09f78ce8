"""Relate papers by their words: TF-IDF vectors, nearest neighbours with a "why related" line,
clusters with automatic labels and their stability across seeds, and a 2-D map.

TF-IDF (scikit-learn) is the default and needs nothing extra; sentence embeddings are used only
when asked for and an offline embedding package is installed.
"""
from __future__ import annotations

import math
import re
from contextlib import nullcontext
from functools import lru_cache, partial
from itertools import combinations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

# Words of at least two characters that start with a letter (keeps "r1", "gpt4"; drops "2023").
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W_]+\b"
_WORD = re.compile(TOKEN_PATTERN)
# Boilerplate of abstracts that says nothing about a paper's subject.
ABSTRACT_STOP = frozenset("""
propose proposed proposes approach approaches method methods paper papers result results demonstrate
demonstrates show shows showing based using use used new novel existing work works performance achieve
achieves achieved significantly significant effective effectively different various experiments
experimental extensive state art study studies present presents introduce introduces address
furthermore moreover additionally specifically however recent recently well able
""".split())
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | ABSTRACT_STOP
_EXACT_LIMIT = 5_000  # above this many papers neighbours are searched within groups, not all pairs
# LSA dimensions for clustering: on the shipped corpus fewer dimensions give steadier clusters
# (mean ARI over 5 seeds, 11 clusters: 10 dims 0.56, 20 dims 0.43, 50 dims 0.30).
_CLUSTER_DIMS = 20
_PHRASE_LIMIT = 20_000  # above this many papers TF-IDF uses single words only (half the cost)


def _threads_for(n_rows: int):
    """One BLAS/OpenMP thread for small problems: on a shared machine their spin-waits cost more
    than the parallelism gains (t-SNE of 257 papers: 38 s with all threads, 3 s with one)."""
    return threadpool_limits(limits=1) if n_rows < 20_000 else nullcontext()


def analyse(text: str, ngram_max: int = 2) -> list[str]:
    """Lower-case words without stop words, plus phrases of up to `ngram_max` words that were
    adjacent in the text (no phrase bridges a removed stop word: "approach is scalable" gives none)."""
    words = _WORD.findall(text.lower())
    stop = STOP_WORDS
    out = [w for w in words if w not in stop]
    if ngram_max >= 2:
        out += [f"{a} {b}" for a, b in zip(words, words[1:]) if a not in stop and b not in stop]
    for n in range(3, ngram_max + 1):
        out += [" ".join(g) for g in zip(*(words[k:] for k in range(n))) if not any(w in stop for w in g)]
    return out


def paper_texts(papers: pd.DataFrame) -> list[str]:
    """Title and abstract of each paper as one string (the text every relation is built from)."""
    if "title" not in papers.columns:
        raise ValueError("papers need a 'title' column")
    abstracts = papers["abstract"] if "abstract" in papers.columns else pd.Series("", index=papers.index)
    return [f"{t}. {a}" for t, a in zip(papers["title"].fillna("").astype(str), abstracts.fillna("").astype(str))]


def tfidf_matrix(papers: pd.DataFrame, *, ngram_range=None, min_df=None, max_df=None):
    """(sparse matrix with L2-normalised rows, fitted TfidfVectorizer) for title + abstract.

    Defaults adapt to corpus size: words and two-word phrases up to 20k papers, words only above;
    terms in at least 2 papers and at most half of them once there are 50 papers or more, every
    term otherwise (small hand-made corpora). Up to 20k papers the result for the same texts and
    settings is cached, so asking `similar` about every paper stays cheap.
    """
    texts = tuple(paper_texts(papers))
    if ngram_range is None:
        ngram_range = (1, 2) if len(texts) <= _PHRASE_LIMIT else (1, 1)
    if len(texts) > _PHRASE_LIMIT:  # too big to keep around in the cache
        return _tfidf_cached.__wrapped__(texts, tuple(ngram_range), min_df, max_df)
    matrix, vec = _tfidf_cached(texts, tuple(ngram_range), min_df, max_df)
    return matrix.copy(), vec


@lru_cache(maxsize=4)
def _tfidf_cached(texts: tuple, ngram_range: tuple, min_df, max_df):
    if not texts:
        raise ValueError("no papers to vectorise")
    big = len(texts) >= 50
    if ngram_range[0] != 1:
        raise ValueError(f"ngram_range must start at 1, got {ngram_range}")
    vec = TfidfVectorizer(
        analyzer=partial(analyse, ngram_max=ngram_range[1]), sublinear_tf=True,
        min_df=min_df if min_df is not None else (2 if big else 1),
        max_df=max_df if max_df is not None else (0.5 if big else 1.0),
        dtype=np.float32,
    )
    try:
        matrix = vec.fit_transform(list(texts))
    except ValueError as exc:  # every word is a stop word or too rare
        raise ValueError(f"cannot build TF-IDF vectors: {exc}") from None
    return matrix.tocsr(), vec


def embedding_matrix(papers: pd.DataFrame, model: str = "all-MiniLM-L6-v2") -> np.ndarray:
    """Sentence embeddings (rows L2-normalised) when `sentence-transformers` and the model are
    available offline; TF-IDF stays the default everywhere else."""
    try:
        from sentence_transformers import SentenceTransformer  # optional, not a dependency
    except ImportError as exc:
        raise ImportError("embedding_matrix needs the optional package 'sentence-transformers' "
                          "and a locally cached model; use tfidf_matrix otherwise") from exc
    encoder = SentenceTransformer(model, local_files_only=True)
    return np.asarray(encoder.encode(paper_texts(papers), normalize_embeddings=True))


def find_paper(papers: pd.DataFrame, query: str) -> int:
    """Row position of a paper given its paper_id, its exact title, or words of its title
    (all must appear; an ambiguous query lists the candidates)."""
    ids = papers["paper_id"].astype(str).tolist() if "paper_id" in papers.columns else []
    if query in ids:
        return ids.index(query)
    titles = papers["title"].astype(str).tolist()
    norm = [" ".join(t.casefold().split()) for t in titles]
    q = " ".join(str(query).casefold().split())
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


def _locate_exact(papers: pd.DataFrame, paper: str) -> int:
    ids = papers["paper_id"].astype(str).tolist() if "paper_id" in papers.columns else []
    if paper in ids:
        return ids.index(paper)
    titles = papers["title"].astype(str).tolist()
    if paper in titles:
        return titles.index(paper)
    norm = [" ".join(t.casefold().split()) for t in titles]
    q = " ".join(str(paper).casefold().split())
    if q in norm:
        return norm.index(q)
    raise KeyError(f"no paper with paper_id or exact title {paper!r} (find_paper accepts title words)")


def _tag_sets(papers: pd.DataFrame) -> list[set[str]]:
    if "theme" not in papers.columns:
        from paperlib.corpus.tagging import tag_papers

        papers = tag_papers(papers)
    domains = papers["domain"].tolist() if "domain" in papers.columns else [[]] * len(papers)
    return [set(t or []) | (set(d or []) - {"general"}) for t, d in zip(papers["theme"].tolist(), domains)]


def similar(papers: pd.DataFrame, paper: str, k: int = 10, *, n_terms: int = 5) -> pd.DataFrame:
    """The k papers closest to `paper` (a paper_id or an exact title) by TF-IDF cosine, each with
    the terms that weigh most in both and the theme/domain tags both share ("why related").

    Untagged papers are tagged with the default taxonomy first, so shared_tags is always filled in.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    i = _locate_exact(papers, paper)
    matrix, vec = tfidf_matrix(papers)
    terms = vec.get_feature_names_out()
    sims = (matrix @ matrix[i].T).toarray().ravel()
    sims[i] = -np.inf
    order = np.argsort(-sims, kind="stable")[: min(k, len(papers) - 1)]
    tags = _tag_sets(papers)
    rows = []
    for j in order:
        prod = matrix[i].multiply(matrix[j]).tocsr()
        shared_terms: list[str] = []
        for t in prod.indices[np.argsort(-prod.data, kind="stable")]:
            if len(shared_terms) == n_terms:
                break
            if not _overlaps(str(terms[t]), shared_terms):
                shared_terms.append(str(terms[t]))
        shared_tags = sorted(tags[i] & tags[j])
        why = f"cosine {sims[j]:.2f}"
        if shared_terms:
            why += "; shared terms: " + ", ".join(shared_terms)
        if shared_tags:
            why += "; both tagged " + ", ".join(shared_tags)
        rows.append(dict(paper_id=papers["paper_id"].iloc[j] if "paper_id" in papers.columns else str(j),
                         title=papers["title"].iloc[j], similarity=float(sims[j]),
                         shared_terms=shared_terms, shared_tags=shared_tags, why=why))
    return pd.DataFrame(rows, columns=["paper_id", "title", "similarity", "shared_terms", "shared_tags", "why"])


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


def knn_graph(papers: pd.DataFrame, k: int = 10, *, matrix=None, seed: int = 0) -> pd.DataFrame:
    """The k-nearest-neighbour graph as a tidy edge table: source, target (paper ids), similarity, rank."""
    if matrix is None:
        matrix, _ = tfidf_matrix(papers)
    idx, sims = nearest_neighbours(matrix, k, seed=seed)
    ids = papers["paper_id"].to_numpy()
    n, kk = idx.shape
    return pd.DataFrame({
        "source": np.repeat(ids, kk), "target": ids[idx.ravel()],
        "similarity": sims.ravel().astype(float), "rank": np.tile(np.arange(1, kk + 1), n),
    })


def _overlaps(term: str, chosen: list[str]) -> bool:
    words = set(term.split())
    return any(words <= set(c.split()) or set(c.split()) <= words for c in chosen)


def class_tfidf_terms(groups: dict, n: int = 10) -> dict:
    """Most distinctive terms of each group of texts (class-based TF-IDF, as in BERTopic):
    term frequency within the group times log(1 + average group size / term frequency overall).

    Words used by more than half of all texts are left out, and a term that repeats a word of a
    better-ranked one ("continual" after "continual learning") is skipped.
    """
    labels = list(groups)
    if not labels:
        return {}
    docs = [" ".join(groups[g]) for g in labels]
    all_texts = [t for g in labels for t in groups[g]]
    vocab = None
    if len(all_texts) >= 10:
        dv = CountVectorizer(analyzer=analyse, max_df=0.5, min_df=2, binary=True)
        try:
            dv.fit(all_texts)
            vocab = dv.vocabulary_
        except ValueError:
            vocab = None
    cv = CountVectorizer(analyzer=analyse, vocabulary=vocab)
    try:
        counts = cv.fit_transform(docs).astype(np.float64)
    except ValueError:
        return {g: [] for g in labels}
    terms = cv.get_feature_names_out()
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    tf = sp.diags(1.0 / np.maximum(words_per_class, 1)) @ counts
    freq = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1.0 + words_per_class.mean() / np.maximum(freq, 1))
    scores = (tf @ sp.diags(idf)).toarray()
    out = {}
    for row, g in enumerate(labels):
        chosen: list[tuple[str, float]] = []
        for j in np.lexsort((terms, -scores[row])):
            if len(chosen) == n or scores[row, j] <= 0:
                break
            if not _overlaps(str(terms[j]), [t for t, _ in chosen]):
                chosen.append((str(terms[j]), float(scores[row, j])))
        out[g] = chosen
    return out


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
                   n_label_terms: int = 3) -> pd.DataFrame:
    """k-means clusters of the papers' TF-IDF vectors (reduced by LSA to 20 dimensions) with automatic labels:
    paper_id, cluster (0 = largest), cluster_label (top c-TF-IDF terms), cluster_terms (top 10)."""
    n_clusters = _check_clusters(len(papers), n_clusters)
    matrix, _ = tfidf_matrix(papers)
    labels = _kmeans_labels(_lsa(matrix, seed, _CLUSTER_DIMS), n_clusters, seed)
    texts = paper_texts(papers)
    groups = {c: [texts[i] for i in np.flatnonzero(labels == c)] for c in range(n_clusters)}
    terms = class_tfidf_terms(groups, n=10)
    names = {c: " · ".join(t for t, _ in terms[c][:n_label_terms]) for c in groups}
    return pd.DataFrame({
        "paper_id": papers["paper_id"].to_numpy(),
        "cluster": labels.astype("int64"),
        "cluster_label": [names[c] for c in labels],
        "cluster_terms": [[t for t, _ in terms[c]] for c in labels],
    })


def cluster_stability_pairs(papers: pd.DataFrame, n_clusters: int | None = None,
                            seeds=(0, 1, 2, 3, 4)) -> pd.DataFrame:
    """Adjusted Rand index between the clusterings of every pair of seeds: seed_a, seed_b, ari."""
    from sklearn.metrics import adjusted_rand_score

    seeds = tuple(seeds)
    if len(seeds) < 2:
        raise ValueError("cluster stability needs at least two seeds")
    n_clusters = _check_clusters(len(papers), n_clusters)
    matrix, _ = tfidf_matrix(papers)
    runs = {s: _kmeans_labels(_lsa(matrix, s, _CLUSTER_DIMS), n_clusters, s) for s in seeds}
    rows = [dict(seed_a=a, seed_b=b, ari=float(adjusted_rand_score(runs[a], runs[b])))
            for a, b in combinations(seeds, 2)]
    return pd.DataFrame(rows, columns=["seed_a", "seed_b", "ari"])


def cluster_stability(papers: pd.DataFrame, n_clusters: int | None = None, seeds=(0, 1, 2, 3, 4)) -> float:
    """Mean pairwise adjusted Rand index of the clusterings under `seeds` (1 = identical partitions);
    `cluster_stability_pairs` gives the pairs."""
    return float(cluster_stability_pairs(papers, n_clusters, seeds)["ari"].mean())


def paper_map(papers: pd.DataFrame, *, method: str = "tsne", seed: int = 0) -> pd.DataFrame:
    """2-D coordinates for every paper (paper_id, x, y): t-SNE of the LSA vectors, or their first
    two components with method="svd" (fast, for very large corpora)."""
    if method not in ("tsne", "svd"):
        raise ValueError(f"method must be 'tsne' or 'svd', got {method!r}")
    n = len(papers)
    if n < 3:
        raise ValueError(f"need at least 3 papers for a map, got {n}")
    matrix, _ = tfidf_matrix(papers)
    if method == "svd":
        from sklearn.decomposition import TruncatedSVD

        xy = TruncatedSVD(n_components=2, random_state=seed).fit_transform(matrix)
    else:
        from sklearn.manifold import TSNE

        low = _lsa(matrix, seed)
        perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
        with _threads_for(n):
            xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                      metric="cosine").fit_transform(low)
    return pd.DataFrame({"paper_id": papers["paper_id"].to_numpy(), "x": xy[:, 0].astype(float),
                         "y": xy[:, 1].astype(float)})
