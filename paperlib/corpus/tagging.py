"""Rule tagger: scores every tag of a taxonomy from phrase hits in a paper's title and abstract.

Each tag a paper receives comes with the phrases that triggered it (`evidence`), so a reader can
see why. All phrases of a taxonomy are compiled once into a word trie, and only the positions
where some phrase may start are visited, so 100k abstracts are tagged in well under a minute.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from pathlib import Path

import pandas as pd

from paperlib.corpus.reader import normalise_title
from paperlib.corpus.taxonomy import TOKEN, Facet, Taxonomy, load_taxonomy
from paperlib.corpus.terms import class_tfidf_terms, paper_texts


@dataclass(frozen=True)
class _Compiled:
    rules: tuple  # (tag, weight, where) per rule; weight None marks a tag's `requires` context
    literal_first: dict  # first word -> trie node
    prefix_first: tuple  # (prefix, trie node) for first words ending in '*'
    needs_context: frozenset  # tags with a `requires` list


def _node() -> list:
    # A word-trie node: [children by exact word, [(prefix, child)], rule ids of phrases ending here]
    return [{}, [], []]


def _child(node: list, word: str, is_prefix: bool) -> list:
    if is_prefix:
        for p, child in node[1]:
            if p == word:
                return child
        child = _node()
        node[1].append((word, child))
        return child
    return node[0].setdefault(word, _node())


@lru_cache(maxsize=16)
def _compile(taxonomy: Taxonomy) -> _Compiled:
    """All phrases of all tags as one word trie, so each position of a text is matched against
    every rule at once."""
    rules, root = [], _node()
    for facet in taxonomy.facets:
        for tag in facet.tags:
            specs = [(r.phrases, r.weight, r.where) for r in tag.rules]
            if tag.requires:
                specs.append((tag.requires, None, "any"))
            for texts, weight, where in specs:
                rid = len(rules)
                rules.append((tag.name, weight, where))
                for text in texts:
                    node = root
                    for w in text.split():
                        node = _child(node, w.rstrip("*"), w.endswith("*"))
                    if rid not in node[2]:
                        node[2].append(rid)
    needs = frozenset(t.name for f in taxonomy.facets for t in f.tags if t.requires)
    return _Compiled(tuple(rules), root[0], tuple(root[1]), needs)


class _Matcher:
    """Finds rule hits in a text; caches, per distinct word, the trie nodes a phrase may start from."""

    def __init__(self, compiled: _Compiled):
        self.c = compiled
        self.cache: dict[str, tuple] = {}

    def _starts(self, word: str) -> tuple:
        got = self.cache.get(word)
        if got is None:
            first = self.c.literal_first.get(word)
            got = ((first,) if first is not None else ()) + tuple(
                node for p, node in self.c.prefix_first if word.startswith(p))
            self.cache[word] = got
        return got

    def hits(self, text: str) -> dict[int, list[str]]:
        """Rule id -> matched phrases (lowercased, punctuation folded to spaces), one per hit."""
        found: dict[int, list[str]] = {}
        if not text:
            return found
        words = TOKEN.findall(text.lower())
        n = len(words)
        cache = self.cache
        for w in set(words).difference(cache):
            self._starts(w)
        starts_at = list(map(cache.__getitem__, words))
        # Only positions where some phrase may start are visited (compress runs in C).
        for i in compress(range(n), starts_at):
            frontier, j = starts_at[i], i + 1
            while frontier:
                nxt = []
                for lit, pre, ends in frontier:
                    if ends:
                        phrase = " ".join(words[i:j])
                        for rid in ends:
                            found.setdefault(rid, []).append(phrase)
                    if j < n:
                        w = words[j]
                        child = lit.get(w) if lit else None
                        if child is not None:
                            nxt.append(child)
                        for p, child in pre:
                            if w.startswith(p):
                                nxt.append(child)
                frontier, j = nxt, j + 1
        return found


def _score(matcher: _Matcher, taxonomy: Taxonomy, title: str, abstract: str):
    """Per tag: score and the phrases behind its positive contributions."""
    rules = matcher.c.rules
    scores: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    context: set[str] = set()
    for field, hits in (("title", matcher.hits(title)), ("abstract", matcher.hits(abstract))):
        for rid, found in hits.items():
            tag, weight, where = rules[rid]
            if weight is None:
                context.add(tag)
                continue
            if where != "any" and where != field:
                continue
            factor = taxonomy.title_weight if field == "title" else min(len(found), taxonomy.max_count)
            scores[tag] = scores.get(tag, 0.0) + weight * factor
            if weight > 0:
                ev = evidence.setdefault(tag, [])
                for p in found:
                    if p not in ev:
                        ev.append(p)
    for tag in matcher.c.needs_context - context:
        scores.pop(tag, None)
        evidence.pop(tag, None)
    return scores, evidence


def _select(facet: Facet, scores: dict[str, float], order: dict[str, int]):
    """The facet's tag(s) for one paper; `order` (tag -> position) breaks ties by taxonomy order."""
    ranked = sorted(((s, -order[t], t) for t, s in scores.items() if t in order), reverse=True)
    if facet.select == "one":
        if ranked and ranked[0][0] >= facet.threshold:
            return ranked[0][2]
        return facet.default
    top = ranked[0][0] if ranked else 0.0
    chosen = [t for s, _, t in ranked if s >= facet.threshold and s >= facet.relative * top]
    if chosen:
        dropped = {o for t in facet.tags if t.overrides and t.name in chosen for o in t.overrides}
        chosen = [t for t in chosen if t not in dropped]
    if facet.max_tags is not None:
        chosen = chosen[: facet.max_tags]
    if not chosen and facet.default is not None:
        chosen = [facet.default]
    return chosen


