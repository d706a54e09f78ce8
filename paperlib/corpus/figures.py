"""Figures and reading tables of the corpus: tag counts per facet, the paper map, clusters,
theme co-occurrence and the method lineage network.

Corpus text is data, never markup: every title, abstract or term shown in a hover label or
annotation goes through `html.escape` here (plotly renders a subset of HTML in those).
"""
from __future__ import annotations

import html
import re
import textwrap

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from paperlib.corpus.tagging import as_list

NO_TAG = "(none)"
_PALETTE = qualitative.Dark24 + qualitative.Light24
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def first_sentence(text: str, limit: int = 220) -> str:
    """The abstract's first sentence, cut at `limit` characters."""
    text = " ".join(str(text or "").split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _wrapped(text: str, width: int = 80) -> str:
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width)) or ""


def paper_hover(tagged: pd.DataFrame, *, sentence: bool = True) -> list[str]:
    """Hover label per paper: title, tags and the first sentence of the abstract, all escaped."""
    labels = []
    for rec in tagged.to_dict("records"):
        parts = [f"<b>{_wrapped(str(rec.get('title', '')), 70)}</b>"]
        for facet in ("theme", "kind", "domain"):
            if facet in rec:
                tags = as_list(rec[facet])
                parts.append(f"{facet}: {html.escape(', '.join(tags) or NO_TAG)}")
        if sentence and "abstract" in rec:
            parts.append(_wrapped(first_sentence(rec["abstract"])))
        labels.append("<br>".join(parts))
    return labels


def primary_tag(tagged: pd.DataFrame, facet: str = "theme") -> pd.Series:
    """The first tag of a facet per paper (the map's colour), NO_TAG when it has none."""
    return pd.Series([(as_list(v) or [NO_TAG])[0] for v in tagged[facet]], index=tagged.index, dtype=object)


def _colours(names) -> dict[str, str]:
    ordered = [n for n in names if n != NO_TAG]
    colours = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(ordered)}
    colours[NO_TAG] = "#b0b0b0"
    return colours


# ---------------------------------------------------------------- tag counts

def plot_facet_counts(tagged: pd.DataFrame, counter, facets=("theme", "kind", "domain")) -> go.Figure:
    """One bar chart with a dropdown to switch facet; `counter(tagged, facet)` gives tag, papers."""
    fig = go.Figure()
    for i, facet in enumerate(facets):
        df = counter(tagged, facet).sort_values("papers")
        fig.add_trace(go.Bar(x=df["papers"], y=[html.escape(t) for t in df["tag"]], orientation="h",
                             name=facet, visible=i == 0,
                             hovertemplate="%{y}: %{x} papers<extra>" + facet + "</extra>"))
    buttons = [dict(label=facet, method="update",
                    args=[{"visible": [j == i for j in range(len(facets))]}, {"title": f"Papers per {facet}"}])
               for i, facet in enumerate(facets)]
    fig.update_layout(title=f"Papers per {facets[0]}", xaxis_title="papers", height=560, showlegend=False,
                      updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.12)],
                      margin=dict(l=10, r=10, t=70, b=40))
    return fig


def compute_facet_pairs(tagged: pd.DataFrame, outer: str = "theme", inner: str = "kind") -> pd.DataFrame:
    """Papers per (outer tag, inner tag); a paper with two themes counts under both."""
    rows = []
    for a, b in zip(tagged[outer], tagged[inner]):
        for x in as_list(a) or [NO_TAG]:
            for y in as_list(b) or [NO_TAG]:
                rows.append((x, y))
    df = pd.DataFrame(rows, columns=[outer, inner])
    return df.groupby([outer, inner]).size().rename("papers").reset_index().sort_values(
        [outer, "papers"], ascending=[True, False], ignore_index=True)


