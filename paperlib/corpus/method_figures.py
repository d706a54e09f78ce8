"""Figures of the names papers use and how they relate: the method network (filter by type,
coloured by family), the papers that build on, replace or compare with one method, and the
lineage of papers.

Corpus text is data, never markup: every name, title and sentence shown in a hover label, a
node label or an axis goes through `html.escape` (plotly renders a subset of HTML in those).
"""
from __future__ import annotations

import html
import textwrap

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from paperlib.corpus.methods import INTRODUCES, MENTIONS, NO_FAMILY, RELATION_ORDER
from paperlib.corpus.vocabulary import TYPES, UNKNOWN

_PALETTE = qualitative.Dark24 + qualitative.Light24
RELATION_COLOURS = {"builds-on": "#2ca02c", "replaces": "#ff7f0e", "compares": "#1f77b4",
                    MENTIONS: "#9a9a9a", INTRODUCES: "#9467bd"}
RELATION_LABELS = {"builds-on": "builds on", "replaces": "replaces / alternative to", "compares": "compares with",
                   MENTIONS: "only mentions", INTRODUCES: "introduces"}
TYPE_SYMBOLS = {"method": "circle", "model": "square", "benchmark": "diamond", "metric": "triangle-up",
                "tool": "pentagon", UNKNOWN: "x"}


def _esc(text) -> str:
    return html.escape(str(text if text is not None else ""))


