"""Names in abstracts, typed and related: every method, model, benchmark or data set, metric and
piece of software a paper names, the relation its sentence states (builds on, replaces, compares
with, or only mentions), and the graphs built from them: the lineage of papers (from the paper
that introduces a method to the papers that name it), the method network, method families and a
theme co-occurrence matrix.

Names come from two places. The editable vocabulary (`data/methods.yaml`, see
`paperlib.corpus.vocabulary`) gives canonical names, types and aliases, long forms included
("Proximal Policy Optimization" is PPO). Names it does not list are found by their shape (a
capital after the first letter: EWC, LoRA, iCaRL; a capital and a digit: K400, R1; hyphenated
forms: DeepSeek-R1), by how a paper introduces them ("we propose X", "called X", "Long Form (X)")
and by the name a title introduces; their type is guessed from context ("on X", "X benchmark",
"X-7B", "X, a language model", the last word of their long form), and a name nothing types stays
"unknown". Names of fields and kinds of things (LLM, RL) are the vocabulary's `generic` list; a
short form whose long form ends in one of its phrases ("masked language models (MLMs)") is a kind
of model, one whose long form ends in an idea or a task ("speech-to-text translation (ST)") no
name; two words run together ("levelASR") and a lone pair of capitals nothing types (PC) are left
out too, each with its reason (`extract_mentions(..., rejected=[])`), never silently.

Relations come from cue phrases of the vocabulary (`relations`): before a name ("built upon X",
"instead of relying on X", "reaches parity with X"), after it ("X-based", "X backbone") or, for
the paper's own sentences, verbs of use ("we use X", "experiments with X", "learns from X"). A cue
reaches every item of a list ("outperforms PPO, strong DPO baselines and KTO": the words of each
item count apart) and stops at the end of its clause; "with" relates only methods and models, and
"in accordance with" or "consistent with" cancel it (`unless_after`).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx
import pandas as pd

from paperlib.corpus.files import read_json_labels
from paperlib.corpus.formats import latex_accents
from paperlib.corpus.reader import extract_acronym, normalise_title
from paperlib.corpus.tagging import as_list
from paperlib.corpus.taxonomy import load_taxonomy
from paperlib.corpus.vocabulary import (CONCEPT, RELATIONS, TYPES, UNKNOWN, Term, TermMatcher, Vocabulary,
                                        key_variants, load_vocabulary, name_key, spelling_regex)
from paperlib.paths import shipped_dir

INTRODUCES = "introduces"
MENTIONS = "mentions"
# The relations a row can carry, strongest first.
RELATION_ORDER = (INTRODUCES, *RELATIONS, MENTIONS)
MENTION_COLUMNS = ["paper_id", "name", "type", "relation", "cue", "sentence", "surface", "source"]

_URL = re.compile(r"https?://\S+|www\.\S+")
# A name-like token; not one glued to a word by a colon ("google:DBLP:journals", a citation key).
_CANDIDATE = re.compile(r"(?<![\w/.-])(?<!\w:)[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*(?![\w/-])(?!:\w)")
# Two words glued together ("production levelASR"): a lower-case word run into capitals.
_GLUED = re.compile(r"^[a-z]{3,}[A-Z]{2,}[A-Za-z]*$")
# A weak shape: one or two capitals and nothing else (PC, DA); such a name needs its type told by
# its context, a definition or the paper introducing it.
_WEAK = re.compile(r"^[A-Z]{1,2}$")
_ROMAN = re.compile(r"^[IVX]+$")
_VERSION = re.compile(r"^[Vv]\d+$")
_LOWER_TAIL = re.compile(r"(?:-[a-z]+)+$")
_MAYBE_NAME = re.compile(r".[A-Z0-9]")
_PART_SPLIT = re.compile(r"[-.]")
_SIZE = re.compile(r"[-\s](\d+(?:\.\d+)?[BMKT])$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_ABBREVIATION = re.compile(r"(?:\be\.g\.|\bi\.e\.|\bet al\.|\bvs\.|\bcf\.|\bFig\.|\bEq\.|\bresp\.|\bapprox\.|\bNo\.)$")
_TOKEN = re.compile(r"e\.g\.|i\.e\.|(?<![\w.])vs\.|[A-Za-z0-9][\w@'’]*(?:[-.][\w@]+)*|[,;:()\[\]/\"“”‘’%]|[.!?]")
_OWN = re.compile(r"\b(?:we|our|ours|us|this (?:paper|work|study|article|survey|manuscript|research|report))\b", re.I)
# A list of names counts as one place: these tokens between a cue and a name cost nothing.
_LIST_WORDS = frozenset({",", "and", "or", "/", "(", ")", "e.g.", "i.e.", "such", "as", "like", "including",
                         "the", "a", "an", "both", "either", "even", "also", "'", "\"", "“", "”", "‘", "’"})
# Tokens that end the clause a cue governs.
_CLAUSE_BREAKS = frozenset({";", ":", ".", "!", "?", "which", "that", "while", "whereas", "but", "however",
                            "where", "when", "although", "though", "because", "since", "if", "whether",
                            "we", "they", "it", "who", "yet", "thus", "then"})
# A relation cue also stops at a preposition or a number: "outperforms X on MMLU" says nothing
# about MMLU, nor does "more than 100% in benchmarks like BBH".
_RELATION_BREAKS = frozenset({"in", "on", "at", "by", "across", "for", "from", "%", "of", "into", "under"})
_RELATION_GAP = 6
# In a list a cue reaches every item ("outperforms PPO, strong DPO baselines and KTO"): the words
# of each item count apart, up to the gap, and all of them together up to this many.
_LIST_SPAN = 12
_LIST_SEPARATORS = frozenset({",", "and", "or", "/"})
# Short cues reach only a name close after them ("without CoT", "than GPT-4", "over LoRA").
_TIGHT = frozenset({"without", "than", "over", "against", "vs", "versus", "via", "like", "with"})
_TIGHT_GAP = 2
# A bare "with" states that the paper works with X only after a verb or noun of doing so, a few
# words before it ("experiments with Llama-3", "finetuning GPT-4 with a GPT-2-level supervisor",
# "instantiate our framework with GRPO"); "works well with CoT" or "a rise with the MAS-Implemented
# LLMs" say nothing of the kind.
_WITH_GOVERNORS = frozenset({
    "experiment", "experiments", "experimenting", "experimented", "train", "trains", "training", "trained",
    "finetune", "finetunes", "finetuning", "finetuned", "fine-tune", "fine-tunes", "fine-tuning", "fine-tuned",
    "pretrain", "pretraining", "pretrained", "pre-train", "pre-training", "pre-trained", "instantiate",
    "instantiates", "instantiated", "instantiating", "demonstrate", "demonstrates", "demonstrated",
    "evaluate", "evaluates", "evaluated", "evaluating", "initialize", "initializes", "initialized",
    "implement", "implements", "implemented", "implementing", "equip", "equips", "equipped", "combine",
    "combines", "combined", "combining", "integrate", "integrates", "integrated", "integrating", "use",
    "uses", "using", "used", "apply", "applies", "applying", "applied", "run", "runs", "running"})
_GOVERNOR_GAP = 8
_MAKING_CUES = frozenset({"introduce", "introduces", "introducing"})
# Cues that relate only some types: "with X" states a relation to a method or model the paper
# works with ("demonstrated with ResNets"), not to a benchmark ("experiments with MMLU"); nor does
# "enhances X" or "improves X" build on a benchmark or metric: it improves a score on it.
_MADE_BY = frozenset({"method", "model", "tool", UNKNOWN})
_CUE_TYPES = {cue: _MADE_BY for cue in ("with", "enhance", "enhances", "enhancing", "improve", "improves",
                                         "improving")}
# Types a paper builds on, replaces or compares with; a benchmark or metric can only be built on.
_RELATED_TYPES = {"builds-on": None, "replaces": {"method", "model", "tool", UNKNOWN},
                  "compares": {"method", "model", "tool", UNKNOWN}}
_CONTEXT_GAP = 3
# Words of a noun phrase's end: an apposition ("X, a collaborative language model that ...") stops here.
_PHRASE_END = frozenset({"that", "which", "who", "for", "to", "with", "of", "in", "on", "by", "from", "via",
                         "designed", "trained", "based", "built", "where", "while", "and", "or", "using"})

_NAME_WORD = r"[A-Z][\w-]*"
_FUNCTION = r"(?:to|of|for|while|and|with|in|the|from|via|on|without|as)"
_MULTI_NAME = rf"{_NAME_WORD}(?:\s+(?:{_NAME_WORD}|{_FUNCTION}))*"
_QUOTED = r"[\"'‘“`]{1,2}([^\"'’”`]{2,60})[\"'’”`]{1,2}"
_SHAPED_WORD = r"[A-Za-z][\w-]*[A-Z0-9][\w-]*"
_OWN_HEADS = (r"(?:approach|method|framework|model|algorithm|system|benchmark|dataset|data set|agent|technique|"
              r"strategy|scheme|library|toolkit|toolbox|suite|environment|corpus|pipeline|paradigm|recipe|loss|"
              r"objective|architecture|network|procedure|mechanism|module|optimizer|metric)")
_MAKE = r"(?:propose|introduce|present|develop|release|design|build|construct|create|curate|collect|contribute|offer)"
_MAKER = r"(?:[Ww]e|[Tt]his (?:paper|work|study|article))"
_INTRO_PATTERNS = [
    re.compile(rf"(?<!been )(?<!be )(?<!is )(?<!are )(?<!was )(?<!were )(?<!so-)(?<!often )(?<!also )(?<!commonly )"
               rf"\b(?:called|named|dubbed|termed|coined|[Ww]e call|[Ww]e dub|[Ww]e name|[Ww]e term)"
               rf"(?:\s+(?:it|this|them|this \w+|our \w+|the \w+|our \w+ \w+|the \w+ \w+))?(?:\s+as)?"
               rf"\s+(?:{_QUOTED}|({_MULTI_NAME}))"),
    re.compile(rf"\b(?:{_MAKER}|and) (?:propose|introduce|present|develop|release|design|build)s?\s+(?:the\s+)?"
               r"([A-Za-z][\w-]*[A-Z0-9][\w-]*|[A-Z][a-z][\w-]*)(?=\s*[,(:]|\s+(?:a|an|which|that)\b)"),
    re.compile(r"\b[Oo]ur (?:proposed |new |novel )?(?:approach|method|framework|model|algorithm|system|benchmark|"
               rf"dataset|agent),\s+({_MULTI_NAME})"),
    # "our proposed method 'robust mean teacher'", "the proposed framework FooNet", "our method FooNet"
    re.compile(rf"\b(?:[Oo]ur|[Tt]he proposed) (?:proposed |new |novel )?{_OWN_HEADS}\s+"
               rf"(?:{_QUOTED}|({_SHAPED_WORD}))(?=\s*[,(.;:]|\s+(?:which|that|to|for|is|achieves|on|in|with)\b)"),
    # "we propose a new continual DomainNet-126 benchmark", "we contribute a benchmark dataset P9D which ..."
    re.compile(rf"\b{_MAKER} (?:\w+ )?{_MAKE}s?\s+(?:a|an|the)\s+(?:[\w-]+\s+){{0,4}}?({_SHAPED_WORD})\s+{_OWN_HEADS}\b"),
    re.compile(rf"\b{_MAKER} (?:\w+ )?{_MAKE}s?\s+(?:a|an|the)\s+(?:[\w-]+\s+){{0,4}}?{_OWN_HEADS},?\s+(?:called\s+)?"
               rf"({_SHAPED_WORD})(?=\s*[,(.;:]|\s+(?:which|that|to|for|with|of)\b)"),
    re.compile(r"\b(?:algorithm|method|framework|model|benchmark|dataset|system|approach|agent),\s+"
               r"([A-Za-z][\w-]*[A-Z0-9][\w-]*|[A-Z][a-z][\w-]*)(?=\s*[,(]|\s+(?:which|that|to)\b)"),
]
_SENTENCE_WORDS = frozenset({"A", "An", "The", "This", "These", "That", "In", "Our", "We", "It", "To", "For",
                             "On", "With", "By", "As", "From", "Finally", "First", "Second", "Moreover"})
_NAMING = re.compile(r"(?<!been )(?<!be )(?<!is )(?<!are )(?<!was )(?<!were )(?<!so-)(?<!often )(?<!also )"
                     r"\b(?:called|named|dubbed|termed|coined)\s+(?:as\s+)?[\"'‘“]?")
_DEFINITION = re.compile(r"\(\s*([A-Za-z][\w-]{0,12}[A-Z][\w-]{0,12})\s*\)")
_PROPOSE = re.compile(r"\bwe (?:\w+ )?(?:propose|introduce|present|develop|design|call|term|dub|name)\b|"
                      r"\b(?:called|termed|dubbed|named|coined)\b|"
                      r"\b(?:our|the proposed) (?:proposed |new |novel )?(?:approach|method|framework|model|algorithm|"
                      r"system)\b", re.I)
# "the name (Long Form)", "the name, Long Form,", "the name, i.e. Long Form": a long form after its short one
_AFTER_DEFINITION = re.compile(r"(?<![\w-])([A-Za-z][\w-]{0,12}[A-Z][\w-]{0,12})(?:\s*\(\s*|,\s+(?:i\.e\.,?\s+)?)"
                               r"([A-Za-z][^(),;:]{3,100})")
# "likelihood-ratio (Likra)": a capitalised word in parentheses is a short form only when it spells a long form
# "We propose an Interactive Agent Foundation Model that ...": a capitalised phrase a paper makes
# (counted only when its title names it too)
_MADE_PHRASE = re.compile(r"\b[Ww]e (?:\w+ )?(?:propose|introduce|present|develop|release|design|build)\s+(?:a|an|the)\s+"
                          r"(?:new\s+|novel\s+)?((?:[A-Z][\w-]*\s+){1,5}[A-Z][\w-]*)"
                          r"(?=\s*[,(:;.]|\s+(?:which|that|to|for|with|as|in)\b)")
_MADE_HERE = re.compile(r"\b(?:is|are) (?:\w+ )?(?:proposed|introduced|presented|developed)\b|\bthe proposed\b|"
                        r"\b(?:propose|introduce|present)s?\b|\bthe resulting\b|"
                        r"\bthis (?:toolbox|toolkit|library|framework|model|method|approach|algorithm|system|benchmark|"
                        r"dataset)\b", re.I)
_USED_BETWEEN = re.compile(r"\b(?:leverag\w*|utili[sz]\w*|based on|employ\w*|adopt\w*|inspired by|following|"
                           r"such as|like|builds? on|built on|borrow\w*)\b", re.I)
_WORD_DEFINITION = re.compile(r"\(\s*([A-Z][a-z]{3,11})\s*\)")


def _shape_ok(part: str) -> bool:
    if len(part) < 2 or not part[0].isalpha():
        return False
    upper_after_first = any(c.isupper() for c in part[1:])
    return upper_after_first or (part[0].isupper() and any(c.isdigit() for c in part))


def _singular(token: str) -> str:
    """An acronym's plural as its singular ("LLMs" -> "LLM", "EBMs" -> "EBM"; "LoRAs" stays), trailing dots dropped."""
    if len(token) > 2 and token.endswith("s") and token[:-1].isupper():
        return token[:-1]
    return token.rstrip(".")


