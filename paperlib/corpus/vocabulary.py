"""The editable vocabulary of names: methods, models, benchmarks, metrics and software, with their
aliases, the cue phrases that state how a paper relates to a name, and the context words that
guess the type of a name the vocabulary does not list.

The default lives in `data/methods.yaml`; a user passes their own file for another field. A file
may hold only `terms`: the sections it leaves out come from the shipped file. A malformed file
raises `VocabularyError` naming the term and the line.
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path


from paperlib.errors import PaperlibInputError
from paperlib.corpus.files import load_yaml_with_lines
from paperlib.paths import shipped_dir

TYPES = ("method", "model", "benchmark", "metric", "tool")
UNKNOWN = "unknown"
CONCEPT = "concept"  # a short form of an idea ("learning rate schedules (LRS)"): no mention
RELATIONS = ("builds-on", "replaces", "compares")
CASES = ("any", "exact")
SECTIONS = ("name", "types", "generic", "terms", "relations", "context", "heads", "endings")

# A model name may carry a size or a variant after it: LLaMA-7B, Qwen2-7B-Instruct, Gemini 1.5 Pro, ViT-B/16.
_MODEL_TAIL = (r"(?:[\s-](?:\d+(?:\.\d+)*[BMKT]?|[BLSH](?:/\d+)?|[Ii]nstruct|[Cc]hat|[Bb]ase|Pro|Flash|Ultra|Opus|"
               r"Sonnet|Haiku|[Tt]urbo|[Pp]review|[Mm]ini|Nano|Max|Plus|XXL|XL|Large|Small|Tiny|Medium)(?![A-Za-z]))*")
# Where a name may start and end: not inside a word, nor after "Word-" (CLaMP-DPO is one name);
# after it a lower-case tail ("-based", "-free") is fine, a capital, digit or ".5" is not.
_LEFT = r"(?<![\w])(?<![A-Za-z0-9]-)"
_RIGHT = r"(?![\w])(?!-[A-Z0-9])(?!\.\d)(?!\+)"


_VERSIONED = re.compile(r"(?:[\s-](?:\d+(?:\.\d+)*[BMKT]?|[Ii]nstruct|[Cc]hat|[Bb]ase|Pro|Flash|Ultra|Opus|Sonnet|"
                        r"Haiku|[Tt]urbo|[Mm]ini|Large|Small|Tiny|XXL|XL))+$")


class VocabularyError(PaperlibInputError):
    """A vocabulary file that is malformed (names the term and the line)."""


def default_vocabulary_path() -> Path:
    """The shipped, editable vocabulary (YAML)."""
    return shipped_dir() / "methods.yaml"


def name_key(text: str) -> str:
    """The key under which two spellings of a name are the same: lower case, accents dropped,
    "-ise" spelt "-ize", everything but letters, digits and @ ; + left out ("Low-Rank Adaptation",
    "low rank adaptation" and "lowrankadaptation" share one key)."""
    text = unicodedata.normalize("NFKD", str(text)).casefold()
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = re.sub(r"is(ation|ations|e|ed|es|ing)\b", r"iz\1", text)
    return re.sub(r"[^0-9a-z@;+]", "", text)


def key_variants(key: str) -> list[str]:
    """A key and its singular forms (a plural "s" or "es" dropped), to look a match up by."""
    out = [key]
    if len(key) > 3 and key.endswith("es"):
        out.append(key[:-2])
    if len(key) > 2 and key.endswith("s"):
        out.append(key[:-1])
    return out


@dataclass(frozen=True)
class Term:
    """One name of the vocabulary: its canonical spelling, type and other spellings."""

    name: str
    type: str
    aliases: tuple[str, ...] = ()
    case: str | None = None  # "exact", "any", or None: exact for an alias in capitals only
    line: int | None = None
    # Every capitalised word of a spelling must keep its capital in the text (names a corpus
    # introduces: "Algorithmic Reasoning (AR)" is a name, "algorithmic reasoning" is not).
    keep_capitals: bool = False

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def exact(self, alias: str) -> bool:
        """Whether `alias` matches only with its own capitals."""
        if self.case is not None:
            return self.case == "exact"
        letters = re.sub(r"[^A-Za-z]", "", alias)
        return bool(letters) and letters.isupper() and not any(c.isdigit() for c in alias)


@dataclass(frozen=True)
class Cues:
    """Cue phrases around a name: `before` it (a few words may come between), `after` it
    ("PPO-based"), `own` (before it, in a sentence about the paper itself), and `unless_after`:
    words that cancel a `before` cue when they come just before it."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    own: tuple[str, ...] = ()
    unless_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """Terms and cues; see `data/methods.yaml` for what each section means."""

    name: str
    terms: tuple[Term, ...]
    types: tuple[tuple[str, str], ...] = ()
    generic: frozenset = frozenset()
    relations: tuple[tuple[str, Cues], ...] = ()
    context: tuple[tuple[str, Cues], ...] = ()
    heads: tuple[tuple[str, tuple[str, ...]], ...] = ()
    endings: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source: str | None = None

    @cached_property
    def _by_key(self) -> dict[str, Term]:
        return {name_key(f): t for t in self.terms for f in t.forms}

    def term(self, name: str) -> Term | None:
        """The term one of whose spellings `name` is (any case, hyphens, plural), or None."""
        for k in key_variants(name_key(name)):
            if k in self._by_key:
                return self._by_key[k]
        base = _VERSIONED.sub("", str(name)).strip()  # "TÜLU 3", "Vicuna-13B": the model's family
        if base and base != name:
            term = self.term(base)
            if term is not None and term.type == "model":
                return term
        return None

    def with_terms(self, terms) -> "Vocabulary":
        """A copy with more terms (same cues); a term whose name is already known is skipped."""
        extra = [t for t in terms if self.term(t.name) is None]
        return replace(self, terms=self.terms + tuple(extra))

    @cached_property
    def _generic_keys(self) -> frozenset:
        return frozenset(name_key(g) for g in self.generic)

    def is_generic(self, name: str, *, compound: bool = True) -> bool:
        """Whether `name` is a field or kind of thing (any case; with `compound`, "human-AI" and
        "non-IID" too: a compound whose only name-like parts are generic)."""
        if name_key(name) in self._generic_keys:
            return True
        if not compound:
            return False
        parts = [p for p in re.split(r"[-\s]+", name) if p]
        named = [p for p in parts if any(c.isupper() for c in p[1:]) or (p[:1].isupper() and any(c.isdigit() for c in p))]
        return len(parts) > 1 and bool(named) and all(name_key(p) in self._generic_keys for p in named)

    @cached_property
    def _kind_keys(self) -> tuple:
        return tuple(k for g in self.generic if len(re.split(r"[-\s]+", g.strip())) > 1 for k in [name_key(g)])

    def is_kind(self, long_form: str) -> bool:
        """Whether a long form names a kind of thing: it ends in a generic phrase of two or more
        words ("masked language models", "Speech Foundation Models" end in "language models",
        "foundation models")."""
        key = name_key(long_form)
        return bool(key) and any(key.endswith(k) for k in self._kind_keys)

    @cached_property
    def matcher(self) -> "TermMatcher":
        return TermMatcher(self.terms)


