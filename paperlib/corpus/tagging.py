"""Rule tagger: scores every tag of a taxonomy from phrase hits in a paper's title and abstract.

A phrase counts by where it stands: in the title, in the abstract's first sentence, in a sentence
that states the paper's contribution, in one about other work, or elsewhere (the taxonomy's
`scoring` section gives the weights and the cue phrases). Each tag a paper receives comes with
the phrases that triggered it (`evidence`), so a reader can see why. All phrases of a taxonomy
are compiled once into a word trie, and only the positions where some phrase may start are
visited, so 100k abstracts are tagged in well under a minute of CPU.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from pathlib import Path

import pandas as pd

from paperlib.corpus.files import read_json_labels
from paperlib.corpus.reader import extract_acronym, normalise_title
from paperlib.corpus.taxonomy import TOKEN, Facet, Taxonomy, load_taxonomy
from paperlib.corpus.terms import class_tfidf_terms, paper_texts


_CLAIM, _BACKGROUND = "claim", "background"
# A sentence ends at . ! or ? followed by space and a capital, a digit or an opening bracket/quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")


@dataclass(frozen=True)
class _Compiled:
    # Per rule id: (kind, tag, weight, where). kind "rule": a scoring rule; "context": group number
    # `weight` of a tag's `requires`; "cue": a sentence cue, `tag` naming the role (claim, background).
    rules: tuple
    literal_first: dict  # first word -> trie node
    prefix_first: tuple  # (prefix, trie node) for first words ending in '*'
    needs_context: dict  # tag -> number of `requires` groups
    mention: dict  # tag -> mention factor of its facet (only factors below 1)
    anchor: dict  # tag -> the weight one of its phrases must reach (only anchors above 0)
    title_name: dict  # tag -> weight added when the title opens with a name ("NAME: ...")


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
    """All phrases of all tags (and the sentence cues) as one word trie, so each position of a
    text is matched against every rule at once."""
    rules, root = [], _node()
    specs = [(("cue", _CLAIM, None, "any"), taxonomy.claim_cues),
             (("cue", _BACKGROUND, None, "any"), taxonomy.background_cues)]
    for facet in taxonomy.facets:
        for tag in facet.tags:
            specs += [(("rule", tag.name, r.weight, r.where), r.phrases) for r in tag.rules]
            specs += [(("context", tag.name, g, "any"), group) for g, group in enumerate(tag.requires)]
    for spec, texts in specs:
        if not texts:
            continue
        rid = len(rules)
        rules.append(spec)
        for text in texts:
            node = root
            for w in text.split():
                node = _child(node, w.rstrip("*"), w.endswith("*"))
            if rid not in node[2]:
                node[2].append(rid)
    needs = {t.name: len(t.requires) for f in taxonomy.facets for t in f.tags if t.requires}
    mention = {t.name: f.mention_factor for f in taxonomy.facets for t in f.tags if f.mention_factor < 1}
    anchor = {t.name: f.anchor for f in taxonomy.facets for t in f.tags if f.anchor > 0}
    named = {t.name: t.title_name for f in taxonomy.facets for t in f.tags if t.title_name}
    return _Compiled(tuple(rules), root[0], tuple(root[1]), needs, mention, anchor, named)


class _Matcher:
    """Finds rule hits in a text; caches, per distinct word, the trie nodes a phrase may start from."""

    def __init__(self, compiled: _Compiled):
        self.c = compiled
        self.cache: dict[str, tuple] = {}
        # first-word prefixes by their first two letters, so a word is checked against few of them
        self.prefixes: dict[str, list] = {}
        self.short = [(p, node) for p, node in compiled.prefix_first if len(p) < 2]
        for p, node in compiled.prefix_first:
            if len(p) >= 2:
                self.prefixes.setdefault(p[:2], []).append((p, node))

    def _starts(self, word: str) -> tuple:
        got = self.cache.get(word)
        if got is None:
            first = self.c.literal_first.get(word)
            got = ((first,) if first is not None else ()) + tuple(
                node for p, node in self.prefixes.get(word[:2], []) + self.short if word.startswith(p))
            self.cache[word] = got
        return got

    def hits(self, words: list[str]) -> dict[int, list[tuple[str, int]]]:
        """Rule id -> (matched phrase, position of its first word), one per hit, for lower-case words."""
        found: dict[int, list[tuple[str, int]]] = {}
        n = len(words)
        if not n:
            return found
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
                            found.setdefault(rid, []).append((phrase, i))
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


def split_sentences(text: str) -> list[str]:
    """The sentences of an abstract (split after . ! ? before a capital, digit or bracket)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s] if text and text.strip() else []