def _shaped(token: str) -> str:
    """The name a shape-matched token stands for ("LLM-based" -> "LLM"), or '' when it is no name."""
    token = _singular(_LOWER_TAIL.sub("", token))
    parts = _PART_SPLIT.split(token)
    if not any(_shape_ok(p) for p in parts):
        return ""
    if _ROMAN.match(token) or _VERSION.match(token):
        return ""
    return token


# ---------------------------------------------------------------- sentences and long forms

def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text` (no split after "e.g.", "et al." and the like)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if _ABBREVIATION.search(text[start:m.start()]):
            continue
        spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def long_form(short: str, before: str) -> str:
    """The long form that `short` abbreviates at the end of `before` ("... low-rank adaptation"
    for "LoRA"), by Schwartz and Hearst's rule: every letter of the short form in order, the first
    one starting a word; '' when there is none."""
    letters = [c.lower() for c in short if c.isalnum()]
    if not letters:
        return ""
    words = before.rstrip().split()
    window = " ".join(words[-min(len(letters) + 5, len(letters) * 2):])
    s, l = len(short) - 1, len(window) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while l >= 0 and (window[l].lower() != c or (s == 0 and l > 0 and window[l - 1].isalnum())):
            l -= 1
        if l < 0:
            return ""
        l -= 1
        s -= 1
    start = window.rfind(" ", 0, l + 1) + 1
    found = window[start:].strip(" ,;:\"'“”")
    if len(found.split()) < 2 and "-" not in found or re.search(r"[()\[\]]", found):
        return ""
    return found if name_key(found) != name_key(short) else ""


def forward_long_form(short: str, after: str) -> str:
    """The long form that spells `short` at the start of `after` ("BOotStrapping your own Skills"
    for "BOSS", "Progressive Mixture of Experts" for "PMoE"): the fewest first words of `after`
    whose letters give `short` by `long_form`'s rule, the first word starting with its first letter;
    '' when there is none."""
    words = after.split()
    letters = [c.lower() for c in short if c.isalnum()]
    if not words or not letters or words[0][:1].lower() != letters[0]:
        return ""
    for k in range(1, min(len(words), len(letters) + 3) + 1):
        candidate = " ".join(words[:k]).strip(" ,;:\"'“”")
        found = long_form(short, candidate)
        if found and name_key(found) == name_key(candidate):
            return found
    return ""


def definitions(text: str) -> dict[str, str]:
    """Short form -> long form for each "Long Form (SHORT)" in `text`, each "SHORT (Long Form)",
    "SHORT, Long Form" or "SHORT, i.e. Long Form", and each "long form (Word)" whose capitalised
    word spells the words before it ("likelihood-ratio (Likra)")."""
    out: dict[str, str] = {}
    for m in _DEFINITION.finditer(text):
        short = _singular(m.group(1))
        found = long_form(short, text[max(0, m.start() - 200):m.start()])
        if found and short not in out:
            out[short] = found
    for m in _WORD_DEFINITION.finditer(text):
        short = m.group(1)
        found = long_form(short, text[max(0, m.start() - 200):m.start()])
        if found and short not in out and found.split()[0][:1].lower() == short[0].lower():
            out[short] = found
    for m in _AFTER_DEFINITION.finditer(text):
        short = _singular(m.group(1))
        found = forward_long_form(short, m.group(2))
        if found and short not in out and len(found.split()) >= 2:
            out[short] = found
    return out


# ---------------------------------------------------------------- what a paper introduces

def introduced_method(title: str, abstract: str = "") -> str:
    """The name a title introduces ("SLCA: ..." -> "SLCA"), using the corpus parser's rule."""
    return extract_acronym(title, abstract) or ""


def _clean_name(name: str) -> str:
    name = name.strip(" \"'‘’“”`.,;:")
    words = name.split()
    while words and not words[-1][:1].isupper() and not _shape_ok(words[-1]):
        words.pop()
    return " ".join(words)