def alias_pattern(alias: str, *, exact: bool, model: bool = False) -> str:
    """The regular expression of one alias: parts joined by a hyphen, a space or nothing, "-ize"
    also spelt "-ise", a plural ending allowed, a model's size or variant allowed after it."""
    parts = [p for p in re.split(r"[\s-]+", alias.strip()) if p]
    pats = []
    for p in parts:
        esc = re.escape(p)
        if not exact:
            esc = esc.replace("iz", "i[sz]").replace("IZ", "I[SZ]")
        pats.append(esc)
    body = r"(?:\s*-\s*|\s+)?".join(pats)
    if alias[-1:].isalpha():
        body += r"(?:e?s)?"
    if model:
        body += _MODEL_TAIL
    return body if exact else f"(?i:{body})"


def spelling_regex(alias: str, *, exact: bool = False) -> re.Pattern:
    """A compiled `alias_pattern` that matches only whole names."""
    return re.compile(_LEFT + alias_pattern(alias, exact=exact) + _RIGHT)


class TermMatcher:
    """Finds the vocabulary's terms in a text: leftmost first, then the longest spelling, no overlaps.

    A one-word spelling with capitals (LoRA, STaR, Gemini) matches in another case only when the
    text keeps a capital where the spelling has one after its first letter ("LORA", not "lora"
    nor "stars"), and starts with a capital when the spelling does ("Gemini", not "gemini")."""

    _WORD_START = re.compile(r"(?<![\w])(?<![A-Za-z0-9]-)\w")

    def __init__(self, terms):
        self.terms = tuple(terms)
        buckets: dict[str, list] = defaultdict(list)
        for t in self.terms:
            for form in t.forms:
                exact = t.exact(form)
                pattern = alias_pattern(form, exact=exact, model=t.type == "model")
                first = form[0]
                keys = {first} if exact else {first.lower(), first.upper()}
                for k in keys:
                    buckets[k].append((len(form), pattern, t, form))
        self._buckets = {}
        for k, alts in buckets.items():
            alts.sort(key=lambda a: -a[0])
            joined = "|".join(f"(?P<t{i}>{p})" for i, (_, p, _t, _f) in enumerate(alts))
            regex = re.compile(_LEFT + "(?:" + joined + ")" + _RIGHT)
            self._buckets[k] = (regex, [(t, f) for _, _, t, f in alts])

    def find(self, text: str) -> list[tuple[int, int, Term]]:
        """(start, end, term) of every term found in `text`, in order."""
        out = []
        if not text or not self._buckets:
            return out
        pos = 0
        for w in self._WORD_START.finditer(text):
            i = w.start()
            if i < pos:
                continue
            bucket = self._buckets.get(text[i])
            if bucket is None:
                continue
            regex, alts = bucket
            m = regex.match(text, i)
            while m is not None:
                term, form = alts[int(m.lastgroup[1:])]
                if _case_ok(form, m.group(0), term.keep_capitals):
                    out.append((m.start(), m.end(), term))
                    pos = m.end()
                    break
                m = None  # a spelling refused by its capitals: no other term starts here
        return out


