"""How far the tags and the neighbours can be trusted, measured on hand labels.

- `kind_confusion`: which kinds are taken for which (gold rows, predicted columns).
- `cross_validate_tags`: leave-some-out evaluation. The labels are cut into folds (by a hash of
  each title, so the same labels always give the same folds); for each fold the scoring
  constants of every facet (threshold, relative share, mention factor) are chosen on the other
  folds from a small grid and the tags are scored on the fold left out. The figures on the folds
  left out say how the tagger does on papers its constants were not chosen on.
- `neighbour_quality`: the share of each labelled paper's nearest labelled neighbours that share
  a labelled theme with it.
- `tag_scores`: the headline figures against the shipped labels, by who labelled them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

from paperlib.corpus.reader import normalise_title
from paperlib.corpus.relate import PaperIndex
from paperlib.corpus.tagging import (_facet_order, add_scores, as_list, evaluate_tags, load_gold, score_papers,
                                     select_tags, tag_papers)
from paperlib.corpus.taxonomy import Taxonomy, load_taxonomy
from paperlib.paths import shipped_dir

def _gold_frame(gold) -> pd.DataFrame:
    if isinstance(gold, (str, Path)):
        return load_gold(gold)
    return pd.DataFrame(gold) if isinstance(gold, list) else gold.reset_index(drop=True)


def label_folds(titles, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (0 .. folds-1) of each labelled title: titles ordered by a hash of their
    normalised form and `seed`, then dealt round-robin, so folds differ by at most one paper."""
    titles = list(titles)
    if not 2 <= folds <= len(titles):
        raise ValueError(f"folds must be between 2 and the number of labels ({len(titles)}), got {folds}")
    keys = [hashlib.sha1(f"{seed}:{normalise_title(t)}".encode("utf-8")).hexdigest() for t in titles]
    out = np.empty(len(titles), dtype=np.int64)
    out[np.argsort(keys, kind="stable")] = np.arange(len(titles)) % folds
    return out


def kind_confusion(predicted: pd.DataFrame, gold, facet: str = "kind") -> pd.DataFrame:
    """Papers per (gold tag, predicted tag) of a one-tag facet: gold tags as rows, predicted as columns."""
    gold = _gold_frame(gold)
    by_title = {normalise_title(t): v for t, v in zip(predicted["title"], predicted[facet])}
    pairs = []
    for t, g in zip(gold["title"], gold[facet]):
        key = normalise_title(t)
        if key not in by_title:
            raise ValueError(f"gold title {t!r} is not among the predicted papers")
        pairs.append((str(g), str(by_title[key])))
    tags = sorted({g for g, _ in pairs} | {p for _, p in pairs})
    table = pd.crosstab(pd.Categorical([g for g, _ in pairs], tags), pd.Categorical([p for _, p in pairs], tags),
                        rownames=["gold"], colnames=["predicted"], dropna=False)
    return table.astype("int64")


def format_confusion(table: pd.DataFrame) -> str:
    """A confusion table as aligned text, gold down the side, predicted across."""
    corner = "gold \\ predicted"
    width = max([len(str(c)) for c in table.columns] + [5])
    side = max([len(str(i)) for i in table.index] + [len(corner)])
    lines = [f"{corner:<{side}} " + " ".join(f"{str(c)[:width]:>{width}}" for c in table.columns)]
    for name, row in table.iterrows():
        lines.append(f"{str(name):<{side}} " + " ".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)


DEFAULT_GRID = {
    "multi": {"threshold": (3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0), "relative": (0.3, 0.4, 0.5, 0.6),
              "mention_factor": (0.5, 0.75, 1.0)},
    "one": {"threshold": (3.0, 4.0, 5.0, 6.0, 7.0)},
}
# Constants that change the scores themselves (the others only change which tags are chosen).
_SCORING = ("mention_factor", "anchor")


@dataclass(frozen=True)
class CrossValidation:
    """Leave-some-out figures: `summary` (facet, metric, tuned: the mean over folds of the figure
    on the folds the constants were chosen on; held: the figure on all papers pooled from the
    folds left out), `folds` (per fold and facet, the constants chosen and both figures) and
    `held_tags` (each labelled paper tagged with the constants chosen without it)."""

    summary: pd.DataFrame
    folds: pd.DataFrame
    held_tags: pd.DataFrame


def _settings(facet, grid: dict) -> list[dict]:
    axes = grid[facet.select]
    names = list(axes)
    return [dict(zip(names, values)) for values in product(*(axes[n] for n in names))]