def intro_names(text: str) -> list[str]:
    """Names a text introduces: "called X", "we dub our method X", "we propose X, a ...",
    "our approach, X", "an algorithm, X," (X a capitalised name or a quoted phrase)."""
    found = []
    spans = sentence_spans(text)
    for pattern in _INTRO_PATTERNS:
        for m in pattern.finditer(text):
            sentence = next((text[a:b] for a, b in spans if a <= m.start() < b), "")
            if not (_OWN.search(sentence) or _MADE_HERE.search(sentence)):
                continue  # "the first meta-learner, called MAML, ...": another paper's name
            raw = next((g for g in m.groups() if g), "")
            name = _clean_name(raw)
            if not name or name in _SENTENCE_WORDS or name.split()[0] in _SENTENCE_WORDS:
                continue
            if len(name.split()) > 6 or not (name[0].isupper() or _shape_ok(name.split()[0])):
                continue
            if name not in found:
                found.append(name)
    return found


def _titled(title: str, long: str, short: str) -> bool:
    """Whether a title names the method `long` stands for: as its head ("Iterative Data Smoothing:
    ..."), at its start ("Generative Pre-Trained Diffusion Paradigm for ..."), after with / via /
    through / using / by ("... with Metagradient Descent"), or with the short form in parentheses
    ("... Adaptive Weights (CLAW)")."""
    key = name_key(long)
    if name_key(_title_head(title)) == key or re.search(r"\(\s*" + re.escape(short) + r"\s*\)", title):
        return True
    words = re.findall(r"\w+", long.lower())
    if len(long.split()) >= 3 and re.findall(r"\w+", title.lower())[:len(words)] == words:
        return True  # "Generative Pre-Trained Diffusion Paradigm for ..." introduces GPD
    for m in re.finditer(r"\b(?:with|via|through|using|by)\s+(.+)$", title, re.I):
        if name_key(m.group(1)).startswith(key):
            return True
    return False


def _title_head(title: str) -> str:
    head, sep, _ = str(title).partition(":")
    return head.strip() if sep and len(head.split()) <= 5 else ""


@dataclass
class _Paper:
    """What pass one learns about a paper: its text, definitions and the names it introduces."""

    paper_id: str
    title: str
    abstract: str
    kind: str = ""
    text: str = ""
    defs: dict = field(default_factory=dict)
    introduced: list = field(default_factory=list)  # canonical names
    local: dict = field(default_factory=dict)  # spelling key -> canonical name in this paper
    kinds: dict = field(default_factory=dict)  # spelling key -> long form: short forms of a kind of model here


def _define(defs: dict, name: str) -> str:
    """The long form `defs` gives `name` (any spelling of it), or ''."""
    keys = set(key_variants(name_key(name)))
    return next((v for k, v in defs.items() if keys & set(key_variants(name_key(k)))), "")


def _first_pass(papers: pd.DataFrame, vocab: Vocabulary) -> tuple[list[_Paper], list[Term]]:
    """Per paper: definitions and introduced names; plus the corpus's own names as terms.

    A paper introduces: the name its title introduces (`extract_acronym`; a vocabulary term only
    when it is the whole head of the title); a vocabulary term that is the title's head; a short
    form it defines in a sentence that proposes ("we propose a Foo Bar Net (FBN)", "termed ...")
    or whose long form its title names; a name it introduces in words ("called X", "we propose X,").
    A vocabulary term found by the last two rules counts only when the title names it too."""
    acronyms = _acronyms(papers)
    kinds = papers["kind"].tolist() if "kind" in papers.columns else [""] * len(papers)
    out, new_terms = [], {}
    for pid, title, abstract, acr, kind in zip(papers["paper_id"].tolist(), papers["title"].tolist(),
                                               papers["abstract"].tolist(), acronyms, kinds):
        title = title if isinstance(title, str) else ""
        abstract = _URL.sub(lambda m: " " * len(m.group(0)), abstract) if isinstance(abstract, str) else ""
        abstract = latex_accents(abstract)
        p = _Paper(pid, title, abstract, kind if isinstance(kind, str) else "", text=f"{title}\n{abstract}")
        p.defs = definitions(abstract)
        p.kinds = {k: long for short, long in p.defs.items() if vocab.is_kind(long)
                   for k in key_variants(name_key(short))}
        in_title = {t.name for _, _, t in vocab.matcher.find(title)}
        names: list[str] = []
        head = _title_head(title)
        head_term = vocab.term(head) if head else None
        if acr:
            term = vocab.term(acr)
            if term is None:
                names.append(acr)
            elif term is head_term:
                names.append(term.name)
        elif head_term is not None:
            names.append(head_term.name)
        for s0, e0 in sentence_spans(abstract):
            sentence = abstract[s0:e0]
            for m in _DEFINITION.finditer(sentence):
                short = _singular(m.group(1))
                long = p.defs.get(short, "")
                if vocab.is_generic(short) or name_key(short) in p.kinds:
                    continue
                made = list(_PROPOSE.finditer(sentence[:m.start()]))
                # "we propose X, which leverages the Upper Confidence Bound (UCB)": a name it uses
                proposed = bool(made) and not _USED_BETWEEN.search(sentence[made[-1].end():m.start()])
                titled = bool(long) and _titled(title, long, short)
                term = vocab.term(short)
                if term is None and (proposed or titled):
                    names.append(short)
                elif term is not None and proposed and term.name in in_title:
                    names.append(term.name)
        # "a method named cyclical learning rates", "named progressive self-knowledge distillation (PS-KD)"
        for m in _NAMING.finditer(abstract):
            at = m.end()
            sentence = next((abstract[a:b] for a, b in sentence_spans(abstract) if a <= m.start() < b), "")
            if not _OWN.search(sentence):
                continue  # "the first meta-learner called MAML" names another paper's method
            hit = next((t for s0, _e, t in vocab.matcher.find(abstract[at:at + 80]) if s0 == 0), None)
            short = next((k for k, v in p.defs.items() if abstract.startswith(v, at)), None)
            if short is not None and not vocab.is_generic(short):
                names.append(vocab.term(short).name if vocab.term(short) is not None else short)
            elif hit is not None:
                names.append(hit.name)
        # a capitalised phrase the paper makes that its title names ("We propose an Interactive Agent
        # Foundation Model that ..." in "An Interactive Agent Foundation Model")
        for m in _MADE_PHRASE.finditer(abstract):
            phrase = m.group(1).strip()
            if name_key(phrase) in name_key(title) and vocab.term(phrase) is None and not vocab.is_generic(phrase):
                names.append(phrase)
        # a name the abstract uses whose letters spell the title's first words ("PSI-KT" in
        # "Predictive, scalable and interpretable knowledge tracing on structured domains")
        title_words = re.sub(r"[^\w\s-]", " ", title.partition(":")[2] if _title_head(title) else title)
        for m in _CANDIDATE.finditer(abstract):
            name = _shaped(m.group(0))
            letters = [c for c in name if c.isalpha()]
            if len(letters) < 3 or sum(c.isupper() for c in letters) * 2 < len(letters) or name in names or vocab.term(name) is not None or vocab.is_generic(name):
                continue
            if name_key(name) in p.kinds or name in p.defs:
                continue
            spelt = forward_long_form(name, title_words)
            if spelt and len(spelt.split()) >= 2:
                names.append(name)
        for name in intro_names(abstract):
            short = next((k for k, v in p.defs.items() if name_key(v) == name_key(name)), None)
            name = short or name
            term = vocab.term(name)
            if vocab.is_generic(name, compound=False):  # "introduces Pairwise-RL, a ...": a name, whatever RL is
                continue
            if term is None:
                names.append(name)
            elif term.name in in_title:
                names.append(term.name)
        for name in names:
            if name in p.introduced:
                continue
            p.introduced.append(name)
            if vocab.term(name) is not None:
                continue
            long = _define(p.defs, name)
            aliases = (long,) if long and vocab.term(long) is None else ()
            k = name_key(name)
            if k not in new_terms or (aliases and not new_terms[k].aliases):
                new_terms[k] = Term(name=new_terms[k].name if k in new_terms else name, type=UNKNOWN, aliases=aliases,
                                    keep_capitals=True)
        # A short form this paper defines by a long form the vocabulary knows means that term here.
        for short, long in p.defs.items():
            term = vocab.term(long)
            if term is not None and vocab.term(short) is not term:
                p.local[name_key(short)] = term.name
        out.append(p)
    return out, list(new_terms.values())


