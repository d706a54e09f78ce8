"""The editable tag taxonomy: facets, tags, their definitions and the phrase rules that detect them.

The default lives in `data/taxonomy.yaml`; a user passes their own file for another corpus.
A malformed file raises `TaxonomyError` naming the tag and the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


from paperlib.errors import TaxonomyError
from paperlib.corpus.files import load_yaml_with_lines
from paperlib.paths import default_taxonomy_path

WHERE = ("any", "title", "abstract", "claim")
# Roles of the abstract's sentences, each with a weight in `scoring.sentence_weights`.
SENTENCE_ROLES = ("lead", "claim", "background", "other")
SELECT = ("multi", "one")
# Output columns of `tag_papers`; a facet may not reuse them.
RESERVED = {"paper_id", "title", "abstract", "source", "line", "evidence", "scores", "methods"}
_PHRASE_CHARS = re.compile(r"^[^\W_]+\*?$")
TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Rule:
    """Phrases that add `weight` to a tag's score when found: in the title, the abstract, either
    (`any`), or only in the abstract's sentences that state the paper's contribution (`claim`)."""

    phrases: tuple[str, ...]
    weight: float
    where: str = "any"
    line: int | None = None


@dataclass(frozen=True)
class Tag:
    """One tag of a facet: its definition for readers and its detection rules."""

    name: str
    definition: str
    rules: tuple[Rule, ...] = ()
    line: int | None = None
    # Context the tag needs: groups of phrases, each group met when one of its phrases occurs
    # somewhere in the paper; the tag is only given when every group is met.
    requires: tuple[tuple[str, ...], ...] = ()
    # Tags of the same facet that this one replaces when both would be given (multimodal > vision).
    overrides: tuple[str, ...] = ()
    # Added when the title opens with the name of what the paper introduces ("NAME: ...").
    title_name: float = 0.0
    # Factors on the score by the tag the paper gets on another, one-tag facet
    # (dynamics-theory weighs less on a method paper): ((tag, factor), ...).
    given: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Facet:
    """A family of tags: `select="multi"` gives a list per paper, `"one"` exactly one tag."""

    name: str
    tags: tuple[Tag, ...]
    select: str = "multi"
    threshold: float = 1.0
    relative: float = 0.0
    max_tags: int | None = None
    default: str | None = None
    # A tag whose phrases occur only in the abstract's body (not the title, the first sentence or
    # a contribution sentence), and there in one sentence, is a passing mention: its score is
    # multiplied by this factor.
    mention_factor: float = 1.0
    # A tag needs a phrase in the title or one from a rule of at least this weight (its core
    # vocabulary); 0: any phrases may add up to the threshold.
    anchor: float = 0.0

    @cached_property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tags)


@dataclass(frozen=True)
class Taxonomy:
    """Facets plus the scoring constants shared by all rules.

    A phrase found in the title counts `title_weight`; one found in the abstract counts the weight
    of its sentence's role (`sentence_weights`: the first sentence is the `lead`, a sentence with a
    `claim_cues` phrase states the contribution, one with a `background_cues` phrase speaks of
    other work, the rest are `other`); a rule's hits in the abstract count at most `max_count`
    times (its best-placed hits first).
    """

    name: str
    facets: tuple[Facet, ...]
    title_weight: float = 2.0
    max_count: int = 3
    source: str | None = None
    sentence_weights: tuple[tuple[str, float], ...] = tuple((r, 1.0) for r in SENTENCE_ROLES)
    claim_cues: tuple[str, ...] = ()
    background_cues: tuple[str, ...] = ()

    def facet(self, name: str) -> Facet:
        for f in self.facets:
            if f.name == name:
                return f
        raise KeyError(f"taxonomy {self.name!r} has no facet {name!r} (facets: {', '.join(self.facet_names)})")

    @property
    def facet_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.facets)

    def sentence_weight(self, role: str) -> float:
        return dict(self.sentence_weights)[role]

    def definitions(self) -> dict[str, str]:
        """Tag name -> definition, over all facets (for hover text and tables)."""
        return {t.name: t.definition for f in self.facets for t in f.tags}


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read a taxonomy YAML file (the shipped default when `path` is None) and check every field."""
    path = Path(path) if path is not None else default_taxonomy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(path, None, f"cannot read taxonomy file: {exc.strerror or exc}") from exc
    return parse_taxonomy(text, source=str(path))


def parse_taxonomy(text: str, *, source: str | None = None) -> Taxonomy:
    """Build a `Taxonomy` from YAML text; errors name `source`, the tag and the line."""
    raw = load_yaml_with_lines(text, source, TaxonomyError)
    return _build(raw, source)


def _fail(source, line, message):
    raise TaxonomyError(source, line, message)


def _mapping(value, source, line, what):
    if not isinstance(value, dict):
        _fail(source, line, f"{what} must be a mapping of keys to values, got {type(value).__name__}")
    return value