def _case_ok(form: str, found: str, keep_capitals: bool = False) -> bool:
    if keep_capitals:
        words, got = re.split(r"[\s-]+", form), re.split(r"[\s-]+", found)
        if len(words) > 1 and len(words) == len(got):
            return all(g[:1].isupper() or not w[:1].isupper() for w, g in zip(words, got))
    if not re.fullmatch(r"[^\W_]+", form) or not any(c.isupper() for c in form):
        return True
    if form[0].isupper() and not found[0].isupper():
        return False
    return not any(c.isupper() for c in form[1:]) or any(c.isupper() for c in found[1:])


# ---------------------------------------------------------------- reading the file

def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """Read a vocabulary YAML file (the shipped default when `path` is None) and check every field.
    Sections the file leaves out (`generic`, `relations`, `context`, `heads`, `endings`, `types`)
    are taken from the shipped file."""
    if isinstance(path, Vocabulary):
        return path
    default = default_vocabulary_path()
    path = Path(path) if path is not None else default
    try:
        stamp = (str(path.resolve()), path.stat().st_mtime_ns, path.stat().st_size)
    except OSError:
        stamp = None
    if stamp is not None and stamp in _LOADED:
        return _LOADED[stamp]
    vocab = _read(path)
    if path.resolve() != default.resolve():
        missing = [s for s in ("types", "generic", "relations", "context", "heads", "endings") if s not in vocab[1]]
        if missing:
            base = _read(default)[0]
            vocab = (replace(vocab[0], **{s: getattr(base, s) for s in missing}), vocab[1])
    if stamp is not None:  # a file read once is reused (with its compiled matcher) until it changes
        _LOADED.clear() if len(_LOADED) > 8 else None
        _LOADED[stamp] = vocab[0]
    return vocab[0]


_LOADED: dict = {}


def _read(path: Path) -> tuple[Vocabulary, set]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VocabularyError(path, None, f"cannot read vocabulary file: {exc.strerror or exc}") from exc
    return _parse(text, str(path))


def parse_vocabulary(text: str, *, source: str | None = None) -> Vocabulary:
    """Build a `Vocabulary` from YAML text alone (no sections filled in from the shipped file)."""
    return _parse(text, source)[0]


def _fail(source, line, message):
    raise VocabularyError(source, line, message)


def _line(d, key=None):
    if not isinstance(d, dict):
        return None
    return d.get("__keylines__", {}).get(key, d.get("__line__")) if key else d.get("__line__")


def _words(value, source, line, what) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and str(v).strip() for v in value):
        _fail(source, line, f"{what} must be a list of non-empty strings, got {value!r}")
    return tuple(" ".join(str(v).split()) for v in value)


