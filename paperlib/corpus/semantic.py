"""Tag scores from similarity: to each tag's definition and to hand-labelled papers.

`ExampleScorer` adds to the rule scores of `tag_papers(..., examples=scorer)`:

- from labelled papers: a paper's `k` most similar labelled papers vote for their tags, each
  vote weighted by its similarity; a tag gets `example_weight` times its share of the votes,
  with evidence naming the labelled papers behind it;
- from definitions: a tag whose definition is clearly closer to the paper than the facet's other
  definitions gets up to `definition_weight`, with evidence naming the definition.

Vectors come from TF-IDF (`encoder="tfidf"`, the core install) or from the all-MiniLM-L6-v2
sentence embeddings of the `[embeddings]` extra (`encoder="minilm"`). A paper is never its own
example: labelled papers are matched by normalised title and left out of their own vote.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from paperlib.corpus.embeddings import embed_texts
from paperlib.corpus.reader import normalise_title
from paperlib.corpus.relate import _vectorise
from paperlib.corpus.tagging import as_list, load_gold
from paperlib.corpus.taxonomy import Taxonomy, load_taxonomy
from paperlib.corpus.terms import paper_texts

ENCODERS = ("tfidf", "minilm")


class ExampleScorer(BaseEstimator):
    """Scores tags by a paper's similarity to labelled papers and to the tags' definitions.

    Parameters: `taxonomy` (default: the shipped one), `encoder` ("tfidf" or "minilm"), `k`
    (labelled neighbours that vote), `example_weight`, `definition_weight` (0 turns a source
    off), `min_similarity` (neighbours below it do not vote), `facets` (which facets get scores).

    Learned on fit: `encoder_` (the fitted TF-IDF vectorizer, or "minilm"), `example_titles_`,
    `example_keys_` (normalised titles), `example_tags_` (per labelled paper, its set of tags),
    `example_vectors_`, `definition_vectors_` and `definition_tags_` ((facet, tag) per row).
    """

    def __init__(self, *, taxonomy: Taxonomy | str | Path | None = None, encoder: str = "tfidf", k: int = 5,
                 example_weight: float = 2.0, definition_weight: float = 0.0, min_similarity: float = 0.05,
                 facets=("theme", "kind", "domain")):
        self.taxonomy = taxonomy
        self.encoder = encoder
        self.k = k
        self.example_weight = example_weight
        self.definition_weight = definition_weight
        self.min_similarity = min_similarity
        self.facets = facets

    # ---- vectors

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.encoder == "minilm":
            return embed_texts(texts)
        matrix = self.encoder_.transform(texts)
        return np.asarray(matrix.toarray(), dtype=np.float32)

    def fit(self, papers: pd.DataFrame, gold) -> ExampleScorer:
        """Learn from the labelled papers of `gold` (title and facet columns) whose text is in `papers`
        (the corpus: titles and abstracts); labels of papers not in `papers` are ignored."""
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        self.taxonomy_ = self.taxonomy if isinstance(self.taxonomy, Taxonomy) else load_taxonomy(self.taxonomy)
        gold = load_gold(gold) if isinstance(gold, (str, Path)) else pd.DataFrame(gold)
        texts = paper_texts(papers)
        row_of = {normalise_title(t): i for i, t in enumerate(papers["title"].astype(str))}
        facets = [f for f in self.taxonomy_.facets if f.name in self.facets]
        keep = [(normalise_title(t), i) for i, t in enumerate(gold["title"].astype(str)) if normalise_title(t) in row_of]
        if self.encoder == "tfidf":
            _, self.encoder_ = _vectorise(texts)
        else:
            self.encoder_ = "minilm"
        self.example_keys_ = [key for key, _ in keep]
        self.example_titles_ = [str(papers["title"].iloc[row_of[key]]) for key, _ in keep]
        self.example_tags_ = []
        for _, i in keep:
            tags = set()
            for f in facets:
                if f.name in gold.columns:
                    tags.update(t for t in as_list(gold[f.name].iloc[i]) if f.select == "one" or t != f.default)
            self.example_tags_.append(tags)
        example_texts = [texts[row_of[key]] for key in self.example_keys_]
        self.example_vectors_ = (self._encode(example_texts) if example_texts
                                 else np.zeros((0, 1), dtype=np.float32))
        self.definition_tags_ = [(f.name, t.name) for f in facets for t in f.tags
                                 if f.select == "one" or t.name != f.default]
        self.definition_vectors_ = self._encode([self.taxonomy_.definitions()[t] for _, t in self.definition_tags_])
        return self

    # ---- scores

    def tag_scores(self, papers: pd.DataFrame) -> list[dict]:
        """Per paper, tag -> (score, evidence) to add to the rule scores."""
        vectors = self._encode(paper_texts(papers))
        keys = [normalise_title(t) for t in papers["title"].astype(str)]
        out: list[dict] = [{} for _ in range(len(keys))]
        if self.example_weight and len(self.example_keys_):
            self._add_examples(vectors, keys, out)
        if self.definition_weight:
            self._add_definitions(vectors, out)
        return out

    def _add_examples(self, vectors, keys, out) -> None:
        sims = vectors @ self.example_vectors_.T
        own = {key: j for j, key in enumerate(self.example_keys_)}
        k = min(self.k, len(self.example_keys_))
        for i, key in enumerate(keys):
            row = sims[i].copy()
            if key in own:
                row[own[key]] = -np.inf
            near = [j for j in np.argsort(-row, kind="stable")[:k] if row[j] >= self.min_similarity]
            total = float(sum(row[j] for j in near))
            if not near or total <= 0:
                continue
            votes: dict[str, list[int]] = {}
            for j in near:
                for tag in self.example_tags_[j]:
                    votes.setdefault(tag, []).append(j)
            for tag, js in votes.items():
                share = float(sum(row[j] for j in js)) / total
                names = ", ".join(repr(self.example_titles_[j][:60]) for j in js[:2])
                out[i][tag] = (self.example_weight * share, [f"like labelled {names}"])

    def _add_definitions(self, vectors, out) -> None:
        sims = vectors @ self.definition_vectors_.T
        facets = sorted({f for f, _ in self.definition_tags_})
        for facet in facets:
            cols = [c for c, (f, _) in enumerate(self.definition_tags_) if f == facet]
            block = sims[:, cols]
            mean = block.mean(axis=1, keepdims=True)
            std = block.std(axis=1, keepdims=True)
            z = (block - mean) / np.where(std > 0, std, 1.0)
            for i in range(len(out)):
                for c, col in enumerate(cols):
                    lift = float(z[i, c]) - 1.0  # only a definition clearly closer than the rest
                    if lift <= 0:
                        continue
                    tag = self.definition_tags_[col][1]
                    score, why = out[i].get(tag, (0.0, []))
                    out[i][tag] = (score + self.definition_weight * min(lift, 2.0) / 2.0,
                                   why + [f"close to the definition of {tag} (cosine {sims[i, col]:.2f})"])