def _text(value) -> str:
    if not isinstance(value, str):
        return "" if value is None or pd.isna(value) else str(value)
    return value


def as_list(value) -> list[str]:
    """A list-valued cell as a list of strings: the tags of a multi facet, the one tag of a
    single facet, a paper's code links. None, NaN and the empty string are no items."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def tag_papers(papers: pd.DataFrame, taxonomy: Taxonomy | str | Path | None = None) -> pd.DataFrame:
    """The papers plus one column per facet (list for multi facets, str for one), `evidence`
    (tag -> phrases that led to it, for the tags given) and `scores` (tag -> score, non-zero only)."""
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = load_taxonomy(taxonomy)
    missing = {"title", "abstract"} - set(papers.columns)
    if missing:
        raise ValueError(f"tag_papers needs columns 'title' and 'abstract'; missing {sorted(missing)}")
    matcher = _Matcher(_compile(taxonomy))
    columns: dict[str, list] = {f.name: [] for f in taxonomy.facets}
    orders = {f.name: {t: i for i, t in enumerate(f.tag_names)} for f in taxonomy.facets}
    evidence_col, scores_col = [], []
    for title, abstract in zip(papers["title"].tolist(), papers["abstract"].tolist()):
        scores, evidence = _score(matcher, taxonomy, _text(title), _text(abstract))
        given = []
        for facet in taxonomy.facets:
            chosen = _select(facet, scores, orders[facet.name])
            columns[facet.name].append(chosen)
            given += [chosen] if isinstance(chosen, str) else chosen
        evidence_col.append({t: evidence.get(t, []) for t in given})
        scores_col.append({t: round(s, 3) for t, s in scores.items() if s != 0})
    out = papers.copy()
    for name, values in columns.items():
        out[name] = pd.Series(values, index=out.index, dtype=object)
    out["evidence"] = pd.Series(evidence_col, index=out.index, dtype=object)
    out["scores"] = pd.Series(scores_col, index=out.index, dtype=object)
    return out


def load_gold(path: str | Path) -> pd.DataFrame:
    """Hand labels (JSON list of {title, theme, kind, domain, ...}) as a DataFrame."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read gold labels: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and "title" in r for r in data):
        raise ValueError(f"{path}: gold labels must be a JSON list of objects with a 'title'")
    return pd.DataFrame(data)