def _wrap(text, width: int = 80, limit: int = 400) -> str:
    text = " ".join(str(text or "").split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "<br>".join(_esc(line) for line in textwrap.wrap(text, width))


def family_colours(families) -> dict[str, str]:
    """A colour per family, in the order given; "(none)" grey."""
    names = [f for f in dict.fromkeys(families) if f != NO_FAMILY]
    colours = {f: _PALETTE[i % len(_PALETTE)] for i, f in enumerate(names)}
    colours[NO_FAMILY] = "#b0b0b0"
    return colours


# ---------------------------------------------------------------- the method network

def _node_hover(name: str, data: dict, titles: dict, limit: int = 4) -> str:
    parts = [f"<b>{_esc(name)}</b> ({_esc(data.get('type', UNKNOWN))}, family {_esc(data.get('family', NO_FAMILY))})",
             f"named by {data.get('papers', 0)} papers"]
    for pid, sentence in data.get("sentences", [])[:limit]:
        parts.append(f"• <i>{_wrap(titles.get(pid, pid), 90, 120)}</i>")
        if sentence:
            parts.append("&nbsp;&nbsp;" + _wrap(sentence, 90, 160))
    more = data.get("papers", 0) - min(limit, len(data.get("sentences", [])))
    if more > 0:
        parts.append(f"… and {more} more")
    return "<br>".join(parts)


def _edge_hover(a: str, b: str, rel: dict, titles: dict) -> str:
    label = RELATION_LABELS.get(rel["relation"], rel["relation"])
    return (f"<b>{_esc(rel['source'])}</b> {_esc(label)} <b>{_esc(rel['target'])}</b><br>"
            f"<i>{_wrap(titles.get(rel['paper_id'], rel['paper_id']), 90, 160)}</i><br>{_wrap(rel['sentence'], 90)}")


def network_layout(graph: nx.Graph, *, seed: int = 0) -> dict:
    """Positions for a network: the largest connected part by Kamada and Kawai's layout (even
    spacing, starting from a seeded spring layout), the smaller parts in a column on its right."""
    parts = sorted(nx.connected_components(graph), key=lambda c: (-len(c), sorted(map(str, c))))
    pos: dict = {}
    if not parts:
        return pos
    big = graph.subgraph(parts[0])
    if len(big) > 2:
        start = nx.spring_layout(big, seed=seed)
        pos.update(nx.kamada_kawai_layout(big, pos=start))
    else:
        pos.update(nx.spring_layout(big, seed=seed))
    xs = [p[0] for p in pos.values()]
    right, y = (max(xs) if xs else 0.0) + 0.45, 1.0
    for part in parts[1:]:
        sub = graph.subgraph(part)
        local = nx.spring_layout(sub, seed=seed, scale=0.12) if len(sub) > 1 else {next(iter(part)): np.zeros(2)}
        for n, (x, yy) in local.items():
            pos[n] = np.array([right + x, y + yy])
        y -= 0.3
        if y < -1.0:
            right, y = right + 0.4, 1.0
    return pos


def plot_method_network(network: nx.Graph, papers: pd.DataFrame | None = None, *, seed: int = 0,
                        title: str = "How the methods relate: names used together and the relations papers state",
                        label_top: int = 20) -> go.Figure:
    """The `method_network` graph: nodes sized by how many papers name them, coloured by family
    (click a family in the legend to hide or show it), marked by type; grey lines join names one
    paper uses together (thicker: more papers), coloured arrows the relations a paper states
    between its own method and another (builds on, replaces, compares with), with the sentence on
    hover. The buttons keep the names of one type. Hover a node for the papers naming it."""
    titles = dict(zip(papers["paper_id"], papers["title"])) if papers is not None else {}
    fig = go.Figure()
    if network.number_of_nodes() == 0:
        fig.update_layout(title=f"{title} (no names found)")
        return fig
    pos = network_layout(network, seed=seed)
    nodes = list(network.nodes)
    type_of = {n: network.nodes[n].get("type", UNKNOWN) for n in nodes}
    family_of = {n: network.nodes[n].get("family", NO_FAMILY) for n in nodes}
    colours = family_colours(sorted(set(family_of.values()), key=lambda f: (f == NO_FAMILY, f)))
    labelled = set(sorted(nodes, key=lambda n: -network.nodes[n].get("papers", 0))[:label_top])
    present = [t for t in (*TYPES, UNKNOWN) if t in set(type_of.values())]
    trace_types: list[set] = []  # the types each trace belongs to (for the buttons)

    def pair(a, b):
        return {type_of[a], type_of[b]} if type_of[a] == type_of[b] else {"(mixed)"}

    # co-mention lines: one trace per (type of both ends, thickness); mixed pairs only under "all types"
    bins = [(1, 1, 0.5), (2, 3, 1.2), (4, 10**9, 2.4)]
    groups: dict = {}
    for a, b, d in network.edges(data=True):
        n = d.get("papers", 0)
        width = next((w for lo, hi, w in bins if lo <= n <= hi), None)
        if width is not None:
            groups.setdefault((frozenset(pair(a, b)), width), []).append((a, b))
    first_co = True
    for (types, width), segs in sorted(groups.items(), key=lambda kv: (sorted(kv[0][0]), kv[0][1])):
        xs, ys = [], []
        for a, b in segs:
            xs += [pos[a][0], pos[b][0], None]
            ys += [pos[a][1], pos[b][1], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", name="used together (thicker: more papers)",
                                 legendgroup="co", showlegend=first_co, line=dict(width=width, color="rgba(120,120,120,0.45)")))
        first_co = False
        trace_types.append(set(types))
    # stated relations: arrows from a paper's own method to the name, sentence on hover
    for rel in ("builds-on", "replaces", "compares"):
        by_types: dict = {}
        for a, b, d in network.edges(data=True):
            for r in d.get("relations", []):
                if r["relation"] == rel:
                    by_types.setdefault(frozenset(pair(a, b)), []).append(r)
        for types, rels in sorted(by_types.items(), key=lambda kv: sorted(kv[0])):
            xs, ys, hx, hy, hover = [], [], [], [], []
            for r in rels:
                s, t = r["source"], r["target"]
                xs += [pos[s][0], pos[t][0], None]
                ys += [pos[s][1], pos[t][1], None]
                hx.append(pos[s][0] + 0.6 * (pos[t][0] - pos[s][0]))
                hy.append(pos[s][1] + 0.6 * (pos[t][1] - pos[s][1]))
                hover.append(_edge_hover(s, t, r, titles))
            fig.add_trace(go.Scatter(
                x=xs + hx, y=ys + hy, mode="lines+markers", name=_esc(RELATION_LABELS[rel]), legendgroup=rel,
                showlegend=not any(t.legendgroup == rel for t in fig.data), hoverinfo="text",
                hovertext=[""] * len(xs) + hover, line=dict(width=2.2, color=RELATION_COLOURS[rel]),
                marker=dict(size=[0] * len(xs) + [10] * len(hx), color=RELATION_COLOURS[rel], symbol="arrow",
                            angleref="previous")))
            trace_types.append(set(types))
    # nodes: one trace per (family, type), the legend per family
    for fam in colours:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=_esc(fam), legendgroup=f"family {fam}",
                                 legendgrouptitle_text="family" if fam == next(iter(colours)) else None,
                                 marker=dict(size=10, color=colours[fam]), hoverinfo="skip"))
        trace_types.append({"(legend)"})
        for kind in present:
            members = [n for n in nodes if family_of[n] == fam and type_of[n] == kind]
            if not members:
                continue
            fig.add_trace(go.Scatter(
                x=[pos[n][0] for n in members], y=[pos[n][1] for n in members], mode="markers+text",
                name=_esc(fam), legendgroup=f"family {fam}", showlegend=False,
                text=[_esc(n) if n in labelled else "" for n in members], textposition="top center",
                textfont=dict(size=10), hovertext=[_node_hover(n, network.nodes[n], titles) for n in members],
                hoverinfo="text", customdata=members,
                marker=dict(size=[8 + 5 * np.sqrt(network.nodes[n].get("papers", 1)) for n in members],
                            color=colours[fam], symbol=TYPE_SYMBOLS.get(kind, "circle"),
                            line=dict(width=0.6, color="white"))))
            trace_types.append({kind})
    buttons = [dict(label="all types", method="restyle", args=[{"visible": [True] * len(fig.data)}])]
    for kind in present:
        visible = [kind in t or "(legend)" in t for t in trace_types]
        buttons.append(dict(label=_esc(kind), method="restyle", args=[{"visible": visible}]))
    symbols = ", ".join(f"{k} {v}" for k, v in TYPE_SYMBOLS.items() if k in present)
    fig.update_layout(
        title=dict(text=title, y=0.98, yanchor="top"), height=760, xaxis=dict(visible=False), yaxis=dict(visible=False),
        hoverlabel=dict(align="left"), legend=dict(itemsizing="constant", groupclick="togglegroup"),
        updatemenus=[dict(type="buttons", direction="right", buttons=buttons, x=0.0, xanchor="left", y=1.01,
                          yanchor="bottom", showactive=True, pad=dict(r=4, t=2))],
        annotations=[dict(text=f"marker: {symbols}", showarrow=False, xref="paper", yref="paper", x=0, y=-0.02,
                          xanchor="left", yanchor="top", font=dict(size=10, color="#555"))],
        margin=dict(l=10, r=10, t=110, b=30))
    fig.layout.meta = {"trace_types": [sorted(t) for t in trace_types]}
    return fig