def plot_facet_sunburst(pairs: pd.DataFrame) -> go.Figure:
    """Sunburst of `compute_facet_pairs` output: outer ring the second facet inside each first."""
    outer, inner = pairs.columns[0], pairs.columns[1]
    totals = pairs.groupby(outer)["papers"].sum()
    ids = [f"{o}" for o in totals.index] + [f"{o}/{i}" for o, i in zip(pairs[outer], pairs[inner])]
    labels = [html.escape(o) for o in totals.index] + [html.escape(i) for i in pairs[inner]]
    parents = [""] * len(totals) + list(pairs[outer])
    values = list(totals.values) + list(pairs["papers"])
    fig = go.Figure(go.Sunburst(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                                hovertemplate="%{label}: %{value} papers<extra></extra>"))
    fig.update_layout(title=f"{outer} (inner ring) and {inner} (outer ring)", height=600,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


# ---------------------------------------------------------------- map and clusters

def plot_paper_map(coords: pd.DataFrame, tagged: pd.DataFrame, *, facet: str = "theme",
                   highlight=None, title: str = "Map of the corpus") -> go.Figure:
    """Papers as points (`coords`: paper_id, x, y), one trace per primary tag so the legend filters.

    `highlight`: paper ids drawn large on top (e.g. a search result).
    """
    df = coords.merge(tagged, on="paper_id", how="left", validate="one_to_one")
    df["_tag"] = primary_tag(df, facet)
    df["_hover"] = paper_hover(df)
    colours = _colours(sorted(df["_tag"].unique()))
    fig = go.Figure()
    for tag in sorted(df["_tag"].unique(), key=lambda t: (t == NO_TAG, t)):
        part = df[df["_tag"] == tag]
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers", name=html.escape(tag),
            marker=dict(size=8, color=colours[tag], line=dict(width=0.5, color="white")),
            text=part["_hover"], customdata=part["paper_id"], hovertemplate="%{text}<extra></extra>"))
    if highlight is not None:
        sel = df[df["paper_id"].isin(list(highlight))]
        fig.add_trace(go.Scatter(
            x=sel["x"], y=sel["y"], mode="markers", name="selection",
            marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
            text=sel["_hover"], customdata=sel["paper_id"], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title=title, height=620, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      legend=dict(title=facet, itemsizing="constant"), hoverlabel=dict(align="left"),
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def plot_clusters(coords: pd.DataFrame, clusters: pd.DataFrame, tagged: pd.DataFrame) -> go.Figure:
    """The map coloured by cluster, each cluster's label written at its centre."""
    df = coords.merge(clusters, on="paper_id").merge(tagged, on="paper_id", how="left")
    df["_hover"] = paper_hover(df, sentence=False)
    fig = go.Figure()
    labels = df.groupby("cluster")["cluster_label"].first()
    for i, (cluster, label) in enumerate(labels.items()):
        part = df[df["cluster"] == cluster]
        name = html.escape(f"{cluster}: {label}")
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers", name=name,
            marker=dict(size=8, color=_PALETTE[i % len(_PALETTE)]), text=part["_hover"],
            hovertemplate="%{text}<br>cluster " + name.replace("%", "%%") + "<extra></extra>"))
        fig.add_annotation(x=part["x"].median(), y=part["y"].median(), text=html.escape(str(label)),
                           showarrow=False, font=dict(size=11, color="black"), bgcolor="rgba(255,255,255,0.75)")
    fig.update_layout(title="Clusters of papers by wording", height=620, xaxis=dict(visible=False),
                      yaxis=dict(visible=False), legend=dict(title="cluster"), margin=dict(l=10, r=10, t=50, b=10))
    return fig


# ---------------------------------------------------------------- co-occurrence and lineage

