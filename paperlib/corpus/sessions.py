"""Session plans: a reading list split into sessions a group can follow.

`plan_sessions(selection, sessions=N)` keeps every paper exactly once and decides two things:

- **order**: papers are grouped (by default by their first theme), groups follow one another, and
  a paper that names the method another paper of the list introduces (an edge of
  `methods.lineage_graph`) is read after that paper, even when this moves it out of its group;
- **cuts**: the ordered list is cut into N contiguous sessions of nearly equal size, preferring cuts
  between groups, so a session holds whole groups where that costs little balance.

Each paper carries the reason for its place: its group, the paper it follows and the method
that links them, the papers that build on it.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from paperlib.corpus.methods import lineage_graph
from paperlib.corpus.tagging import as_list

NO_GROUP = "(none)"
COLUMNS = ["session", "position", "paper_id", "title", "group", "reason"]
# how a reason words the relation a lineage edge states (other relations: "names")
RELATION_VERBS = {"builds-on": "builds on", "compares": "compares with", "replaces": "replaces", "extends": "extends"}


def _group_names(selection: pd.DataFrame, by: str) -> list[str]:
    if by not in selection.columns:
        raise KeyError(f"no column {by!r} to group papers by (tag them first, or pass by='cluster_label' "
                       "after merging cluster_papers)")
    return [(as_list(v) or [NO_GROUP])[0] for v in selection[by]]


def _lineage_edges(selection: pd.DataFrame, lineage) -> list[tuple[int, int, str, str]]:
    """(earlier row, later row, method, relation) for every lineage edge between two selected papers."""
    row = {pid: i for i, pid in enumerate(selection["paper_id"])}
    if lineage is None:
        graph = lineage_graph(selection)
        pairs = [(u, v, d.get("method", ""), d.get("relation", "")) for u, v, d in graph.edges(data=True)]
    else:
        blank = [""] * len(lineage)
        pairs = list(zip(lineage["source"], lineage["target"], lineage.get("method", blank),
                         lineage.get("relation", blank)))
    edges = {}
    for u, v, method, relation in pairs:
        if u in row and v in row and u != v:
            edges.setdefault((row[u], row[v]), (str(method or ""), str(relation or "")))
    return [(i, j, m, r) for (i, j), (m, r) in sorted(edges.items())]


def _reading_order(groups: list[str], edges: list[tuple[int, int, str, str]]) -> list[int]:
    """Row order: groups in turn (largest first, lineage between groups respected where it has no
    cycle), papers in corpus order inside a group, every lineage edge pointing forwards unless the
    two papers name each other's method (then they stay side by side)."""
    n = len(groups)
    first: dict[str, int] = {}
    size: dict[str, int] = {}
    for i, g in enumerate(groups):
        first.setdefault(g, i)
        size[g] = size.get(g, 0) + 1
    group_graph = nx.DiGraph()
    group_graph.add_nodes_from(first)
    group_graph.add_edges_from((groups[i], groups[j]) for i, j, *_ in edges if groups[i] != groups[j])
    group_key = {g: (-size[g], first[g]) for g in first}
    condensed = nx.condensation(group_graph)
    group_rank: dict[str, int] = {}
    for c in nx.lexicographical_topological_sort(
            condensed, key=lambda c: min(group_key[g] for g in condensed.nodes[c]["members"])):
        for g in sorted(condensed.nodes[c]["members"], key=group_key.get):
            group_rank[g] = len(group_rank)

    papers = nx.DiGraph()
    papers.add_nodes_from(range(n))
    papers.add_edges_from((i, j) for i, j, *_ in edges)
    blocks = nx.condensation(papers)
    order: list[int] = []
    for c in nx.lexicographical_topological_sort(
            blocks, key=lambda c: min((group_rank[groups[i]], i) for i in blocks.nodes[c]["members"])):
        order += sorted(blocks.nodes[c]["members"])
    return order