def evaluate_tags(predicted: pd.DataFrame, gold, *, facets=("theme", "kind", "domain")) -> pd.DataFrame:
    """Precision, recall and F1 per tag plus micro/macro rows per facet (and accuracy for a facet
    with one tag per paper), matching papers by title. Tidy: one row per (facet, tag)."""
    if isinstance(gold, (str, Path)):
        gold = load_gold(gold)
    elif isinstance(gold, list):
        gold = pd.DataFrame(gold)
    pred_by_title = {normalise_title(t): i for i, t in enumerate(predicted["title"].tolist())}
    missing = [t for t in gold["title"] if normalise_title(t) not in pred_by_title]
    if missing:
        raise ValueError(f"{len(missing)} gold title(s) are not among the predicted papers, "
                         f"e.g. {missing[0]!r}; tag the papers the labels describe")
    rows = []
    for facet in facets:
        if facet not in gold.columns or facet not in predicted.columns:
            continue
        pairs = [(set(as_list(predicted[facet].iloc[pred_by_title[normalise_title(t)]])), set(as_list(g)))
                 for t, g in zip(gold["title"], gold[facet])]
        single = all(isinstance(g, str) for g in gold[facet])
        tags = sorted(set().union(*(p | g for p, g in pairs)))
        tp_all = fp_all = fn_all = 0
        per_tag = []
        for tag in tags:
            tp = sum(tag in p and tag in g for p, g in pairs)
            fp = sum(tag in p and tag not in g for p, g in pairs)
            fn = sum(tag not in p and tag in g for p, g in pairs)
            prec, rec, f1 = _prf(tp, fp, fn)
            rows.append(dict(facet=facet, tag=tag, level="tag", precision=prec, recall=rec, f1=f1,
                             support=tp + fn, predicted=tp + fp))
            tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
            per_tag.append((prec, rec, f1))
        prec, rec, f1 = _prf(tp_all, fp_all, fn_all)
        rows.append(dict(facet=facet, tag="micro", level="summary", precision=prec, recall=rec, f1=f1,
                         support=tp_all + fn_all, predicted=tp_all + fp_all))
        macro = [sum(col) / max(len(per_tag), 1) for col in zip(*per_tag)] or [0.0, 0.0, 0.0]
        rows.append(dict(facet=facet, tag="macro", level="summary", precision=macro[0], recall=macro[1],
                         f1=macro[2], support=tp_all + fn_all, predicted=tp_all + fp_all))
        if single:
            acc = sum(p == g for p, g in pairs) / max(len(pairs), 1)
            rows.append(dict(facet=facet, tag="accuracy", level="summary", precision=acc, recall=acc,
                             f1=acc, support=len(pairs), predicted=len(pairs)))
    return pd.DataFrame(rows, columns=["facet", "tag", "level", "precision", "recall", "f1", "support", "predicted"])


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1


def format_evaluation(table: pd.DataFrame) -> str:
    """The evaluation table as aligned text (what `paperlib tag --evaluate` prints)."""
    lines = [f"{'facet':<8} {'tag':<24} {'prec':>5} {'rec':>5} {'f1':>5} {'gold':>5} {'pred':>5}"]
    for r in table.itertuples(index=False):
        if r.level == "summary" and r.tag == "micro":
            lines.append("-" * len(lines[0]))
        lines.append(f"{r.facet:<8} {r.tag:<24} {r.precision:5.2f} {r.recall:5.2f} {r.f1:5.2f} "
                     f"{r.support:5d} {r.predicted:5d}")
    return "\n".join(lines)


def compute_tag_counts(tagged: pd.DataFrame, facet: str = "theme") -> pd.DataFrame:
    """How many papers carry each tag of `facet`, most frequent first."""
    if facet not in tagged.columns:
        raise KeyError(f"no column {facet!r}; run tag_papers first (columns: {list(tagged.columns)})")
    counts: dict[str, int] = {}
    for value in tagged[facet]:
        for t in set(as_list(value)):
            counts[t] = counts.get(t, 0) + 1
    df = pd.DataFrame(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), columns=["tag", "papers"])
    return df.astype({"papers": "int64"})


def top_terms_by_tag(tagged: pd.DataFrame, facet: str = "theme", n: int = 10) -> pd.DataFrame:
    """The n most distinctive words of the papers carrying each tag (class-based TF-IDF)."""
    if facet not in tagged.columns:
        raise KeyError(f"no column {facet!r}; run tag_papers first")
    groups: dict[str, list[str]] = {}
    for text, value in zip(paper_texts(tagged), tagged[facet]):
        for t in dict.fromkeys(as_list(value)):
            groups.setdefault(t, []).append(text)
    rows = []
    for tag, terms in class_tfidf_terms(groups, n=n).items():
        rows += [dict(tag=tag, term=term, score=score) for term, score in terms]
    return pd.DataFrame(rows, columns=["tag", "term", "score"])