def plot_cooccurrence(matrix: pd.DataFrame, title: str = "Themes that appear together") -> go.Figure:
    """Heatmap of a square tag-by-tag count table (diagonal: papers with the tag)."""
    names = [html.escape(str(n)) for n in matrix.index]
    z = matrix.to_numpy()
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", text=z, texttemplate="%{text}",
                               hovertemplate="%{y} & %{x}: %{z} papers<extra></extra>"))
    fig.update_layout(title=title, height=640, yaxis=dict(autorange="reversed"), xaxis=dict(tickangle=-45),
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def plot_lineage(graph: nx.DiGraph, papers: pd.DataFrame, *, seed: int = 0,
                 title: str = "Method lineage: from the paper introducing a method to the papers naming it") -> go.Figure:
    """The method lineage graph as a network: an edge u -> v when paper v names the method u
    introduces (as `methods.lineage_graph` builds it). Node size grows with how many papers name
    its method; isolated papers are left out.
    """
    g = graph.subgraph([n for n in graph.nodes if graph.degree(n) > 0]).copy()
    titles = dict(zip(papers["paper_id"], papers["title"]))
    acronyms = dict(zip(papers["paper_id"], papers["acronym"])) if "acronym" in papers else {}
    fig = go.Figure()
    if g.number_of_nodes() == 0:
        fig.update_layout(title=f"{title} (no links found)")
        return fig
    pos = nx.spring_layout(g, seed=seed, k=1.5 / np.sqrt(g.number_of_nodes()))
    ex, ey, ax, ay = [], [], [], []
    for u, v in g.edges():
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ex += [x0, x1, None]
        ey += [y0, y1, None]
        ax.append(x0 + 0.8 * (x1 - x0))
        ay.append(y0 + 0.8 * (y1 - y0))
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(width=0.8, color="#999"),
                             hoverinfo="skip", showlegend=False))
    # a small arrowhead near each target shows the direction "names"
    fig.add_trace(go.Scatter(x=ax, y=ay, mode="markers", hoverinfo="skip", showlegend=False,
                             marker=dict(symbol="arrow", angleref="previous", size=7, color="#777")))
    nodes = list(g.nodes)
    named_by = np.array([g.out_degree(n) for n in nodes])
    hover = []
    for n in nodes:
        name = titles.get(n) or g.nodes[n].get("title") or str(n)
        acr = acronyms.get(n) or g.nodes[n].get("acronym") or ""
        hover.append(f"<b>{_wrapped(str(name), 70)}</b>" + (f"<br>method: {html.escape(str(acr))}" if acr else "")
                     + f"<br>its method is named by {g.out_degree(n)} papers; it names {g.in_degree(n)}")
    labels = [html.escape(str(acronyms.get(n) or g.nodes[n].get("acronym") or "")) if g.out_degree(n) > 0 else ""
              for n in nodes]
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text", text=labels,
        textposition="top center", textfont=dict(size=9), hovertext=hover, hoverinfo="text",
        customdata=nodes, showlegend=False,
        marker=dict(size=8 + 4 * np.sqrt(named_by), color=named_by, colorscale="Viridis", showscale=True,
                    colorbar=dict(title="named by"), line=dict(width=0.5, color="white"))))
    fig.update_layout(title=title, height=640, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      hoverlabel=dict(align="left"), margin=dict(l=10, r=10, t=50, b=10))
    return fig


# ---------------------------------------------------------------- reading tables

def terms_table(terms: pd.DataFrame) -> pd.DataFrame:
    """tag, terms: the `top_terms_by_tag` output with each tag's words on one line."""
    return (terms.groupby("tag", sort=False)["term"].agg(lambda s: ", ".join(s)).rename("terms").reset_index())


def code_links_table(papers: pd.DataFrame) -> pd.DataFrame:
    """title, url, host: one row per code link found in the abstracts."""
    rows = [{"title": t, "url": u, "host": re.sub(r"^https?://(www\.)?", "", u).split("/")[0]}
            for t, urls in zip(papers["title"], papers["code_urls"]) for u in as_list(urls)]
    return pd.DataFrame(rows, columns=["title", "url", "host"])


def claims_table(claims: pd.DataFrame, papers: pd.DataFrame) -> pd.DataFrame:
    """The numeric claims with the title of the paper that makes each."""
    return claims.merge(papers[["paper_id", "title"]], on="paper_id", how="left")


def describe_corpus(tagged: pd.DataFrame) -> pd.DataFrame:
    """A few counts that frame the corpus: papers, with a code link, per facet coverage."""
    rows = [("papers", len(tagged))]
    if "code_urls" in tagged:
        rows.append(("papers with a code link", sum(bool(as_list(v)) for v in tagged["code_urls"])))
    for facet in ("theme", "kind", "domain"):
        if facet in tagged:
            values = [as_list(v) for v in tagged[facet]]
            rows.append((f"papers without a {facet}", sum(not v for v in values)))
            rows.append((f"distinct {facet} tags used", len({t for v in values for t in v})))
    return pd.DataFrame(rows, columns=["what", "count"])


def cluster_summary(clusters: pd.DataFrame) -> pd.DataFrame:
    """cluster, cluster_label, papers: the size of each cluster, largest first."""
    return (clusters.groupby(["cluster", "cluster_label"]).size().rename("papers").reset_index()
            .sort_values(["papers", "cluster"], ascending=[False, True], ignore_index=True))