# ---------------------------------------------------------------- one method

def plot_method_relations(relations: pd.DataFrame, name: str) -> go.Figure:
    """The papers that name one method (`method_relations(mentions, name, papers)`), one dot per
    paper and relation, in columns: builds on, replaces, compares with, only mentions,
    introduces. Hover a dot for the title, the cue and the sentence."""
    fig = go.Figure()
    if relations.empty:
        fig.update_layout(title=f"No paper names {_esc(name)}", height=240)
        return fig
    titles = relations["title"] if "title" in relations.columns else relations["paper_id"]
    short = [_esc(t if len(str(t)) <= 70 else str(t)[:69] + "…") for t in titles]
    order = [r for r in ("builds-on", "replaces", "compares", MENTIONS, INTRODUCES) if r in set(relations["relation"])]
    ylabels = list(dict.fromkeys(short))
    for rel in order:
        part = relations["relation"] == rel
        hover = [f"<b>{_wrap(t, 90, 200)}</b><br>{_esc(RELATION_LABELS[rel])} {_esc(name)}"
                 + (f" (cue: <i>{_esc(c)}</i>)" if c else "") + f"<br>{_wrap(s, 90)}"
                 for t, c, s in zip(titles[part], relations.loc[part, "cue"], relations.loc[part, "sentence"])]
        fig.add_trace(go.Scatter(
            x=[RELATION_LABELS[rel]] * int(part.sum()), y=[s for s, p in zip(short, part) if p], mode="markers",
            name=_esc(RELATION_LABELS[rel]), hovertext=hover, hoverinfo="text",
            customdata=relations.loc[part, "paper_id"].tolist(),
            marker=dict(size=13, color=RELATION_COLOURS[rel], line=dict(width=0.8, color="white"))))
    fig.update_layout(
        title=f"Papers naming {_esc(name)}: what their sentences say about it", hoverlabel=dict(align="left"),
        height=max(300, 140 + 26 * len(ylabels)),
        xaxis=dict(categoryorder="array", categoryarray=[RELATION_LABELS[r] for r in order], side="top"),
        yaxis=dict(categoryorder="array", categoryarray=ylabels[::-1], automargin=True),
        margin=dict(l=10, r=10, t=90, b=10), showlegend=False)
    return fig


# ---------------------------------------------------------------- lineage

