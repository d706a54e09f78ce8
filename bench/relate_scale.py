"""Scale benchmark for tagging and relations: synthetic corpora of 10k, 30k and 100k abstracts.

Each synthetic paper resamples the words of one real paper of the shipped corpus (80 %) mixed
with words from the whole corpus (20 %), so topics survive and vocabularies stay realistic.
Stages: rule tagging, TF-IDF, and the 10-nearest-neighbour graph. Each corpus size runs in a
fresh process so its peak memory (max RSS) is its own.

With the `[embeddings]` extra installed, the embedding path runs too (default 10k abstracts):
MiniLM embeddings of every title and abstract (computed, not read from the cache) and the
10-NN graph on words and meaning joined, as `PaperIndex(embeddings="minilm")` compares papers.

    .venv/bin/python bench/relate_scale.py                 # 10k, 30k, 100k; embeddings at 10k
    .venv/bin/python bench/relate_scale.py --sizes 2000 --embedding-sizes 500    # a quick look
    .venv/bin/python bench/relate_scale.py --embedding-sizes                     # no embedding path

Prints one table row per size: seconds per stage, the process's peak memory after each stage,
and the recall@10 of the neighbour graph against exact search on 300 sampled papers.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

K = 10
BUDGET_SECONDS = 120.0
BUDGET_GIB = 4.0


def synthetic_corpus(n: int, *, seed: int = 0) -> pd.DataFrame:
    """n papers whose titles and abstracts resample the words of real ones."""
    import paperlib

    real = paperlib.load_corpus(paperlib.default_corpus_path())
    rng = np.random.default_rng(seed)
    titles = [t.split() for t in real["title"]]
    abstracts = [a.split() for a in real["abstract"]]
    pool = np.array([w for a in abstracts for w in a], dtype=object)
    src = rng.integers(0, len(real), size=n)
    rows = []
    for i, s in enumerate(src):
        words = np.array(abstracts[s], dtype=object)
        m = len(words)
        own = words[rng.integers(0, m, size=m)]
        mix = rng.random(m) < 0.2
        own[mix] = pool[rng.integers(0, len(pool), size=int(mix.sum()))]
        t = np.array(titles[s], dtype=object)
        rows.append(dict(paper_id=f"syn{i:06d}", title=" ".join(t[rng.permutation(len(t))]),
                         abstract=" ".join(own)))
    return pd.DataFrame(rows)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run_one(n: int, seed: int = 0) -> dict:
    """Time each stage on a synthetic corpus of n papers (call in a fresh process)."""
    from paperlib.corpus.relate import nearest_neighbours, tfidf_matrix
    from paperlib.corpus.tagging import tag_papers
    from paperlib.corpus.taxonomy import load_taxonomy

    papers = synthetic_corpus(n, seed=seed)
    row = dict(n=n, corpus_gib=_peak_gib())
    t, c = time.perf_counter(), time.process_time()
    tagged = tag_papers(papers, load_taxonomy())
    row.update(tag_s=time.perf_counter() - t, tag_cpu=time.process_time() - c, tag_gib=_peak_gib())
    del tagged
    t, c = time.perf_counter(), time.process_time()
    matrix, vec = tfidf_matrix(papers)
    row.update(tfidf_s=time.perf_counter() - t, tfidf_cpu=time.process_time() - c, tfidf_gib=_peak_gib(),
               vocab=len(vec.vocabulary_))
    t, c = time.perf_counter(), time.process_time()
    idx, _ = nearest_neighbours(matrix, K, seed=seed)
    row.update(knn_s=time.perf_counter() - t, knn_cpu=time.process_time() - c, knn_gib=_peak_gib())
    # Recall@10 against exact search for a sample of papers.
    sample = np.random.default_rng(seed).choice(n, size=min(300, n), replace=False)
    block = (matrix[sample] @ matrix.T).toarray()
    block[np.arange(len(sample)), sample] = -np.inf
    exact = np.argsort(-block, axis=1)[:, :K]
    row["recall"] = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(idx[sample], exact)]))
    row["total_s"] = row["tag_s"] + row["tfidf_s"] + row["knn_s"]
    row["total_cpu"] = row["tag_cpu"] + row["tfidf_cpu"] + row["knn_cpu"]
    row["load"] = os.getloadavg()[0]
    return row


def run_embedding(n: int, seed: int = 0) -> dict:
    """Time the embedding path on a synthetic corpus of n papers (call in a fresh process)."""
    import scipy.sparse as sp

    from paperlib.corpus.embeddings import embed_texts, load_model
    from paperlib.corpus.relate import nearest_neighbours, tfidf_matrix
    from paperlib.corpus.terms import paper_texts

    papers = synthetic_corpus(n, seed=seed)
    load_model()  # loading the model is counted apart: once per process
    row = dict(n=n)
    t, c = time.perf_counter(), time.process_time()
    emb = embed_texts(paper_texts(papers), cache=False)
    row.update(embed_s=time.perf_counter() - t, embed_cpu=time.process_time() - c, embed_gib=_peak_gib())
    t, c = time.perf_counter(), time.process_time()
    matrix, _ = tfidf_matrix(papers)
    joined = sp.hstack([matrix * np.float32(np.sqrt(0.5)), sp.csr_matrix(emb * np.float32(np.sqrt(0.5)))],
                       format="csr", dtype=np.float32)
    nearest_neighbours(joined, K, seed=seed)
    row.update(knn_s=time.perf_counter() - t, knn_cpu=time.process_time() - c, knn_gib=_peak_gib())
    row["per_1k_s"] = row["embed_s"] / n * 1000
    row["load"] = os.getloadavg()[0]
    return row


def format_embedding_table(rows: list[dict]) -> str:
    head = (f"{'n':>7} {'embed s':>8} {'(cpu s)':>8} {'s/1k':>6} {'tfidf+10-NN s':>14} {'peak GiB':>9} {'load':>5}")
    lines = ["embedding path (MiniLM, words and meaning joined)", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['n']:>7} {r['embed_s']:>8.1f} {r['embed_cpu']:>8.1f} {r['per_1k_s']:>6.1f} "
                     f"{r['knn_s']:>14.1f} {r['knn_gib']:>9.2f} {r['load']:>5.1f}")
    return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
    head = (f"{'n':>7} {'tag s':>7} {'tfidf s':>8} {'10-NN s':>8} {'total s':>8} {'(cpu s)':>8} "
            f"{'peak GiB':>9} {'recall@10':>9} {'vocab':>7} {'load':>5}  within {BUDGET_SECONDS:.0f} s / {BUDGET_GIB:.0f} GiB")
    lines = [head, "-" * len(head)]
    for r in rows:
        ok = r["total_s"] <= BUDGET_SECONDS and r["knn_gib"] <= BUDGET_GIB
        lines.append(f"{r['n']:>7} {r['tag_s']:>7.1f} {r['tfidf_s']:>8.1f} {r['knn_s']:>8.1f} {r['total_s']:>8.1f} "
                     f"{r['total_cpu']:>8.1f} {r['knn_gib']:>9.2f} {r['recall']:>9.3f} {r['vocab']:>7} "
                     f"{r['load']:>5.1f}  {'yes' if ok else 'NO'}")
    lines.append("seconds are wall-clock per stage; cpu s is this process's CPU time for all three stages "
                 "(wall exceeds it when the machine is shared: see load, the 1-minute load average).")
    lines.append("peak GiB: the process's max RSS after the last stage (corpus generation included); "
                 "each size runs in its own process.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedding-sizes", type=int, nargs="*", default=[10_000],
                        help="corpus sizes for the embedding path (none: skip it; skipped without the extra)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size, JSON out
    parser.add_argument("--one-embedding", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.seed)))
        return 0
    if args.one_embedding:
        print(json.dumps(run_embedding(args.one_embedding, args.seed)))
        return 0
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--seed", str(args.seed)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done n={n}: {rows[-1]['total_s']:.1f} s", file=sys.stderr, flush=True)
    print(format_table(rows))
    from paperlib.corpus.embeddings import embeddings_available

    emb_rows = []
    for n in (args.embedding_sizes if embeddings_available() else []):
        out = subprocess.run([sys.executable, __file__, "--one-embedding", str(n), "--seed", str(args.seed)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        emb_rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done embeddings n={n}: {emb_rows[-1]['embed_s']:.1f} s", file=sys.stderr, flush=True)
    if emb_rows:
        print(format_embedding_table(emb_rows))
    elif args.embedding_sizes and not embeddings_available():
        print("embedding path skipped: the [embeddings] extra is not installed")
    print(f"command: .venv/bin/python bench/relate_scale.py --sizes {' '.join(map(str, args.sizes))}"
          f" --embedding-sizes {' '.join(map(str, args.embedding_sizes))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