def _sentence_words(abstract: str) -> tuple[list[str], list[int]]:
    """Lower-case words of the abstract and the sentence each word stands in."""
    words: list[str] = []
    sent_of: list[int] = []
    for k, sentence in enumerate(split_sentences(abstract)):
        found = TOKEN.findall(sentence.lower())
        words += found
        sent_of += [k] * len(found)
    return words, sent_of


def _sentence_roles(hits: dict, rules: tuple, sent_of: list[int], n_sentences: int) -> list[str]:
    """Role of each sentence: `claim` (a contribution cue), `lead` (the first), `background`
    (a cue about other work), else `other`."""
    cued: dict[str, set[int]] = {_CLAIM: set(), _BACKGROUND: set()}
    for rid, found in hits.items():
        kind, role = rules[rid][0], rules[rid][1]
        if kind == "cue":
            cued[role].update(sent_of[pos] for _, pos in found)
    roles = []
    for k in range(n_sentences):
        if k in cued[_CLAIM]:
            roles.append(_CLAIM)
        elif k == 0:
            roles.append("lead")
        elif k in cued[_BACKGROUND]:
            roles.append(_BACKGROUND)
        else:
            roles.append("other")
    return roles


def _score(matcher: _Matcher, taxonomy: Taxonomy, title: str, abstract: str):
    """Per tag: score and the phrases behind its positive contributions.

    A title hit counts `title_weight` once per rule; abstract hits count the weight of their
    sentence's role, the best `max_count` of them per rule. A tag of a facet with a mention
    factor whose phrases stand in one sentence only is a passing mention and keeps that fraction
    of its score: on a facet with an anchor (a core vocabulary, the themes) any one sentence of
    the abstract, on others one body sentence (not the first, not a contribution sentence).
    """
    c = matcher.c
    rules = c.rules
    words, sent_of = _sentence_words(abstract)
    ahits = matcher.hits(words)
    roles = _sentence_roles(ahits, rules, sent_of, sent_of[-1] + 1) if sent_of else []
    role_weight = dict(taxonomy.sentence_weights)
    weights = [role_weight[r] for r in roles]
    max_count = taxonomy.max_count
    mention = c.mention
    anchored = c.anchor
    scores: dict[str, float] = {}
    negative: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    context: dict[str, set] = {}
    prominent: set[str] = set()  # tags exempt from the passing-mention test (see below)
    strongest: dict[str, float] = {}  # tag -> weight of its strongest rule with a hit
    in_title: set[str] = set()  # tags with a positive hit in the title
    body: dict[str, set[int]] = {}  # tag -> sentences with a positive hit that the mention test counts
    for field, hits in (("title", matcher.hits(TOKEN.findall(title.lower()))), ("abstract", ahits)):
        for rid, found in hits.items():
            kind, tag, weight, where = rules[rid]
            if kind == "context":
                context.setdefault(tag, set()).add(weight)
                continue
            if kind != "rule" or where == "title" and field != "title" or where in ("abstract", "claim") and field != "abstract":
                continue
            if field == "title":
                factor = taxonomy.title_weight
                used = found
                if weight > 0:
                    prominent.add(tag)
                    in_title.add(tag)
            else:
                if where == "claim":
                    used = [f for f in found if roles[sent_of[f[1]]] == _CLAIM]
                    if not used:
                        continue
                else:
                    used = found
                sents = [sent_of[pos] for _, pos in used]
                if len(sents) == 1:
                    factor = weights[sents[0]]
                else:
                    factor = sum(sorted((weights[k] for k in sents), reverse=True)[:max_count])
                if weight > 0 and tag in mention:
                    # A tag with a core vocabulary (its facet's anchor) is a subject only when it
                    # stands in the title or in two sentences; one contribution sentence is not
                    # enough ("we further apply distillation"). Other tags are exempt from the test
                    # as soon as they stand in the first sentence or a contribution sentence.
                    for k in sents:
                        if tag in anchored or roles[k] in ("other", _BACKGROUND):
                            body.setdefault(tag, set()).add(k)
                        else:
                            prominent.add(tag)
            if weight > 0:
                scores[tag] = scores.get(tag, 0.0) + weight * factor
                strongest[tag] = max(strongest.get(tag, 0.0), weight)
                ev = evidence.setdefault(tag, [])
                for p, _ in used:
                    if p not in ev:
                        ev.append(p)
            else:
                negative[tag] = negative.get(tag, 0.0) + weight * factor
    if c.title_name:
        name = extract_acronym(title)
        if name:
            for tag, weight in c.title_name.items():
                scores[tag] = scores.get(tag, 0.0) + weight
                if weight > 0:
                    evidence.setdefault(tag, []).append(f"title names {name}")
    for tag, factor in c.mention.items():
        if tag in scores and tag not in prominent and len(body.get(tag, ())) <= 1:
            scores[tag] *= factor
    for tag, value in negative.items():
        scores[tag] = scores.get(tag, 0.0) + value
    for tag, weight in c.anchor.items():
        if tag in scores and tag not in in_title and strongest.get(tag, 0.0) < weight:
            scores[tag] = min(scores[tag], 0.0)
            evidence.pop(tag, None)
    for tag, groups in c.needs_context.items():
        if len(context.get(tag, ())) < groups:
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