def plot_lineage_network(graph: nx.DiGraph, *, seed: int = 0,
                         title: str = "Lineage: from the paper that introduces a method to the papers naming it") -> go.Figure:
    """The `lineage_graph` as a network: an arrow from the paper that introduces a method to each
    paper naming it, coloured by the relation that paper states (builds on, replaces, compares
    with, only mentions); a dashed arrow when several papers introduce that name, so the link may
    belong to either; a dotted red line between papers that introduce the same name (different
    works). Node size grows with how many papers name its method."""
    same = [(a, b) for a, d in graph.nodes(data=True) for b in d.get("same_name", []) if a < b and b in graph]
    g = graph.subgraph([n for n in graph.nodes if graph.degree(n) > 0 or graph.nodes[n].get("same_name")]).copy()
    fig = go.Figure()
    if g.number_of_nodes() == 0:
        fig.update_layout(title=f"{title} (no links found)")
        return fig
    layout_graph = nx.Graph(g.to_undirected())
    layout_graph.add_edges_from(same)
    pos = nx.spring_layout(layout_graph, seed=seed, k=1.5 / np.sqrt(max(layout_graph.number_of_nodes(), 1)))
    for rel in ("builds-on", "replaces", "compares", MENTIONS):
        for dashed in (False, True):
            edges = [(u, v, d) for u, v, d in g.edges(data=True)
                     if d.get("relation", MENTIONS) == rel and bool(d.get("ambiguous")) == dashed]
            if not edges:
                continue
            xs, ys, hx, hy, hover = [], [], [], [], []
            for u, v, d in edges:
                (x0, y0), (x1, y1) = pos[u], pos[v]
                xs += [x0, x1, None]
                ys += [y0, y1, None]
                hx.append(x0 + 0.8 * (x1 - x0))
                hy.append(y0 + 0.8 * (y1 - y0))
                note = "<br><i>several papers introduce this name; the link may belong to either</i>" if dashed else ""
                hover.append(f"<b>{_wrap(g.nodes[v].get('title', v), 90, 160)}</b><br>"
                             f"{_esc(RELATION_LABELS[rel])} <b>{_esc(d.get('method', ''))}</b>{note}<br>"
                             f"{_wrap(d.get('sentence', ''), 90)}")
            name = _esc(RELATION_LABELS[rel]) + (" (name of several papers)" if dashed else "")
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                     line=dict(width=1.4, color=RELATION_COLOURS[rel], dash="dash" if dashed else "solid")))
            fig.add_trace(go.Scatter(x=hx, y=hy, mode="markers", name=name, hovertext=hover, hoverinfo="text",
                                     marker=dict(symbol="arrow", angleref="previous", size=11,
                                                 color=RELATION_COLOURS[rel])))
    if same:
        xs, ys = [], []
        for a, b in same:
            xs += [pos[a][0], pos[b][0], None]
            ys += [pos[a][1], pos[b][1], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="same name, different works", hoverinfo="skip",
                                 line=dict(width=1.6, color="#d62728", dash="dot")))
    nodes = list(g.nodes)
    named_by = np.array([g.out_degree(n) for n in nodes])
    hover = []
    for n in nodes:
        d = g.nodes[n]
        text = f"<b>{_wrap(d.get('title', n), 80, 200)}</b>"
        if d.get("acronym"):
            text += f"<br>introduces: {_esc(d['acronym'])}"
        text += f"<br>named by {g.out_degree(n)} papers; it names {g.in_degree(n)} papers' methods"
        for other in d.get("same_name", []):
            if other in graph:
                text += (f"<br><i>a different work with the same name:</i> "
                         f"{_wrap(graph.nodes[other].get('title', other), 80, 160)}")
        hover.append(text)
    labels = [_esc(g.nodes[n].get("acronym", "")) if g.out_degree(n) > 0 or g.nodes[n].get("same_name") else ""
              for n in nodes]
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text", text=labels,
        textposition="top center", textfont=dict(size=10), hovertext=hover, hoverinfo="text", customdata=nodes,
        name="paper", showlegend=False,
        marker=dict(size=10 + 5 * np.sqrt(named_by), color=named_by, colorscale="Viridis", showscale=True,
                    colorbar=dict(title="named by", x=1.02, dtick=1), line=dict(width=0.6, color="white"))))
    fig.update_layout(title=title, height=600, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      hoverlabel=dict(align="left"), legend=dict(x=0, y=-0.02, orientation="h", yanchor="top"),
                      margin=dict(l=10, r=10, t=50, b=60))
    return fig


def relation_summary(mentions_table: pd.DataFrame) -> pd.DataFrame:
    """How many (paper, name) pairs state each relation, by type of name: a table with one row per
    relation (in the order introduces, builds-on, replaces, compares, mentions), one column per type."""
    counts = mentions_table.groupby(["relation", "type"]).size().unstack(fill_value=0)
    counts = counts.reindex([r for r in RELATION_ORDER if r in counts.index])
    cols = [t for t in (*TYPES, UNKNOWN) if t in counts.columns]
    return counts[cols].rename_axis(index="relation", columns="type")