def _parse(text: str, source) -> tuple[Vocabulary, set]:
    raw = load_yaml_with_lines(text, source, VocabularyError)
    if not isinstance(raw, dict):
        _fail(source, None, "a vocabulary must be a mapping with at least 'terms'")
    for key in raw:
        if key not in ("__line__", "__keylines__") and key not in SECTIONS:
            _fail(source, _line(raw, key), f"unknown section {key!r} (allowed: {', '.join(SECTIONS)})")
    present = {k for k in raw if k in SECTIONS}
    if "terms" not in raw:
        _fail(source, None, "a vocabulary needs a list 'terms'")

    types = raw.get("types", {t: "" for t in TYPES})
    if not isinstance(types, dict):
        _fail(source, _line(raw, "types"), "'types' must map each type to its description")
    types = tuple((k, str(v)) for k, v in types.items() if k not in ("__line__", "__keylines__"))
    known_types = {k for k, _ in types} | set(TYPES)

    terms_raw = raw["terms"]
    if not isinstance(terms_raw, list):
        _fail(source, _line(raw, "terms"), "'terms' must be a list of {name, type, aliases}")
    terms, seen = [], {}
    for item in terms_raw:
        line = _line(item)
        if not isinstance(item, dict):
            _fail(source, _line(raw, "terms"), f"each term must be a mapping with 'name' and 'type', got {item!r}")
        for key in item:
            if key not in ("__line__", "__keylines__", "name", "type", "aliases", "case"):
                _fail(source, line, f"term {item.get('name')!r}: unknown key {key!r} (allowed: aliases, case, name, type)")
        name = item.get("name")
        if not isinstance(name, (str, int, float)) or not str(name).strip():
            _fail(source, line, f"a term needs a non-empty 'name', got {name!r}")
        name = " ".join(str(name).split())
        kind = item.get("type")
        if kind not in known_types:
            _fail(source, line, f"term {name!r}: type must be one of {', '.join(sorted(known_types))}, got {kind!r}")
        aliases = _words(item.get("aliases", []), source, line, f"term {name!r}: 'aliases'") if "aliases" in item else ()
        case = item.get("case")
        if case is not None and case not in CASES:
            _fail(source, line, f"term {name!r}: case must be 'any' or 'exact', got {case!r}")
        for form in (name, *aliases):
            key = name_key(form)
            if not key:
                _fail(source, line, f"term {name!r}: spelling {form!r} has no letters or digits")
            if key in seen and seen[key][0] != name:
                _fail(source, line, f"term {name!r}: spelling {form!r} is already a spelling of "
                                    f"{seen[key][0]!r} (line {seen[key][1]})")
            seen[key] = (name, line)
        terms.append(Term(name=name, type=kind, aliases=tuple(a for a in aliases if a != name), case=case, line=line))

    generic = frozenset(_words(raw.get("generic", []), source, _line(raw, "generic"), "'generic'"))
    relations = _cue_section(raw, "relations", RELATIONS, source)
    context = _cue_section(raw, "context", tuple(sorted(known_types)), source)
    heads = _word_section(raw, "heads", known_types | {CONCEPT}, source, lower=True)
    endings = _word_section(raw, "endings", known_types, source, lower=False)
    name = str(raw.get("name", Path(str(source)).stem if source else "vocabulary"))
    vocab = Vocabulary(name=name, terms=tuple(terms), types=types, generic=generic, relations=relations,
                       context=context, heads=heads, endings=endings, source=source)
    return vocab, present


def _cue_section(raw, section, allowed, source) -> tuple[tuple[str, Cues], ...]:
    value = raw.get(section, {})
    if not isinstance(value, dict):
        _fail(source, _line(raw, section), f"'{section}' must map each of {', '.join(allowed)} to its cues")
    out = []
    for key, cues in value.items():
        if key in ("__line__", "__keylines__"):
            continue
        line = _line(value, key)
        if key not in allowed:
            _fail(source, line, f"{section}: unknown key {key!r} (allowed: {', '.join(allowed)})")
        if not isinstance(cues, dict):
            _fail(source, line, f"{section} {key!r}: expected a mapping with before/after/own/unless_after")
        fields = {}
        for field in cues:
            if field in ("__line__", "__keylines__"):
                continue
            if field not in ("before", "after", "own", "unless_after"):
                _fail(source, _line(cues, field), f"{section} {key!r}: unknown key {field!r} "
                                                  "(allowed: after, before, own, unless_after)")
            fields[field] = tuple(w.lower() for w in _words(cues[field], source, _line(cues, field), f"{section} {key!r} {field}"))
        out.append((key, Cues(**fields)))
    return tuple(out)


def _word_section(raw, section, allowed, source, *, lower: bool):
    value = raw.get(section, {})
    if not isinstance(value, dict):
        _fail(source, _line(raw, section), f"'{section}' must map types to lists of words")
    out = []
    for key, words in value.items():
        if key in ("__line__", "__keylines__"):
            continue
        if key not in allowed:
            _fail(source, _line(value, key), f"{section}: unknown type {key!r}")
        ws = _words(words, source, _line(value, key), f"{section} {key!r}")
        out.append((key, tuple(w.lower() for w in ws) if lower else ws))
    return tuple(out)