def _check_keys(d, allowed, source, what):
    for key in d:
        if key not in ("__line__", "__keylines__") and key not in allowed:
            _fail(source, d["__keylines__"].get(key, d.get("__line__")), f"{what}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def _number(value, source, line, what, *, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(source, line, f"{what} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        _fail(source, line, f"{what} must be at least {minimum}, got {value!r}")
    return float(value)


def _phrase(p, source, line, tag):
    where = tag if tag.startswith("scoring") else f"tag {tag!r}"
    if not isinstance(p, str) or not p.strip():
        _fail(source, line, f"{where}: every phrase must be a non-empty string, got {p!r}")
    words = re.split(r"[\s\-]+", p.strip().lower())
    for w in words:
        if not _PHRASE_CHARS.match(w):
            _fail(source, line, f"{where}: phrase {p!r} may use letters, digits, spaces, '-' "
                                f"and a '*' ending a word; {w!r} is not allowed")
    return " ".join(words)


def _build_rule(r, source, tag, tag_line) -> Rule:
    if not isinstance(r, dict):
        _fail(source, tag_line, f"tag {tag!r}: each rule must be a mapping with 'phrases' and 'weight', got {r!r}")
    line = r.get("__line__")
    _check_keys(r, {"phrases", "weight", "where"}, source, f"tag {tag!r} rule")
    phrases = r.get("phrases")
    if isinstance(phrases, str):
        phrases = [phrases]
    if not isinstance(phrases, list) or not phrases:
        _fail(source, line, f"tag {tag!r}: a rule needs a non-empty list 'phrases'")
    if "weight" not in r:
        _fail(source, line, f"tag {tag!r}: a rule needs a 'weight'")
    weight = _number(r["weight"], source, line, f"tag {tag!r}: weight")
    where = r.get("where", "any")
    if where not in WHERE:
        _fail(source, line, f"tag {tag!r}: 'where' must be one of {', '.join(WHERE)}, got {where!r}")
    return Rule(tuple(_phrase(p, source, line, tag) for p in phrases), weight, where, line)


def _build_facet(name, f, source, seen_tags, line) -> Facet:
    f = _mapping(f, source, line, f"facet {name!r}")
    if name in RESERVED:
        _fail(source, line, f"facet name {name!r} is reserved for another column")
    _check_keys(f, {"select", "threshold", "relative", "max_tags", "default", "mention_factor", "anchor", "tags"},
                source, f"facet {name!r}")
    select = f.get("select", "multi")
    if select not in SELECT:
        _fail(source, line, f"facet {name!r}: 'select' must be 'multi' or 'one', got {select!r}")
    tags_raw = _mapping(f.get("tags"), source, line, f"facet {name!r}: 'tags'")
    tags = []
    for tname, traw in tags_raw.items():
        if tname in ("__line__", "__keylines__"):
            continue
        tline = tags_raw["__keylines__"][tname]
        if not isinstance(tname, str) or not tname.strip():
            _fail(source, tline, f"facet {name!r}: tag names must be non-empty strings, got {tname!r}")
        if tname in seen_tags:
            _fail(source, tline, f"tag {tname!r} is defined twice (also in facet {seen_tags[tname]!r}); "
                                 "tag names must be unique across facets")
        seen_tags[tname] = name
        traw = _mapping(traw, source, tline, f"tag {tname!r}")
        _check_keys(traw, {"definition", "rules", "requires", "overrides", "title_name", "given"}, source,
                    f"tag {tname!r}")
        definition = traw.get("definition")
        if not isinstance(definition, str) or not definition.strip():
            _fail(source, tline, f"tag {tname!r}: needs a 'definition' (a sentence saying what it means)")
        rules_raw = traw.get("rules") or []
        if not isinstance(rules_raw, list):
            _fail(source, tline, f"tag {tname!r}: 'rules' must be a list")
        rules = tuple(_build_rule(r, source, tname, tline) for r in rules_raw)
        requires = _requires(traw.get("requires") or [], source, tline, tname)
        overrides = traw.get("overrides") or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            _fail(source, tline, f"tag {tname!r}: 'overrides' must be a list of tag names")
        title_name = _number(traw.get("title_name", 0.0), source, tline, f"tag {tname!r}: title_name")
        given_raw = traw.get("given") or {"__line__": tline, "__keylines__": {}}
        given_raw = _mapping(given_raw, source, tline, f"tag {tname!r}: 'given'")
        given = tuple((str(k), _number(v, source, given_raw["__keylines__"].get(k, tline), f"tag {tname!r}: given.{k}",
                                       minimum=0))
                      for k, v in given_raw.items() if k not in ("__line__", "__keylines__"))
        tags.append(Tag(tname, " ".join(definition.split()), rules, tline, requires, tuple(overrides), title_name,
                        given))
    if not tags:
        _fail(source, line, f"facet {name!r} has no tags")
    names = {t.name for t in tags}
    for t in tags:
        for o in t.overrides:
            if o not in names or o == t.name:
                _fail(source, t.line, f"tag {t.name!r}: overrides {o!r}, which is not another tag of facet {name!r}")
    default = f.get("default")
    if default is not None and default not in names:
        _fail(source, f["__keylines__"]["default"], f"facet {name!r}: default {default!r} is not one of its tags")
    if select == "one" and default is None:
        _fail(source, line, f"facet {name!r} selects one tag per paper, so it needs a 'default' tag")
    max_tags = f.get("max_tags")
    if max_tags is not None and (isinstance(max_tags, bool) or not isinstance(max_tags, int) or max_tags < 1):
        _fail(source, line, f"facet {name!r}: max_tags must be a positive integer, got {max_tags!r}")
    return Facet(
        name=name, tags=tuple(tags), select=select,
        threshold=_number(f.get("threshold", 1.0), source, line, f"facet {name!r}: threshold"),
        relative=_number(f.get("relative", 0.0), source, line, f"facet {name!r}: relative", minimum=0),
        max_tags=max_tags, default=default,
        mention_factor=_number(f.get("mention_factor", 1.0), source, line, f"facet {name!r}: mention_factor",
                               minimum=0),
        anchor=_number(f.get("anchor", 0.0), source, line, f"facet {name!r}: anchor", minimum=0),
    )


def _requires(raw, source, line, tag) -> tuple[tuple[str, ...], ...]:
    """`requires` as groups of phrases: a list of phrases is one group, a list of lists several."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        _fail(source, line, f"tag {tag!r}: 'requires' must be a list of phrases or a list of lists of phrases")
    if raw and all(isinstance(g, list) for g in raw):
        groups = raw
    elif any(isinstance(g, list) for g in raw):
        _fail(source, line, f"tag {tag!r}: 'requires' mixes phrases and lists; use a list of lists for several groups")
    else:
        groups = [raw] if raw else []
    out = []
    for g in groups:
        if not g:
            _fail(source, line, f"tag {tag!r}: a 'requires' group is empty")
        out.append(tuple(_phrase(p, source, line, tag) for p in g))
    return tuple(out)


def _phrase_list(value, source, line, what) -> tuple[str, ...]:
    if not isinstance(value, list):
        _fail(source, line, f"{what} must be a list of phrases")
    return tuple(_phrase(p, source, line, what) for p in value)


def _build(raw, source) -> Taxonomy:
    raw = _mapping(raw, source, 1, "the taxonomy file")
    _check_keys(raw, {"name", "scoring", "facets"}, source, "top level")
    scoring = raw.get("scoring") or {"__line__": raw["__line__"], "__keylines__": {}}
    scoring = _mapping(scoring, source, raw["__line__"], "'scoring'")
    _check_keys(scoring, {"title_weight", "max_count", "sentence_weights", "claim_cues", "background_cues"},
                source, "scoring")
    facets_raw = raw.get("facets")
    if facets_raw is None:
        _fail(source, raw["__line__"], "missing 'facets' (a mapping of facet name to its tags)")
    facets_raw = _mapping(facets_raw, source, raw["__line__"], "'facets'")
    seen: dict[str, str] = {}
    facets = tuple(_build_facet(n, f, source, seen, facets_raw["__keylines__"][n])
                   for n, f in facets_raw.items() if n not in ("__line__", "__keylines__"))
    if not facets:
        _fail(source, facets_raw["__line__"], "'facets' is empty")
    one_tags = {t.name: f.name for f in facets if f.select == "one" for t in f.tags}
    for f in facets:
        for t in f.tags:
            for other, _ in t.given:
                if other not in one_tags or one_tags[other] == f.name:
                    _fail(source, t.line, f"tag {t.name!r}: 'given' names {other!r}, which is not a tag of "
                                          "another facet that selects one tag")
    max_count = scoring.get("max_count", 3)
    if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1:
        _fail(source, scoring["__line__"], f"scoring: max_count must be a positive integer, got {max_count!r}")
    keylines = scoring["__keylines__"]
    weights = dict.fromkeys(SENTENCE_ROLES, 1.0)
    raw_weights = scoring.get("sentence_weights")
    if raw_weights is not None:
        wline = keylines.get("sentence_weights", scoring["__line__"])
        raw_weights = _mapping(raw_weights, source, wline, "scoring: sentence_weights")
        _check_keys(raw_weights, set(SENTENCE_ROLES), source, "scoring: sentence_weights")
        for role in SENTENCE_ROLES:
            if role in raw_weights:
                weights[role] = _number(raw_weights[role], source, wline, f"scoring: sentence_weights.{role}",
                                        minimum=0)
    cues = {}
    for key in ("claim_cues", "background_cues"):
        cues[key] = (_phrase_list(scoring[key], source, keylines.get(key), f"scoring: {key}")
                     if scoring.get(key) is not None else ())
    return Taxonomy(
        name=str(raw.get("name", Path(source).stem if source else "taxonomy")),
        facets=facets,
        title_weight=_number(scoring.get("title_weight", 2.0), source, scoring["__line__"],
                             "scoring: title_weight", minimum=0),
        max_count=max_count,
        source=source,
        sentence_weights=tuple(weights.items()),
        **cues,
    )
