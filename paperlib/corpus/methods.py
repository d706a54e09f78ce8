"""Method and benchmark mentions in abstracts, and the graphs built from them: a lineage graph
(A -> B when B's abstract names the method A's title introduces), a paper-method bipartite graph
and a theme co-occurrence matrix.

A mention is recognised by its shape, not from a list of this corpus's names: a token that starts
with a letter and has a capital after its first letter (EWC, LoRA, iCaRL, DualPrompt, ImageNet),
or a capital and a digit (K400, R1), including hyphenated forms (GPT-4, CIFAR-100, DeepSeek-R1).
A short stop list removes generic acronyms (AI, LLM, GPU...) and software or company names.
"""
from __future__ import annotations

import re

import networkx as nx
import pandas as pd

from paperlib.corpus.reader import extract_acronym
from paperlib.corpus.tagging import as_list
from paperlib.corpus.taxonomy import load_taxonomy

_URL = re.compile(r"https?://\S+|www\.\S+")
_CANDIDATE = re.compile(r"(?<![\w/.-])[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*(?![\w/-])")
_ROMAN = re.compile(r"^[IVX]+$")
_VERSION = re.compile(r"^[Vv]\d+$")
_LOWER_TAIL = re.compile(r"(?:-[a-z]+)+$")

# Generic acronyms of the field, units and organisations: not names of a method or benchmark.
STOP = frozenset("""
AI AGI ML DL NLP NLU NLG CV RL CL CIL TIL DIL FL ICL PTM PTMs CPT L1 L2 LLM LM PLM SLM MLLM VLM LVLM VLA NN DNN CNN RNN GNN MLP GPU TPU CPU
API SOTA IID OOD QA ID IT OK US USA UK EU PhD FLOPs FLOP TFLOPs GB MB KB TB PB GHz AUC ROC F1 BLEU
GitHub PyTorch TensorFlow OpenAI DeepMind HuggingFace arXiv YouTube JAX LaTeX iOS macOS
""".split())


def _shape_ok(part: str) -> bool:
    if len(part) < 2 or not part[0].isalpha():
        return False
    upper_after_first = any(c.isupper() for c in part[1:])
    return upper_after_first or (part[0].isupper() and any(c.isdigit() for c in part))


def _singular(token: str) -> str:
    """An acronym's plural as its singular ("LLMs" -> "LLM", "PLMs" -> "PLM"; "LoRAs" stays), trailing dots dropped."""
    if len(token) > 2 and token.endswith("s") and token[:-1].isupper():
        return token[:-1]
    return token.rstrip(".")


def mentions(text: str) -> list[str]:
    """Method/benchmark-like names in `text`, in order of first appearance, without repeats."""
    if not isinstance(text, str) or not text:
        return []
    text = _URL.sub(" ", text)
    found: list[str] = []
    for m in _CANDIDATE.finditer(text):
        # Drop plain lower-case tails: "LLM-based" -> "LLM", "R1-like" -> "R1".
        token = _singular(_LOWER_TAIL.sub("", m.group(0)))
        parts = re.split(r"[-.]", token)
        if not any(_shape_ok(p) for p in parts):
            continue
        if token in STOP or _ROMAN.match(token) or _VERSION.match(token):
            continue
        if token not in found:
            found.append(token)
    return found


def extract_methods(papers: pd.DataFrame) -> pd.DataFrame:
    """The papers plus a `methods` column: the method and benchmark names each abstract uses."""
    if "abstract" not in papers.columns:
        raise ValueError("extract_methods needs an 'abstract' column")
    out = papers.copy()
    out["methods"] = pd.Series([mentions(a) for a in papers["abstract"].tolist()], index=out.index, dtype=object)
    return out


def introduced_method(title: str, abstract: str = "") -> str:
    """The name a title introduces ("SLCA: ..." -> "SLCA"), using the corpus parser's rule."""
    return extract_acronym(title, abstract) or ""


def _acronyms(papers: pd.DataFrame) -> list[str]:
    if "acronym" in papers.columns:
        return ["" if not isinstance(a, str) else a.strip() for a in papers["acronym"].tolist()]
    abstracts = papers["abstract"].tolist() if "abstract" in papers.columns else [""] * len(papers)
    return [introduced_method(t, a if isinstance(a, str) else "") for t, a in zip(papers["title"], abstracts)]


def lineage_graph(papers: pd.DataFrame, *, include_isolates: bool = False) -> nx.DiGraph:
    """Directed graph of papers: an edge A -> B (attribute `method`) when B's abstract names,
    as a whole word with the same capitals, the method A's title introduces. Nodes are paper_ids
    with attributes title and acronym; papers without links are left out unless asked for."""
    acronyms = _acronyms(papers)
    ids = papers["paper_id"].tolist()
    titles = papers["title"].tolist()
    abstracts = [_URL.sub(" ", a) if isinstance(a, str) else "" for a in papers["abstract"].tolist()]
    graph = nx.DiGraph()
    if include_isolates:
        for pid, t, a in zip(ids, titles, acronyms):
            graph.add_node(pid, title=t, acronym=a)
    for i, name in enumerate(acronyms):
        if not name or name in STOP:  # a generic acronym (PLM, LLM) marks no lineage
            continue
        pattern = re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])")
        for j, text in enumerate(abstracts):
            if i != j and name in text and pattern.search(text):
                for k in (i, j):
                    graph.add_node(ids[k], title=titles[k], acronym=acronyms[k])
                graph.add_edge(ids[i], ids[j], method=name)
    return graph


def method_graph(papers: pd.DataFrame, *, min_papers: int = 1) -> nx.Graph:
    """Bipartite graph: paper nodes (paper_id; kind="paper", bipartite=0, title) linked to the
    method nodes they mention (the name; kind="method", bipartite=1, papers=count). Methods named
    by fewer than `min_papers` papers are left out."""
    tagged = papers if "methods" in papers.columns else extract_methods(papers)
    counts: dict[str, int] = {}
    for ms in tagged["methods"]:
        for m in ms:
            counts[m] = counts.get(m, 0) + 1
    graph = nx.Graph()
    for pid, title, ms in zip(tagged["paper_id"], tagged["title"], tagged["methods"]):
        graph.add_node(pid, kind="paper", bipartite=0, title=title)
        for m in ms:
            if counts[m] >= min_papers:
                graph.add_node(m, kind="method", bipartite=1, papers=counts[m])
                graph.add_edge(pid, m)
    return graph


def method_counts(papers: pd.DataFrame) -> pd.DataFrame:
    """How many papers mention each method/benchmark name: method, papers (most first)."""
    tagged = papers if "methods" in papers.columns else extract_methods(papers)
    counts: dict[str, int] = {}
    for ms in tagged["methods"]:
        for m in ms:
            counts[m] = counts.get(m, 0) + 1
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame(rows, columns=["method", "papers"]).astype({"papers": "int64"})


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