def _with_facet(taxonomy: Taxonomy, name: str, settings: dict) -> Taxonomy:
    return replace(taxonomy, facets=tuple(replace(f, **settings) if f.name == name else f for f in taxonomy.facets))


def _paper_counts(facet, predicted: list, gold_values: list) -> np.ndarray:
    """Per paper (tp, fp, fn) of a multi facet, or (correct, 0, 0) of a one-tag facet."""
    out = np.zeros((len(predicted), 3), dtype=np.int64)
    for i, (p, g) in enumerate(zip(predicted, gold_values)):
        if facet.select == "one":
            out[i, 0] = int(p == g)
        else:
            p, g = set(as_list(p)), set(as_list(g))
            out[i] = (len(p & g), len(p - g), len(g - p))
    return out


def _headline_of(facet, counts: np.ndarray) -> float:
    if facet.select == "one":
        return float(counts[:, 0].mean()) if len(counts) else 0.0
    tp, fp, fn = counts.sum(axis=0)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def cross_validate_tags(papers: pd.DataFrame, gold, taxonomy: Taxonomy | str | Path | None = None, *,
                        folds: int = 5, seed: int = 0, grid: dict | None = None,
                        examples=None) -> CrossValidation:
    """Leave-some-out evaluation of the tagger on hand labels (see the module docstring).

    `grid` maps a facet's select ("multi", "one") to the values tried for each of its constants.
    `examples(train_gold)` returns a fitted scorer for `tag_papers(..., examples=)` that learns
    from the labels it is given: it gets the labels of the tuning folds only, never those of the
    fold left out.
    """
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    gold = _gold_frame(gold)
    grid = grid or DEFAULT_GRID
    fold_of = label_folds(gold["title"], folds, seed)
    row_of = {normalise_title(t): i for i, t in enumerate(papers["title"])}
    missing = [t for t in gold["title"] if normalise_title(t) not in row_of]
    if missing:
        raise ValueError(f"{len(missing)} gold title(s) are not among the papers, e.g. {missing[0]!r}")
    labelled = papers.iloc[[row_of[normalise_title(t)] for t in gold["title"]]].reset_index(drop=True)
    facets = [f for f in tax.facets if f.name in gold.columns]
    scorers = [examples(gold[fold_of != k].reset_index(drop=True)) if examples is not None else None
               for k in range(folds)]
    extra = [s.tag_scores(labelled) if s is not None else None for s in scorers]

    # Facets are tuned in the order their tags are chosen, each fold on top of the constants
    # already chosen for it (a theme may weigh differently on a method paper).
    chosen_tax = [tax] * folds
    chosen_settings: dict[tuple[int, str], tuple[float, dict]] = {}
    for facet in _facet_order(tax):
        if facet.name not in gold.columns:
            continue
        settings = _settings(facet, grid)
        gold_values = gold[facet.name].tolist()
        by_scoring: dict[tuple, list[int]] = {}
        for j, st in enumerate(settings):
            by_scoring.setdefault(tuple((k, st[k]) for k in _SCORING if k in st), []).append(j)
        for k in range(folds):
            tune = fold_of != k
            results = []
            for scoring, group in by_scoring.items():
                rules = score_papers(labelled, _with_facet(chosen_tax[k], facet.name, dict(scoring)))
                scored = add_scores(rules, extra[k]) if extra[k] is not None else rules
                for j in group:
                    candidate = _with_facet(chosen_tax[k], facet.name, settings[j])
                    predicted = select_tags(candidate, scored)[facet.name]
                    results.append((_headline_of(facet, _paper_counts(facet, predicted, gold_values)[tune]), -j))
            score, neg_j = max(results)
            chosen_settings[(k, facet.name)] = (score, settings[-neg_j])
            chosen_tax[k] = _with_facet(chosen_tax[k], facet.name, settings[-neg_j])

    fold_rows, held_parts = [], []
    for k in range(folds):
        chosen = chosen_tax[k]
        held_papers = labelled[fold_of == k]
        tagged = tag_papers(held_papers, chosen, examples=scorers[k])
        held_gold = gold[fold_of == k]
        for facet in facets:
            tuned, st = chosen_settings[(k, facet.name)]
            held = _headline_of(facet, _paper_counts(facet, tagged[facet.name].tolist(), held_gold[facet.name].tolist()))
            fold_rows.append(dict(fold=k, facet=facet.name, tuned=tuned, held=held, papers_held=len(held_gold), **st))
        held_parts.append(tagged.assign(fold=k))
    held_tags = pd.concat(held_parts, ignore_index=True)
    fold_table = pd.DataFrame(fold_rows)
    aligned = held_tags.set_index(held_tags["title"].map(normalise_title))
    summary = []
    for f in facets:
        pred = [aligned.loc[normalise_title(t), f.name] for t in gold["title"]]
        summary.append(dict(facet=f.name, metric="accuracy" if f.select == "one" else "micro-F1",
                            tuned=float(fold_table.loc[fold_table["facet"] == f.name, "tuned"].mean()),
                            held=_headline_of(f, _paper_counts(f, pred, gold[f.name].tolist()))))
    return CrossValidation(pd.DataFrame(summary), fold_table, held_tags)