def _cuts(groups_in_order: list[str], sessions: int) -> list[int]:
    """Start positions of sessions 2..N: the cut that minimises the squared deviation of the session
    sizes from n / N plus a penalty for each cut inside a group."""
    n = len(groups_in_order)
    target = n / sessions
    penalty = max(1.0, (target / 3) ** 2)  # a group is split rather than let a session stray a third from n / N
    # inside[c]: a cut before position c splits a group
    inside = np.array([0.0] + [penalty if groups_in_order[c - 1] == groups_in_order[c] else 0.0
                               for c in range(1, n)] + [0.0])
    best = np.full((sessions + 1, n + 1), np.inf)
    back = np.zeros((sessions + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    starts = np.arange(n + 1)
    for k in range(1, sessions + 1):
        for end in range(k, n - (sessions - k) + 1):
            cost = best[k - 1, :end] + (end - starts[:end] - target) ** 2 + (inside[:end] if k > 1 else 0.0)
            j = int(np.argmin(cost))
            best[k, end], back[k, end] = cost[j], j
    cuts, end = [], n
    for k in range(sessions, 0, -1):
        end = int(back[k, end])
        cuts.append(end)
    return sorted(cuts)[1:]


def plan_sessions(selection: pd.DataFrame, sessions: int = 3, *, by: str = "theme",
                  lineage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Split a reading list into `sessions` sessions: one row per paper of `selection`, exactly
    once, with session (1..N), position (1.. within the session), paper_id, title, group and reason.

    `by`: the column that groups papers (its first value; "theme" by default, "cluster_label" after
    merging `cluster_papers`). `lineage`: an edge table (source, target, method) such as the build's
    lineage table; by default `lineage_graph(selection)`. A paper that names the method of another
    selected paper comes after it, in the same session or a later one.
    """
    for column in ("paper_id", "title"):
        if column not in selection.columns:
            raise ValueError(f"plan_sessions needs a {column!r} column")
    n = len(selection)
    if not isinstance(sessions, (int, np.integer)) or sessions < 1:
        raise ValueError(f"sessions must be a positive whole number, got {sessions!r}")
    if sessions > n:
        raise ValueError(f"cannot split {n} papers into {sessions} sessions; choose at most {n}")
    if selection["paper_id"].duplicated().any():
        raise ValueError("the selection holds a paper twice (duplicate paper_id)")
    selection = selection.reset_index(drop=True)
    groups = _group_names(selection, by)
    edges = _lineage_edges(selection, lineage)
    order = _reading_order(groups, edges)
    starts = _cuts([groups[i] for i in order], int(sessions))
    session_of = np.searchsorted(np.array(starts, dtype=np.int64), np.arange(n), side="right") + 1

    place = {row: k for k, row in enumerate(order)}
    titles = selection["title"].astype(str).tolist()
    before = {i: [] for i in range(n)}
    after = {i: [] for i in range(n)}
    for i, j, method, relation in edges:
        before[j].append((i, method, relation))
        after[i].append((j, method))
    sessions_of_group: dict[str, set[int]] = {}
    for k, row in enumerate(order):
        sessions_of_group.setdefault(groups[row], set()).add(int(session_of[k]))

    label = {"cluster_label": "cluster"}.get(by, by)
    records, position, current = [], 0, 0
    for k, row in enumerate(order):
        s = int(session_of[k])
        position = position + 1 if s == current else 1
        current = s
        g = groups[row]
        spread = sorted(sessions_of_group[g])
        reason = [f"{label} {g}"]
        if len(spread) > 1:
            reason[0] += f" (spread over sessions {', '.join(map(str, spread))})"
        for i, method, relation in before[row]:
            if place[i] < k:
                verb = RELATION_VERBS.get(relation, "names")
                reason.append(f"after “{titles[i]}”, whose method {method or 'it'} it {verb}")
            else:
                reason.append(f"names the method {method} of “{titles[i]}”, which names its own: "
                              "read them together")
        for j, method in after[row]:
            if place[j] > k:
                reason.append(f"introduces {method or 'a method'}, named later by “{titles[j]}”")
        records.append({"session": s, "position": position, "paper_id": selection["paper_id"].iloc[row],
                        "title": titles[row], "group": g, "reason": "; ".join(reason)})
    return pd.DataFrame(records, columns=COLUMNS)
