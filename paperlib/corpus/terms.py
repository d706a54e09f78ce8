"""Words of a paper as the relations and the tag summaries count them: the text of a paper, its
terms (words and adjacent phrases without stop words) and the most distinctive terms of groups
of papers (class-based TF-IDF).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

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


def paper_texts(papers: pd.DataFrame) -> list[str]:
    """Title and abstract of each paper as one string (the text every relation is built from)."""
    if "title" not in papers.columns:
        raise ValueError("papers need a 'title' column")
    abstracts = papers["abstract"] if "abstract" in papers.columns else pd.Series("", index=papers.index)
    return [f"{t}. {a}" for t, a in zip(papers["title"].fillna("").astype(str), abstracts.fillna("").astype(str))]


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


def overlaps(term: str, chosen: list[str]) -> bool:
    """Whether `term` repeats a chosen term: its words are among a chosen term's, or the other way round."""
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
            if not overlaps(str(terms[j]), [t for t, _ in chosen]):
                chosen.append((str(terms[j]), float(scores[row, j])))
        out[g] = chosen
    return out