def _acronyms(papers: pd.DataFrame) -> list[str]:
    if "acronym" in papers.columns:
        return ["" if not isinstance(a, str) else a.strip() for a in papers["acronym"].tolist()]
    abstracts = papers["abstract"].tolist() if "abstract" in papers.columns else [""] * len(papers)
    return [introduced_method(t, a if isinstance(a, str) else "") for t, a in zip(papers["title"], abstracts)]


# ---------------------------------------------------------------- cues

@dataclass
class _Occurrence:
    start: int
    end: int
    name: str
    surface: str
    source: str  # vocabulary | corpus | detected
    type: str = UNKNOWN
    sentence: int = 0
    relation: str = MENTIONS
    cue: str = ""
    evidence: list = field(default_factory=list)  # type guesses from context
    sentence_text: str = ""


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]


def _cue_phrases(cues, attr) -> dict[str, list[tuple[str, ...]]]:
    """Last word -> phrases (as word tuples, longest first) of every cue list."""
    table: dict[str, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for label, c in cues:
        for phrase in getattr(c, attr):
            words = tuple(phrase.split())
            table[words[-1]].append((label, words))
    return {k: sorted(v, key=lambda x: -len(x[1])) for k, v in table.items()}


def _cue_index(vocab: Vocabulary) -> "_CueIndex":
    cached = _CUES.get(id(vocab))
    if cached is None or cached[0] is not vocab:
        _CUES.clear() if len(_CUES) > 8 else None
        cached = _CUES[id(vocab)] = (vocab, _CueIndex(vocab))
    return cached[1]


_CUES: dict = {}


class _CueIndex:
    """The vocabulary's cue lists, indexed by their last word for the backward walk."""

    def __init__(self, vocab: Vocabulary):
        self.relation_before = _cue_phrases(vocab.relations, "before")
        self.relation_own = _cue_phrases(vocab.relations, "own")
        self.relation_after = {w: label for label, c in vocab.relations for w in c.after}
        self.relation_unless = {label: set(c.unless_after) for label, c in vocab.relations}
        self.context_before = _cue_phrases(vocab.context, "before")
        self.context_after = {w: label for label, c in vocab.context for w in c.after}
        self.unless = {label: set(c.unless_after) for label, c in vocab.context}
        self.heads = {w: label for label, ws in vocab.heads for w in ws}
        self.endings = [(e, label) for label, es in vocab.endings for e in es]


def _governed(words: list[str], marks: list[bool], j: int) -> bool:
    """Whether the "with" at token j follows, within a few words of its clause (names and list
    words cost nothing), a word of working with something (`_WITH_GOVERNORS`)."""
    count = 0
    for k in range(j - 1, -1, -1):
        w = words[k]
        if w in _WITH_GOVERNORS:
            return True
        if w in _CLAUSE_BREAKS and w != "it":  # "we demonstrate it with ResNets"
            return False
        if not marks[k] and w not in _LIST_WORDS:
            count += 1
            if count > _GOVERNOR_GAP:
                return False
    return False


def _walk_back(words: list[str], marks: list[bool], i: int, tables, gap: int, unless=None, breaks=frozenset(),
               capitals=None):
    """The nearest cue before token i: (label, phrase) or None. Names (marks), capitalised words
    inside the sentence (`capitals`: parts of names such as "Stochastic Depth networks") and list
    words cost nothing, other words one each: up to `gap` within one item of a list (items end at
    a comma, "and", "or"), up to `_LIST_SPAN` in all; a clause break ends the search."""
    count = total = 0
    j = i - 1
    while j >= 0:
        w = words[j]
        if marks[j] or (capitals is not None and capitals[j]):
            j -= 1
            continue
        for table in tables:
            for label, phrase in table.get(w, ()):
                n = len(phrase)
                if j - n + 1 >= 0 and tuple(words[j - n + 1:j + 1]) == phrase:
                    if unless and j - n >= 0 and words[j - n] in unless.get(label, ()):
                        continue
                    if n == 1 and w in _TIGHT and count > _TIGHT_GAP:
                        continue
                    if phrase == ("with",) and not _governed(words, marks, j):
                        continue
                    return label, " ".join(phrase)
        if w in _LIST_WORDS:
            if w in _LIST_SEPARATORS:
                count = 0  # a new item of a list
            j -= 1
            continue
        if w in _CLAUSE_BREAKS or w in breaks or w[:1].isdigit():
            return None
        count += 1
        total += 1
        if count > gap or total > max(gap, _LIST_SPAN):
            return None
        j -= 1
    return None


def _apposition(text: str, end: int, heads: dict, *, title: bool = False) -> str:
    """The type an apposition after a name tells: "X, a collaborative language model that ..."
    (or "X: A Python Toolbox for ..." in a title), by the last head word of the noun phrase."""
    rest = text[end:end + 160]
    m = re.match(r"\s*(?:\([^)]*\)\s*)?[:,]\s*(?:a|an|the)\s+" if not title else r"\s*:\s*(?:a|an|the)\s+", rest, re.I)
    if not m:
        return ""
    found = ""
    for w in re.findall(r"[\w-]+|[.;:()]", rest[m.end():])[:10]:
        lw = w.lower()
        if lw in _PHRASE_END or w in ".;:()":
            break
        if lw in heads:
            found = heads[lw]
    return found


class _Extractor:
    """Pass two: the occurrences of names in each paper, their cues and type evidence."""

    def __init__(self, vocab: Vocabulary, corpus_terms: list[Term]):
        self.vocab = vocab
        self.corpus_keys = {name_key(t.name) for t in corpus_terms}
        self.full = vocab.with_terms(corpus_terms)
        # the vocabulary's own matcher is compiled once per vocabulary; the corpus's names apart
        self.corpus_matcher = TermMatcher([t for t in self.full.terms[len(vocab.terms):]])
        self.cues = _cue_index(vocab)
        self.rejected: list[dict] = []

    def reject(self, p: _Paper, surface: str, reason: str) -> None:
        """Keep a name-like token left out of the mentions, with the reason (never dropped silently)."""
        self.rejected.append(dict(paper_id=p.paper_id, surface=surface, reason=reason))

    def find(self, text: str) -> list[tuple[int, int, Term]]:
        """Terms of the vocabulary and of the corpus in `text`: leftmost, then longest, no overlaps."""
        found = sorted(self.vocab.matcher.find(text) + self.corpus_matcher.find(text), key=lambda f: (f[0], f[0] - f[1]))
        out, end = [], -1
        for s, e, t in found:
            if s >= end:
                out.append((s, e, t))
                end = e
        return out

    def canonical(self, p: _Paper, surface: str, term: Term | None) -> tuple[str, str]:
        local = p.local.get(name_key(surface))
        if local is not None:
            return local, "vocabulary"
        if term is None:
            return surface, "detected"
        return term.name, ("corpus" if name_key(term.name) in self.corpus_keys and term.type == UNKNOWN else "vocabulary")

    def occurrences(self, p: _Paper) -> list[_Occurrence]:
        text = p.text
        own_keys = {name_key(n) for n in p.introduced}
        found: list[_Occurrence] = []
        taken: list[tuple[int, int]] = []

        def free(s, e):
            return all(e <= a or s >= b for a, b in taken)

        # The long forms this paper defines name their short form wherever they occur ("Iterative
        # Data Smoothing" is IDS, "Data-free Knowledge Distillation" DFKD, not knowledge distillation).
        def kind_here(name):  # a short form this paper defines as a kind of model ("MLMs": masked language models)
            if name_key(name) in own_keys or self.vocab.is_generic(name):
                return ""
            return p.kinds.get(name_key(_singular(name)), "")

        for short, long in p.defs.items():
            if kind_here(short):
                self.reject(p, short, f"a kind of model: {long}")
                continue
            if self.vocab.is_generic(short) and name_key(short) not in own_keys:
                continue
            term = self.full.term(short)
            name, source = self.canonical(p, short, term)
            kind = term.type if term is not None else UNKNOWN
            for m in spelling_regex(long).finditer(text):
                if free(m.start(), m.end()):
                    found.append(_Occurrence(m.start(), m.end(), name, short, source, type=kind))
                    taken.append((m.start(), m.end()))
        for s, e, term in self.find(text):
            if not free(s, e):
                continue
            surface = text[s:e]
            if term.type == UNKNOWN and self.vocab.is_generic(term.name) and name_key(term.name) not in own_keys:
                continue
            if kind_here(surface):
                self.reject(p, surface, f"a kind of model: {kind_here(surface)}")
                continue
            name, source = self.canonical(p, surface, term)
            if name_key(name) in self.corpus_keys and (term.type == UNKNOWN or source == "corpus"):
                source = "corpus"
            found.append(_Occurrence(s, e, name, surface, source, type=term.type))
            taken.append((s, e))
        # multi-word names the paper introduces ("we dub our method Learning to Retain while Acquiring")
        for name in p.introduced:
            if self.full.term(name) is not None:
                continue
            for m in re.finditer(re.escape(name), text):
                if free(m.start(), m.end()):
                    found.append(_Occurrence(m.start(), m.end(), name, name, "corpus"))
                    taken.append((m.start(), m.end()))
        for m in _CANDIDATE.finditer(text):
            token = m.group(0)
            if not _MAYBE_NAME.search(token) or not free(m.start(), m.end()):
                continue  # no capital or digit after the first letter: an ordinary word
            size = _SIZE.search(token)
            base = token[: size.start()] if size else token
            name = _shaped(base)
            if not name and size and base[:1].isupper() and base.isascii():
                name = base  # "Zlorp-7B": a capitalised word with a model size is a model's name
            if not name:
                continue
            if self.vocab.is_generic(name) and name_key(name) not in own_keys:
                continue
            if _GLUED.match(token):
                self.reject(p, token, "two words run together")
                continue
            if kind_here(name):
                self.reject(p, token, f"a kind of model: {kind_here(name)}")
                continue
            term = self.full.term(name)
            canon, source = self.canonical(p, name, term)
            occ = _Occurrence(m.start(), m.start() + len(token), canon, _LOWER_TAIL.sub("", token), source,
                              type=term.type if term is not None and term.type != UNKNOWN else UNKNOWN)
            if size:
                occ.evidence.append(("model", "size"))
            found.append(occ)
            taken.append((m.start(), m.end()))
        found.sort(key=lambda o: o.start)
        self._annotate(p, found, own_keys)
        return found

    def _annotate(self, p: _Paper, found: list[_Occurrence], own_keys: set[str]) -> None:
        text = p.text
        spans = [(0, len(p.title))] + [(s + len(p.title) + 1, e + len(p.title) + 1) for s, e in sentence_spans(p.abstract)]
        cues = self.cues
        for k, (s0, e0) in enumerate(spans):
            members = [o for o in found if s0 <= o.start < e0]
            if not members:
                continue
            sentence = text[s0:e0]
            toks = _tokens(sentence)
            words = [t[2].lower().rstrip(".") if t[2].lower() == "vs." else t[2].lower() for t in toks]
            first_tok = {}
            marks = [False] * len(toks)
            for o in members:
                idx = [i for i, (a, b, _) in enumerate(toks) if a < o.end - s0 and b > o.start - s0]
                for i in idx:
                    marks[i] = True
                if idx:
                    first_tok[id(o)] = (idx[0], idx[-1])
            # capitalised words inside the sentence (not its first word): parts of names
            capitals = None if k == 0 else [i > 0 and t[2][:1].isupper() and t[2] not in _SENTENCE_WORDS
                                            for i, t in enumerate(toks)]
            own = k == 0 or bool(_OWN.search(sentence)) or any(name_key(o.name) in own_keys for o in members)
            for o in members:
                o.sentence = k
                i0, i1 = first_tok.get(id(o), (0, 0))
                after = text[o.end:o.end + 40]
                tail = re.match(r"-([a-z]+)", after)
                nxt = i1 + 2 if i1 + 2 < len(words) and words[i1 + 1] == ")" else i1 + 1
                next_word, word_after = (words[nxt:nxt + 2] + ["", ""])[:2]
                # relation
                if name_key(o.name) in own_keys:
                    o.relation, o.cue = INTRODUCES, "its own name" if k else "named in its title"
                else:
                    hit = None
                    if tail and tail.group(1) in cues.relation_after:
                        hit = cues.relation_after[tail.group(1)], "-" + tail.group(1)
                    elif next_word in cues.relation_after and not tail and not (
                            next_word == "based" and word_after in ("on", "upon")):
                        # "X based on the protocol": X is what is based on something, not the paper on X
                        hit = cues.relation_after[next_word], next_word
                    if hit is None:
                        tables = [cues.relation_before] + ([cues.relation_own] if own else [])
                        hit = _walk_back(words, marks, i0, tables, _RELATION_GAP, cues.relation_unless,
                                         breaks=_RELATION_BREAKS, capitals=capitals)
                    if hit is not None and hit[1] in _MAKING_CUES and o.source == "detected":
                        hit = None  # "this paper introduces FooNet": an unknown name made here, not one built on
                    if hit is not None:
                        o.relation, o.cue = hit
                # type evidence from context (kept for names the vocabulary does not type)
                if o.type != UNKNOWN:
                    continue
                if tail and tail.group(1) in cues.context_after:
                    o.evidence.append((cues.context_after[tail.group(1)], "-" + tail.group(1)))
                else:
                    following = words[i1 + 1:i1 + 5]
                    following = following[1:] if following[:1] == [")"] else following[:3]
                    if following and following[0] in cues.heads and cues.heads[following[0]] == CONCEPT:
                        o.evidence.append((CONCEPT, following[0]))
                    for w in following:  # "X preference learning approach"
                        if w in cues.context_after:
                            o.evidence.append((cues.context_after[w], w))
                            break
                        if w in _PHRASE_END or not w[:1].isalnum():
                            break
                hit = _walk_back(words, marks, i0, [cues.context_before], _CONTEXT_GAP, cues.unless)
                if hit is not None:
                    o.evidence.append(hit)
                appo = _apposition(text, o.end, cues.heads, title=k == 0)
                if appo:
                    o.evidence += [(appo, "apposition")] * 3
                long = _define(p.defs, o.surface) or _define(p.defs, o.name)
                if not long and len(o.name.split()) > 1:
                    long = o.name  # a name of several words ("Interactive Agent Foundation Model") is typed by its last
                if long:
                    head = long.split()[-1].split("-")[-1].lower()
                    if head in cues.heads:
                        o.evidence += [(cues.heads[head], f"long form: {long}")] * 3
                for ending, label in cues.endings:
                    if o.name.endswith(ending) and len(o.name) > len(ending):
                        o.evidence.append((label, f"ends in {ending}"))
                        break
        for o in found:
            o.sentence_text = " ".join(text[spans[o.sentence][0]:spans[o.sentence][1]].split()) if spans else ""


def _resolve_types(per_paper: list[tuple[_Paper, list[_Occurrence]]]) -> dict[str, str]:
    """One type per name the vocabulary does not type: the most common guess over all its
    occurrences in the corpus (a paper's own name guessed from its kind when nothing else tells);
    names in a list ("on MMLU, FooQA and GSM8K") take their neighbours' type; else unknown."""
    votes: dict[str, Counter] = defaultdict(Counter)
    own = {o.name for _p, occs in per_paper for o in occs if o.relation == INTRODUCES}
    for p, occs in per_paper:
        for o in occs:
            if o.type != UNKNOWN:
                continue
            for label, _ in o.evidence:
                if label == CONCEPT and o.name in own:
                    continue  # a name a paper introduces is a name ("Prediction Error-based Classification (PEC)")
                votes[o.name][label] += 2 if o.relation == INTRODUCES else 1
    types = {name: c.most_common(1)[0][0] for name, c in votes.items() if c}
    # lists: a name still untyped takes the type shared by the typed names listed with it
    for p, occs in per_paper:
        for k in {o.sentence for o in occs}:
            members = [o for o in occs if o.sentence == k]
            for a, o in enumerate(members):
                if o.type != UNKNOWN or o.name in types:
                    continue
                neighbours = []
                for b in (a - 1, a + 1):
                    if 0 <= b < len(members):
                        other = members[b]
                        lo, hi = sorted((o, other), key=lambda x: x.start)
                        between = p.text[lo.end:hi.start]
                        if re.fullmatch(r"\s*(?:,|and|or|/|,\s*and|,\s*or)\s*", between):
                            neighbours.append(other.type if other.type != UNKNOWN else types.get(other.name, UNKNOWN))
                known = [t for t in neighbours if t != UNKNOWN]
                if known and len(set(known)) == 1:
                    types.setdefault(o.name, known[0])
    for p, occs in per_paper:
        for o in occs:
            if o.type == UNKNOWN and o.name not in types and o.relation == INTRODUCES:
                types[o.name] = {"benchmark": "benchmark", "toolbox": "tool"}.get(p.kind, "method")
    return types


def extract_mentions(papers: pd.DataFrame, vocabulary: Vocabulary | str | Path | None = None, *,
                     rejected: list | None = None) -> pd.DataFrame:
    """Every name each paper uses, typed and related: one row per (paper_id, name, relation) with
    columns paper_id, name (canonical), type (method, model, benchmark, metric, tool or unknown),
    relation (introduces, builds-on, replaces, compares or mentions: a name with a stated relation
    has no "mentions" row), cue (the words that stated it), sentence (the evidence), surface (the
    spelling first seen) and source (vocabulary, corpus: a name a paper of the corpus introduces,
    or detected). Rows follow the corpus order, names in order of first appearance. Left out, by
    the vocabulary's rules: its `generic` names (LLM, RL) and short forms the abstract defines as an
    idea rather than a name (`heads: concept`, as in "learning rate schedules (LRS)"), short forms of
    a kind of model (a long form ending in a generic phrase: "masked language models (MLMs)"), two
    words run together ("levelASR"), and a name of one or two capitals alone (PC) that nothing
    types: no context, definition or introduction. Pass a list as `rejected` to get each name-like
    token left out this way, as {paper_id, surface, reason}; names the rules keep but cannot type
    stay, typed "unknown"."""
    for col in ("paper_id", "title", "abstract"):
        if col not in papers.columns:
            raise ValueError(f"extract_mentions needs a {col!r} column")
    vocab = load_vocabulary(vocabulary)
    firsts, corpus_terms = _first_pass(papers, vocab)
    ex = _Extractor(vocab, corpus_terms)
    per_paper = [(p, ex.occurrences(p)) for p in firsts]
    types = _resolve_types(per_paper)
    rows = []
    for p, occs in per_paper:
        seen: dict[str, dict[str, _Occurrence]] = {}
        order: list[str] = []
        for o in occs:
            rels = seen.setdefault(o.name, {})
            if o.name not in order:
                order.append(o.name)
            if o.relation not in rels:
                rels[o.relation] = o
        for name in order:
            rels = seen[name]
            if len(rels) > 1:
                rels.pop(MENTIONS, None)
            first = min((o for o in occs if o.name == name), key=lambda o: o.start)
            kind = first.type if first.type != UNKNOWN else types.get(name, UNKNOWN)
            if kind == CONCEPT:
                ex.reject(p, first.surface, "an idea, not a name (long form: "
                          f"{_define(p.defs, first.surface) or _define(p.defs, name) or '-'})")
                continue
            if (first.source == "detected" and kind == UNKNOWN and _WEAK.match(name) and INTRODUCES not in rels
                    and not _define(p.defs, name)):
                ex.reject(p, first.surface, "one or two capitals with nothing telling their type")
                continue
            for rel in list(rels):
                allowed = _RELATED_TYPES.get(rel)
                by_cue = _CUE_TYPES.get(rels[rel].cue)
                if (allowed is not None and kind not in allowed) or (by_cue is not None and kind not in by_cue):
                    o = rels.pop(rel)
                    rels.setdefault(MENTIONS, replace(o, relation=MENTIONS, cue=""))
            if len(rels) > 1:
                rels.pop(MENTIONS, None)
            for rel in RELATION_ORDER:
                if rel in rels:
                    o = rels[rel]
                    rows.append(dict(paper_id=p.paper_id, name=name, type=kind, relation=rel, cue=o.cue,
                                     sentence=o.sentence_text, surface=first.surface, source=first.source))
    if rejected is not None:
        rejected.extend(ex.rejected)
    return pd.DataFrame(rows, columns=MENTION_COLUMNS)


def mentions(text: str, vocabulary: Vocabulary | str | Path | None = None) -> list[str]:
    """The names `text` uses (canonical), in order of first appearance, without repeats."""
    if not isinstance(text, str) or not text:
        return []
    table = extract_mentions(pd.DataFrame({"paper_id": ["p"], "title": [""], "abstract": [text]}), vocabulary)
    return list(dict.fromkeys(table["name"]))


def extract_methods(papers: pd.DataFrame, vocabulary: Vocabulary | str | Path | None = None, *,
                    mentions_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The papers plus a `methods` column: the names each paper uses (methods, models, benchmarks,
    metrics, software and untyped names, canonical, in order; see `extract_mentions` for types
    and relations). Pass `mentions_table` to reuse an `extract_mentions` result."""
    if "abstract" not in papers.columns:
        raise ValueError("extract_methods needs an 'abstract' column")
    table = mentions_table if mentions_table is not None else extract_mentions(_with_ids(papers), vocabulary)
    by_paper: dict[str, list[str]] = defaultdict(list)
    for pid, name in zip(table["paper_id"], table["name"]):
        if name not in by_paper[pid]:
            by_paper[pid].append(name)
    out = papers.copy()
    ids = _with_ids(papers)["paper_id"].tolist()
    out["methods"] = pd.Series([list(by_paper.get(pid, [])) for pid in ids], index=out.index, dtype=object)
    return out


def _with_ids(papers: pd.DataFrame) -> pd.DataFrame:
    if "paper_id" in papers.columns and "title" in papers.columns:
        return papers
    out = papers.copy()
    if "title" not in out.columns:
        out["title"] = ""
    if "paper_id" not in out.columns:
        out["paper_id"] = [f"p{i}" for i in range(len(out))]
    return out


# ---------------------------------------------------------------- graphs

def lineage_graph(papers: pd.DataFrame, *, include_isolates: bool = False,
                  vocabulary: Vocabulary | str | Path | None = None,
                  mentions_table: pd.DataFrame | None = None) -> nx.DiGraph:
    """Directed graph of papers: an edge A -> B when A introduces a method (the name its title
    introduces, or one its abstract introduces: "called X", "we propose X,") and B names it, in any
    alias or case (a name written in capitals only keeps its capitals). Edge attributes: method,
    relation (B's stated relation to it), sentence (B's sentence) and ambiguous (True when more
    than one paper introduces that name: papers with the same name are different works and are
    never merged, so B is linked to each of them). A paper that defines the short name with
    another long form ("CLR" for cyclical learning rates) uses another method of the same name and
    is not linked. Nodes are paper_ids with attributes title, acronym (its introduced names joined
    by ", ") and same_name (the other papers that introduce a name it introduces, always in the
    graph; `graph.graph["same_name"]` maps each such name to its papers); other papers without
    links are left out unless asked for."""
    ids = papers["paper_id"].tolist()
    titles = dict(zip(ids, papers["title"].tolist()))
    vocab = load_vocabulary(vocabulary)
    firsts, _ = _first_pass(papers, vocab)
    table = mentions_table if mentions_table is not None else extract_mentions(papers, vocab)
    by_id = {p.paper_id: p for p in firsts}
    introducers: dict[str, list[str]] = defaultdict(list)
    for p in firsts:
        for name in p.introduced:
            canon = (vocab.term(name).name if vocab.term(name) is not None else name)
            if p.paper_id not in introducers[canon]:
                introducers[canon].append(p.paper_id)
    graph = nx.DiGraph()

    def add_node(pid):
        p = by_id[pid]
        same = sorted({q for n in p.introduced for q in introducers.get(_canon(vocab, n), []) if q != pid})
        graph.add_node(pid, title=titles[pid], acronym=", ".join(p.introduced), same_name=same)

    if include_isolates:
        for pid in ids:
            add_node(pid)
    rank = {r: i for i, r in enumerate(RELATION_ORDER)}
    best: dict[tuple[str, str], dict] = {}
    for row in table.itertuples(index=False):
        sources = introducers.get(row.name)
        if not sources or row.relation == INTRODUCES:
            continue
        target = by_id.get(row.paper_id)
        if target is None:
            continue
        if len(name_key(row.name)) <= 2 and name_key(row.surface) == name_key(row.name):
            continue  # a two-letter name (AR, SR) links only when spelt out
        for src in sources:
            if src == row.paper_id:
                continue
            if _other_meaning(by_id[src], target, row.name):
                continue
            key = (src, row.paper_id, row.name)
            edge = dict(method=row.name, relation=row.relation, sentence=row.sentence, ambiguous=len(sources) > 1)
            if key not in best or rank[row.relation] < rank[best[key]["relation"]]:
                best[key] = edge
    for (src, dst, _), edge in best.items():
        for n in (src, dst):
            if n not in graph:
                add_node(n)
        if graph.has_edge(src, dst):  # two methods of A named by B: keep both names
            data = graph.edges[src, dst]
            data["method"] += ", " + edge["method"]
            if rank[edge["relation"]] < rank[data["relation"]]:
                data.update(relation=edge["relation"], sentence=edge["sentence"])
        else:
            graph.add_edge(src, dst, **edge)
    # papers that introduce the same name are different works: both shown, never merged
    graph.graph["same_name"] = {n: ps for n, ps in introducers.items() if len(ps) > 1}
    for ps in graph.graph["same_name"].values():
        for pid in ps:
            if pid not in graph:
                add_node(pid)
    return graph


def _canon(vocab: Vocabulary, name: str) -> str:
    term = vocab.term(name)
    return term.name if term is not None else name


def _other_meaning(source: _Paper, target: _Paper, name: str) -> bool:
    """Whether `target` defines `name` by a long form other than the one `source` gives it."""
    theirs = next((v for k, v in target.defs.items() if name_key(k) == name_key(name)), None)
    if theirs is None:
        return False
    ours = next((v for k, v in source.defs.items() if name_key(k) == name_key(name)), None)
    if ours is None:
        ours = source.title.partition(":")[2]
        return not set(name_key(w) for w in theirs.split()) <= set(name_key(w) for w in ours.split())
    return name_key(ours) != name_key(theirs)


def method_graph(papers: pd.DataFrame, *, min_papers: int = 1) -> nx.Graph:
    """Bipartite graph: paper nodes (paper_id; kind="paper", bipartite=0, title) linked to the
    method nodes they mention (the name; kind="method", bipartite=1, papers=count). Methods named
    by fewer than `min_papers` papers are left out."""
    tagged = papers if "methods" in papers.columns else extract_methods(papers)
    counts: Counter = Counter(m for ms in tagged["methods"] for m in dict.fromkeys(as_list(ms)))
    graph = nx.Graph()
    for pid, title, ms in zip(tagged["paper_id"], tagged["title"], tagged["methods"]):
        graph.add_node(pid, kind="paper", bipartite=0, title=title)
        for m in as_list(ms):
            if counts[m] >= min_papers:
                graph.add_node(m, kind="method", bipartite=1, papers=counts[m])
                graph.add_edge(pid, m)
    return graph


def method_counts(papers: pd.DataFrame) -> pd.DataFrame:
    """How many papers name each method/model/benchmark name: method, papers (most first)."""
    tagged = papers if "methods" in papers.columns else extract_methods(papers)
    counts: Counter = Counter(m for ms in tagged["methods"] for m in dict.fromkeys(as_list(ms)))
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame(rows, columns=["method", "papers"]).astype({"papers": "int64"})


def method_families(mentions_table: pd.DataFrame, tagged: pd.DataFrame, *, facet: str = "theme",
                    taxonomy=None) -> pd.DataFrame:
    """The family of each name: the theme of the papers that use it. A paper counts 1 for its
    first theme and 1/2 for each other; the family is the best-scored theme (ties: taxonomy order),
    "(none)" when no paper naming it has a theme. Columns: name, family, papers, themes (each
    theme with its score, best first, as text); most-used names first."""
    if facet not in tagged.columns:
        raise KeyError(f"no column {facet!r}; run tag_papers first")
    order = _tag_order(tagged, facet, taxonomy)
    themes_of = {pid: as_list(t) for pid, t in zip(tagged["paper_id"], tagged[facet])}
    scores: dict[str, Counter] = defaultdict(Counter)
    papers_of: dict[str, set] = defaultdict(set)
    for pid, name in zip(mentions_table["paper_id"], mentions_table["name"]):
        if pid in papers_of[name]:
            continue
        papers_of[name].add(pid)
        for i, theme in enumerate(themes_of.get(pid, [])):
            scores[name][theme] += 1.0 if i == 0 else 0.5
    rows = []
    for name in dict.fromkeys(mentions_table["name"]):
        s = scores[name]
        ranked = sorted(s.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0]))
        rows.append(dict(name=name, family=ranked[0][0] if ranked else NO_FAMILY, papers=len(papers_of[name]),
                         themes=", ".join(f"{t} {v:g}" for t, v in ranked)))
    out = pd.DataFrame(rows, columns=["name", "family", "papers", "themes"])
    return out.sort_values(["papers", "name"], ascending=[False, True], kind="stable", ignore_index=True)


NO_FAMILY = "(none)"


def _tag_order(tagged: pd.DataFrame, facet: str, taxonomy=None) -> dict[str, int]:
    try:
        tax = taxonomy if taxonomy is not None else load_taxonomy()
        names = list(tax.facet(facet).tag_names)
    except KeyError:
        names = []
    seen = sorted({t for tags in tagged[facet] for t in as_list(tags)} - set(names))
    return {t: i for i, t in enumerate(names + seen)}


def method_network(mentions_table: pd.DataFrame, papers: pd.DataFrame | None = None, *, min_papers: int = 2,
                   types=None, families: pd.DataFrame | None = None) -> nx.Graph:
    """Undirected graph of names: nodes are names used by at least `min_papers` papers (and any
    name in a stated relation between two names), with attributes type, family, papers (count),
    paper_ids and sentences (one per paper, for hover text). An edge joins two names one paper
    uses together (attribute papers: how many do; paper_ids) and carries the stated relations
    between them (attribute relations: a list of {relation, source, target, paper_id, sentence},
    when the paper introducing `source` states `relation` to `target`). `types` keeps only names of
    those types."""
    table = mentions_table
    if types is not None:
        types = {types} if isinstance(types, str) else set(types)
        table = table[table["type"].isin(types)]
    fam = dict(zip(families["name"], families["family"])) if families is not None else {}
    counts = table.groupby("name")["paper_id"].nunique()
    type_of = dict(zip(table["name"], table["type"]))
    by_paper = {pid: list(dict.fromkeys(g["name"])) for pid, g in table.groupby("paper_id", sort=False)}
    own = {pid: set(g.loc[g["relation"] == INTRODUCES, "name"]) for pid, g in table.groupby("paper_id", sort=False)}
    stated = []
    for row in table.itertuples(index=False):
        if row.relation in RELATIONS:
            for src in own.get(row.paper_id, ()):
                if src != row.name:
                    stated.append(dict(relation=row.relation, source=src, target=row.name, paper_id=row.paper_id,
                                       sentence=row.sentence))
    keep = {n for n, c in counts.items() if c >= min_papers}
    keep |= {s["source"] for s in stated} | {s["target"] for s in stated}
    graph = nx.Graph()
    sentences: dict[str, list] = defaultdict(list)
    for row in table.itertuples(index=False):
        if row.name in keep and len(sentences[row.name]) < 12 and row.paper_id not in [x[0] for x in sentences[row.name]]:
            sentences[row.name].append((row.paper_id, row.sentence))
    for name in sorted(keep, key=lambda n: (-counts.get(n, 0), n)):
        pids = sorted(set(table.loc[table["name"] == name, "paper_id"]))
        graph.add_node(name, type=type_of.get(name, UNKNOWN), family=fam.get(name, NO_FAMILY),
                       papers=int(counts.get(name, 0)), paper_ids=pids, sentences=sentences[name])
    for pid, names in by_paper.items():
        names = [n for n in names if n in keep]
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if graph.has_edge(a, b):
                    graph.edges[a, b]["papers"] += 1
                    graph.edges[a, b]["paper_ids"].append(pid)
                else:
                    graph.add_edge(a, b, papers=1, paper_ids=[pid], relations=[])
    for s in stated:
        a, b = s["source"], s["target"]
        if not graph.has_edge(a, b):
            graph.add_edge(a, b, papers=0, paper_ids=[], relations=[])
        graph.edges[a, b]["relations"].append(s)
    return graph


def method_relations(mentions_table: pd.DataFrame, name: str, papers: pd.DataFrame | None = None, *,
                     vocabulary: Vocabulary | str | Path | None = None) -> pd.DataFrame:
    """The papers that name `name` (any spelling the vocabulary knows: "proximal policy
    optimization" is PPO), with the relation each states and its sentence: paper_id, title (when
    `papers` is given), relation, cue, sentence; builds-on, replaces and compares first."""
    term = load_vocabulary(vocabulary).term(name)
    keys = {name_key(name)} | ({name_key(term.name)} if term is not None else set())
    mask = pd.Series([name_key(n) in keys for n in mentions_table["name"]], index=mentions_table.index, dtype=bool)
    rows = mentions_table.loc[mask].copy()
    rank = {r: i for i, r in enumerate(RELATION_ORDER)}
    order = {INTRODUCES: 4, "builds-on": 0, "replaces": 1, "compares": 2, MENTIONS: 3}
    rows["_order"] = [order.get(r, rank.get(r, 9)) for r in rows["relation"]]
    rows = rows.sort_values(["_order"], kind="stable").drop(columns="_order")
    cols = ["paper_id", "relation", "cue", "sentence"]
    out = rows[cols].reset_index(drop=True)
    if papers is not None:
        titles = dict(zip(papers["paper_id"], papers["title"]))
        out.insert(1, "title", [titles.get(p, "") for p in out["paper_id"]])
    return out


def top_methods_by_theme(mentions_table: pd.DataFrame, tagged: pd.DataFrame, *, n: int = 5,
                         types=("method",), min_papers: int = 2, facet: str = "theme", taxonomy=None) -> pd.DataFrame:
    """The most-used names per theme: theme, papers (tagged with the theme), then one line of
    "name (papers of the theme naming it)" for its top `n` names of the given types among those
    named by at least `min_papers` papers of the corpus (ties by name)."""
    table = mentions_table if types is None else mentions_table[mentions_table["type"].isin(list(types))]
    used = table.groupby("name")["paper_id"].nunique()
    table = table[table["name"].isin(used[used >= min_papers].index)]
    order = _tag_order(tagged, facet, taxonomy)
    themes_of = {pid: as_list(t) for pid, t in zip(tagged["paper_id"], tagged[facet])}
    per_theme: dict[str, Counter] = defaultdict(Counter)
    for pid, names in table.groupby("paper_id")["name"]:
        for name in set(names):
            for theme in themes_of.get(pid, []):
                per_theme[theme][name] += 1
    size = Counter(t for ts in themes_of.values() for t in ts)
    rows = []
    for theme in sorted(size, key=lambda t: order.get(t, len(order))):
        top = sorted(per_theme[theme].items(), key=lambda kv: (-kv[1], kv[0].casefold()))[:n]
        rows.append(dict(theme=theme, papers=size[theme], top=", ".join(f"{k} ({v})" for k, v in top)))
    return pd.DataFrame(rows, columns=["theme", "papers", "top"])


def theme_cooccurrence(tagged: pd.DataFrame, *, facet: str = "theme", taxonomy=None) -> pd.DataFrame:
    """Square theme x theme table: cell (a, b) counts papers tagged with both, the diagonal the
    papers tagged a. Rows follow the taxonomy's order (the default one unless given)."""
    if facet not in tagged.columns:
        raise KeyError(f"no column {facet!r}; run tag_papers first")
    seen = sorted({t for tags in tagged[facet] for t in as_list(tags)})
    try:
        tax = taxonomy if taxonomy is not None else load_taxonomy()
        order = list(tax.facet(facet).tag_names)
    except KeyError:
        order = []
    if not set(seen) <= set(order):
        order = seen
    table = pd.DataFrame(0, index=pd.Index(order, name=facet), columns=pd.Index(order, name=facet), dtype="int64")
    for tags in tagged[facet]:
        tags = list(dict.fromkeys(as_list(tags)))
        for a in tags:
            for b in tags:
                table.loc[a, b] += 1
    return table


# ---------------------------------------------------------------- measuring against hand labels

def load_mention_gold(path: str | Path) -> list[dict]:
    """Hand labels: a JSON list of {title, mentions: [{name, also?, type, relations}]}."""
    path = Path(path)
    data = read_json_labels(path)
    if not isinstance(data, list) or not all(isinstance(r, dict) and "title" in r and isinstance(r.get("mentions"), list)
                                             for r in data):
        raise ValueError(f"{path}: gold labels must be a JSON list of objects with 'title' and a list 'mentions'")
    for r in data:
        for m in r["mentions"]:
            if not isinstance(m, dict) or "name" not in m or m.get("type") not in (*TYPES, UNKNOWN):
                raise ValueError(f"{path}: paper {r['title']!r}: each mention needs a 'name' and a 'type' "
                                 f"({', '.join(TYPES)}), got {m!r}")
            bad = set(as_list(m.get("relations", [MENTIONS]))) - set(RELATION_ORDER)
            if bad:
                raise ValueError(f"{path}: paper {r['title']!r}: unknown relation(s) {sorted(bad)} for {m['name']!r}")
    return data


def _keys(*names) -> set[str]:
    return {v for n in names for v in key_variants(name_key(n)) if v}


def evaluate_mentions(papers: pd.DataFrame, gold, mentions_table: pd.DataFrame | None = None, *,
                      vocabulary=None, missing: str = "error") -> pd.DataFrame:
    """Scores of the mentions against hand labels, papers matched by title. A predicted name
    matches a gold one when a spelling of either (canonical, first spelling; gold name and `also`)
    is a spelling of the other up to case, hyphens and plural. Rows (metric, value, correct, total):
    mention precision and recall, type accuracy (on matched names), relation precision and recall
    (builds-on / replaces / compares: a predicted relation is right when the gold relations of
    that name include it; one on a name not in the gold counts as wrong) and introduces precision
    and recall. Gold papers missing from `papers` raise ValueError, or are left out with
    `missing="skip"`."""
    if isinstance(gold, (str, Path)):
        gold = load_mention_gold(gold)
    table = mentions_table if mentions_table is not None else extract_mentions(papers, vocabulary)
    by_title = {normalise_title(t): pid for t, pid in zip(papers["title"], papers["paper_id"])}
    absent = [g["title"] for g in gold if normalise_title(g["title"]) not in by_title]
    if absent and missing != "skip":
        raise ValueError(f"{len(absent)} gold title(s) are not among the papers, e.g. {absent[0]!r}; "
                         "score the corpus the labels describe (or pass missing='skip')")
    gold = [g for g in gold if normalise_title(g["title"]) in by_title]
    counts = Counter()
    details = []
    for g in gold:
        pid = by_title[normalise_title(g["title"])]
        pred = table[table["paper_id"] == pid]
        pred_names = list(dict.fromkeys(pred["name"]))
        gold_items = [dict(m, _keys=_keys(m["name"], *as_list(m.get("also", []))),
                           _rels=set(as_list(m.get("relations", [MENTIONS])))) for m in g["mentions"]]
        used = set()
        for name in pred_names:
            rows = pred[pred["name"] == name]
            keys = _keys(name, *rows["surface"].tolist())
            match = next((i for i, m in enumerate(gold_items) if i not in used and m["_keys"] & keys), None)
            ptype = rows["type"].iloc[0]
            prels = set(rows["relation"])
            counts["predicted"] += 1
            if match is None:
                details.append(dict(paper_id=pid, name=name, outcome="false mention", predicted=ptype, gold=""))
                for r in prels & set(RELATIONS):
                    counts["rel_pred"] += 1
                for r in prels & {INTRODUCES}:
                    counts["intro_pred"] += 1
                continue
            used.add(match)
            m = gold_items[match]
            counts["matched"] += 1
            counts["type_ok"] += ptype == m["type"]
            if ptype != m["type"]:
                details.append(dict(paper_id=pid, name=name, outcome="wrong type", predicted=ptype, gold=m["type"]))
            for r in prels & set(RELATIONS):
                counts["rel_pred"] += 1
                counts["rel_ok"] += r in m["_rels"]
                if r not in m["_rels"]:
                    details.append(dict(paper_id=pid, name=name, outcome="wrong relation", predicted=r,
                                        gold=", ".join(sorted(m["_rels"]))))
            counts["rel_gold_found"] += len(prels & m["_rels"] & set(RELATIONS))
            if INTRODUCES in prels:
                counts["intro_pred"] += 1
                counts["intro_ok"] += INTRODUCES in m["_rels"]
            counts["intro_found"] += INTRODUCES in prels and INTRODUCES in m["_rels"]
        for i, m in enumerate(gold_items):
            counts["gold"] += 1
            counts["rel_gold"] += len(m["_rels"] & set(RELATIONS))
            counts["intro_gold"] += INTRODUCES in m["_rels"]
            if i not in used:
                details.append(dict(paper_id=pid, name=m["name"], outcome="missed mention", predicted="", gold=m["type"]))

    def row(metric, ok, total):
        return dict(metric=metric, value=round(ok / total, 3) if total else float("nan"), correct=int(ok), total=int(total))

    out = pd.DataFrame([
        row("mention precision", counts["matched"], counts["predicted"]),
        row("mention recall", counts["matched"], counts["gold"]),
        row("type accuracy", counts["type_ok"], counts["matched"]),
        row("relation precision", counts["rel_ok"], counts["rel_pred"]),
        row("relation recall", counts["rel_gold_found"], counts["rel_gold"]),
        row("introduces precision", counts["intro_ok"], counts["intro_pred"]),
        row("introduces recall", counts["intro_found"], counts["intro_gold"]),
    ])
    out.attrs["details"] = pd.DataFrame(details, columns=["paper_id", "name", "outcome", "predicted", "gold"])
    out.attrs["papers"] = len(gold)
    return out


def labels_as_mentions(papers: pd.DataFrame, gold) -> pd.DataFrame:
    """Hand labels in the shape of an `extract_mentions` table (one row per paper, name and
    relation; each spelling of a name a `surface`), so that `evaluate_mentions(papers, A,
    labels_as_mentions(papers, B))` scores one annotator against another."""
    if isinstance(gold, (str, Path)):
        gold = load_mention_gold(gold)
    by_title = {normalise_title(t): pid for t, pid in zip(papers["title"], papers["paper_id"])}
    rows = []
    for g in gold:
        pid = by_title.get(normalise_title(g["title"]))
        if pid is None:
            raise ValueError(f"labelled paper {g['title']!r} is not among the papers")
        for m in g["mentions"]:
            for rel in as_list(m.get("relations", [MENTIONS])):
                for surface in [m["name"], *as_list(m.get("also", []))]:
                    rows.append(dict(paper_id=pid, name=m["name"], type=m["type"], relation=rel, cue="",
                                     sentence="", surface=surface, source="label"))
    return pd.DataFrame(rows, columns=MENTION_COLUMNS)


def shipped_mention_labels() -> dict[str, tuple[Path, ...]]:
    """The hand labels shipped with the corpus, by who labelled them: "development" (the papers read
    while the vocabulary and cues were written), "held-out" (labelled by the rules' author after
    they were fixed) and "blind annotators" (labelled by others who saw neither rules nor output)."""
    folder = shipped_dir() / "labels"
    return {"development": (folder / "methods_gold.json",),
            "held-out": (folder / "methods_heldout.json", folder / "methods_check.json"),
            "blind annotators": tuple(folder / f"methods_check{k}.json" for k in (2, 3, 4, 5))}


def mention_scores(papers: pd.DataFrame, mentions_table: pd.DataFrame | None = None, *, vocabulary=None) -> pd.DataFrame:
    """`evaluate_mentions` against each group of shipped labels, its files pooled (papers not in
    `papers` left out): one row per metric, one column "<labels> (N papers)" per group, the values
    as text "value (correct/total)"."""
    table = mentions_table if mentions_table is not None else extract_mentions(papers, vocabulary)
    out = None
    for label, paths in shipped_mention_labels().items():
        gold = [r for path in paths for r in load_mention_gold(path)]
        scores = evaluate_mentions(papers, gold, table, missing="skip")
        col = [f"{v:.2f} ({c}/{t})" if t else "–" for v, c, t in zip(scores["value"], scores["correct"], scores["total"])]
        part = pd.DataFrame({"metric": scores["metric"], f"{label} ({scores.attrs['papers']} papers)": col})
        out = part if out is None else out.merge(part, on="metric")
    return out


def format_mention_evaluation(scores: pd.DataFrame) -> str:
    """The scores as aligned text lines: metric, value, correct/total."""
    lines = [f"{r.metric:<22} {r.value:5.3f}  ({r.correct}/{r.total})" for r in scores.itertuples()]
    return "\n".join(lines)