def neighbour_quality(papers: pd.DataFrame, gold, k: int = 10, *, similarity=None) -> pd.DataFrame:
    """Per labelled paper with a theme: how many of its `k` nearest labelled papers share a
    labelled theme with it (paper_id, title, neighbours, sharing, share). Neighbours are searched
    among the labelled papers only, since only their themes are known.

    `similarity`: an (n x n) similarity matrix over `papers` (default: the TF-IDF cosine of a
    `PaperIndex` fitted on all of them). The mean of `share` is the headline figure.
    """
    gold = _gold_frame(gold)
    themes = {normalise_title(t): set(as_list(v)) for t, v in zip(gold["title"], gold["theme"])}
    norm = [normalise_title(t) for t in papers["title"]]
    rows = [i for i, t in enumerate(norm) if t in themes]
    if similarity is None:
        index = PaperIndex().fit(papers)
        similarity = index.similarity_matrix()
    sims = np.asarray(similarity)[np.ix_(rows, rows)].astype(float)
    np.fill_diagonal(sims, -np.inf)
    out = []
    for a, i in enumerate(rows):
        mine = themes[norm[i]]
        if not mine:
            continue
        kk = min(k, len(rows) - 1)
        near = np.argsort(-sims[a], kind="stable")[:kk]
        sharing = sum(bool(mine & themes[norm[rows[b]]]) for b in near)
        out.append(dict(paper_id=papers["paper_id"].iloc[i] if "paper_id" in papers.columns else str(i),
                        title=papers["title"].iloc[i], neighbours=kk, sharing=sharing, share=sharing / kk))
    return pd.DataFrame(out, columns=["paper_id", "title", "neighbours", "sharing", "share"])


def shipped_tag_labels() -> dict[str, tuple[Path, ...]]:
    """The tag labels shipped with the corpus: "development" (the 60 papers read while the rules were
    written) and "held back" (the other 197, labelled without the tagger's output in view)."""
    folder = shipped_dir() / "labels"
    return {"development": (folder / "dev_tags.json",),
            "held back": tuple(folder / f"check{k}_tags.json" for k in ("", "2", "3", "4", "5"))}


def tag_scores(tagged: pd.DataFrame, labels: dict | None = None) -> pd.DataFrame:
    """How the tags of `tagged` agree with each group of hand labels (default: `shipped_tag_labels`),
    counting only the labelled papers `tagged` holds: rows theme micro-F1, precision and recall,
    kind accuracy, domain micro-F1; one column "<group> (N papers)" per group ("–" where none)."""
    titles = {normalise_title(t) for t in tagged["title"]}
    metrics = [("theme", "micro", "f1", "theme micro-F1"), ("theme", "micro", "precision", "theme precision"),
               ("theme", "micro", "recall", "theme recall"), ("kind", "accuracy", "f1", "kind accuracy"),
               ("domain", "micro", "f1", "domain micro-F1")]
    out = pd.DataFrame({"metric": [m[3] for m in metrics]})
    for group, paths in (labels or shipped_tag_labels()).items():
        gold = pd.concat([_gold_frame(p) for p in paths], ignore_index=True)
        gold = gold[[normalise_title(t) in titles for t in gold["title"]]]
        table = evaluate_tags(tagged, gold) if len(gold) else pd.DataFrame(columns=["facet", "tag", "f1"])
        values = []
        for facet, tag, col, _ in metrics:
            row = table[(table["facet"] == facet) & (table["tag"] == tag)]
            values.append(f"{row[col].iloc[0]:.2f}" if len(row) else "–")
        out[f"{group} ({len(gold)} papers)"] = values
    return out