def score_papers(papers: pd.DataFrame, taxonomy: Taxonomy) -> list[tuple[dict, dict]]:
    """Per paper, (tag -> rule score, tag -> phrases behind it) before any tag is chosen."""
    missing = {"title", "abstract"} - set(papers.columns)
    if missing:
        raise ValueError(f"tag_papers needs columns 'title' and 'abstract'; missing {sorted(missing)}")
    matcher = _Matcher(_compile(taxonomy))
    return [_score(matcher, taxonomy, _text(title), _text(abstract))
            for title, abstract in zip(papers["title"].tolist(), papers["abstract"].tolist())]


def add_scores(scored: list[tuple[dict, dict]], extra: list[dict]) -> list[tuple[dict, dict]]:
    """Rule scores plus further scores per paper (tag -> (score, evidence list)), evidence appended."""
    out = []
    for (scores, evidence), more in zip(scored, extra):
        scores, evidence = dict(scores), {t: list(v) for t, v in evidence.items()}
        for tag, (value, why) in more.items():
            scores[tag] = scores.get(tag, 0.0) + value
            if value > 0:
                evidence.setdefault(tag, []).extend(w for w in why if w not in evidence.get(tag, []))
        out.append((scores, evidence))
    return out


def _facet_order(taxonomy: Taxonomy) -> list[Facet]:
    """Facets in the order their tags are chosen: those whose scores depend on another facet's
    tag (`given`) after the facets they depend on."""
    dependent = {f.name for f in taxonomy.facets if any(t.given for t in f.tags)}
    return [f for f in taxonomy.facets if f.name not in dependent] + [f for f in taxonomy.facets if f.name in dependent]


def select_tags(taxonomy: Taxonomy, scored: list[tuple[dict, dict]]) -> dict[str, list]:
    """Per facet, the tag(s) of every paper chosen from its scores (threshold, share of the best,
    overrides, at most max_tags, the default), after the factors a tag takes from the tag chosen
    on another facet (`given`)."""
    order = _facet_order(taxonomy)
    orders = {f.name: {t: i for i, t in enumerate(f.tag_names)} for f in taxonomy.facets}
    given = {t.name: dict(t.given) for f in taxonomy.facets for t in f.tags if t.given}
    columns: dict[str, list] = {f.name: [] for f in taxonomy.facets}
    for scores, _ in scored:
        chosen: set[str] = set()
        for facet in order:
            if given and any(t in given for t in facet.tag_names):
                scores = dict(scores)
                for t in facet.tag_names:
                    if t in given and t in scores:
                        for other, factor in given[t].items():
                            if other in chosen:
                                scores[t] *= factor
            pick = _select(facet, scores, orders[facet.name])
            columns[facet.name].append(pick)
            chosen.update([pick] if isinstance(pick, str) else pick)
    return columns


def tag_papers(papers: pd.DataFrame, taxonomy: Taxonomy | str | Path | None = None, *,
               examples=None) -> pd.DataFrame:
    """The papers plus one column per facet (list for multi facets, str for one), `evidence`
    (tag -> phrases that led to it, for the tags given) and `scores` (tag -> score, non-zero only).

    `examples`: an optional fitted scorer (`paperlib.corpus.semantic.ExampleScorer`) whose scores,
    from the papers' similarity to each tag's definition and to labelled papers, are added to the
    rule scores; its evidence names the definition or the labelled papers that drove it.
    """
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = load_taxonomy(taxonomy)
    scored = score_papers(papers, taxonomy)
    if examples is not None:
        scored = add_scores(scored, examples.tag_scores(papers))
    columns = select_tags(taxonomy, scored)
    evidence_col, scores_col = [], []
    for k, (scores, evidence) in enumerate(scored):
        given = []
        for facet in taxonomy.facets:
            chosen = columns[facet.name][k]
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
    data = read_json_labels(path)
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
