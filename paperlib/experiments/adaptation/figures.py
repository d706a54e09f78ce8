"""Figures of the low-rank adaptation notebook: the learning-forgetting trade-off, the rank sweep,
the rank and spectrum of the weight updates, and what each configuration costs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paperlib.experiments.adaptation.experiment import (
    ERANK,
    FORGETTING,
    FULL,
    LORA,
    NEW_LOSS,
    PRETRAINED,
    PRETRAINING,
    config_order,
    final_rows,
    label,
    selected_lrs,
)
from paperlib.experiments.adaptation.lora import gaussian_effective_rank
from paperlib.experiments.findings import summarize

_FULL_COLOUR = "#222222"
_PRE_COLOUR = "#7f7f7f"
_MATRIX_COLOURS = {"attention in (qkv)": "#1f77b4", "attention out": "#ff7f0e", "MLP in": "#2ca02c", "MLP out": "#d62728"}


def _rank_colours(ranks) -> dict[int, str]:
    """Light to dark blue-green by rank."""
    ranks = sorted(int(r) for r in ranks)
    palette = ["#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#253494", "#081d58"]
    if len(ranks) <= len(palette):
        pick = np.linspace(0, len(palette) - 1, len(ranks)).round().astype(int) if len(ranks) > 1 else [len(palette) - 1]
    else:
        pick = [min(i, len(palette) - 1) for i in range(len(ranks))]
    return {r: palette[i] for r, i in zip(ranks, pick)}


def _colour(conf: str, colours: dict[int, str]) -> str:
    if conf == FULL:
        return _FULL_COLOUR
    if conf == PRETRAINED:
        return _PRE_COLOUR
    return colours[int(conf.split("=")[1])]


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(config=[label(m, r) for m, r in zip(df["method"], df["rank"])])


def plot_tradeoff(adaptation: pd.DataFrame) -> go.Figure:
    """Forgetting (increase of the old-domain loss) against the new-domain loss along fine-tuning,
    one line per configuration at its selected rate (mean over seeds, one marker per evaluation,
    the last one larger); the other rates' end points as faint open markers."""
    df = _labelled(adaptation[adaptation["method"].isin([FULL, LORA])])
    pick = selected_lrs(adaptation)
    colours = _rank_colours(df.loc[df["method"] == LORA, "rank"].dropna().unique())
    fig = go.Figure()
    for conf in config_order(df):
        lr = float(pick.loc[pick["config"] == conf, "lr"].iloc[0])
        part = df[(df["config"] == conf) & np.isclose(df["lr"], lr)]
        wide = part[part["metric"].isin([NEW_LOSS, FORGETTING])].pivot_table(index="step", columns="metric",
                                                                             values="value", aggfunc="mean")
        sizes = [6] * (len(wide) - 1) + [13]
        fig.add_trace(go.Scatter(x=wide[NEW_LOSS], y=wide[FORGETTING], mode="lines+markers", name=f"{conf} (lr {lr:g})",
                                 line=dict(color=_colour(conf, colours), width=3 if conf == FULL else 2),
                                 marker=dict(size=sizes), legendgroup=conf,
                                 customdata=wide.index.values,
                                 hovertemplate="step %{customdata}<br>new-domain loss %{x:.3f}<br>forgetting %{y:.3f}"
                                               "<extra>" + conf + "</extra>"))
    fin = final_rows(adaptation, at_selected=False)
    fin = fin[fin["method"].isin([FULL, LORA])]
    ends = fin[fin["metric"].isin([NEW_LOSS, FORGETTING])].pivot_table(index=["config", "lr"], columns="metric",
                                                                         values="value", aggfunc="mean").reset_index()
    for conf in config_order(fin):
        lr = float(pick.loc[pick["config"] == conf, "lr"].iloc[0])
        e = ends[(ends["config"] == conf) & ~np.isclose(ends["lr"], lr)]
        if e.empty:
            continue
        fig.add_trace(go.Scatter(x=e[NEW_LOSS], y=e[FORGETTING], mode="markers", showlegend=False, legendgroup=conf,
                                 marker=dict(symbol="circle-open", size=10, color=_colour(conf, colours)), opacity=0.6,
                                 customdata=e["lr"],
                                 hovertemplate="lr %{customdata:g}<br>new-domain loss %{x:.3f}<br>forgetting %{y:.3f}"
                                               "<extra>" + conf + " (other rate)</extra>"))
    fig.add_hline(y=0, line_dash="dot", line_color=_PRE_COLOUR)
    fig.update_xaxes(title="new-domain (Python) test loss, nats per character — learning goes left", autorange="reversed")
    fig.update_yaxes(title="forgetting: old-domain loss minus the base model's")
    fig.update_layout(title="Learning against forgetting during adaptation", legend=dict(orientation="v"))
    return fig


def plot_rank_sweep(adaptation: pd.DataFrame) -> go.Figure:
    """New-domain loss and forgetting at the end of fine-tuning (mean ± std over seeds, each
    configuration at its selected rate) against the LoRA rank; full fine-tuning and the base model
    as dotted lines with their seed spread."""
    fin = final_rows(adaptation)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("new-domain test loss (lower: learned more)",
                                                        "forgetting (higher: forgot more)"))
    for col, metric in ((1, NEW_LOSS), (2, FORGETTING)):
        lora = fin[(fin["method"] == LORA) & (fin["metric"] == metric)]
        s = summarize(lora, ["rank"]).sort_values("rank")
        fig.add_trace(go.Scatter(x=s["rank"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers",
                                 name="LoRA", showlegend=col == 1, line=dict(color="#1d91c0"),
                                 hovertemplate="rank %{x}<br>%{y:.3f}<extra>LoRA</extra>"), row=1, col=col)
        for conf, colour in ((FULL, _FULL_COLOUR), (PRETRAINED, _PRE_COLOUR)):
            v = fin[(fin["config"] == conf) & (fin["metric"] == metric)]["value"]
            if not len(v) or (conf == PRETRAINED and metric == FORGETTING):
                continue
            m, sd = float(v.mean()), float(v.std()) if len(v) > 1 else 0.0
            fig.add_hline(y=m, line_dash="dot", line_color=colour, annotation_text=f"{conf}: {m:.3f}",
                          annotation_position="top left", row=1, col=col)
            if sd > 0:
                fig.add_hrect(y0=m - sd, y1=m + sd, fillcolor=colour, opacity=0.12, line_width=0, row=1, col=col)
    ranks = sorted(int(r) for r in fin.loc[fin["method"] == LORA, "rank"].unique())
    fig.update_xaxes(type="log", tickvals=ranks, ticktext=[str(r) for r in ranks], title="LoRA rank (log scale)")
    fig.update_layout(title="What each rank learns and forgets (end of fine-tuning)", legend=dict(orientation="h", y=-0.2))
    return fig


def plot_update_rank(spectrum: pd.DataFrame, adaptation: pd.DataFrame, d_model: int) -> go.Figure:
    """Effective rank of the weight update over training, one line per kind of matrix (mean over
    layers and seeds, band: std over seeds of the mean over matrices): left, W - W_init during
    pre-training; right, Delta W = W - W0 during full fine-tuning at its selected rate. The dotted
    line is the effective rank of a Gaussian noise matrix of the same size."""
    pick = selected_lrs(adaptation)
    full_lr = float(pick.loc[pick["config"] == FULL, "lr"].iloc[0])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("pre-training: W − W_init", f"full fine-tuning: W − W0 (lr {full_lr:g})"))
    er = spectrum[spectrum["metric"] == ERANK]
    for col, part in ((1, er[er["method"] == PRETRAINING]), (2, er[(er["method"] == FULL) & np.isclose(er["lr"], full_lr)])):
        for matrix, colour in _MATRIX_COLOURS.items():
            m = part[part["matrix"] == matrix].groupby("step")["value"].mean()
            if m.empty:
                continue
            fig.add_trace(go.Scatter(x=m.index, y=m.values, mode="lines+markers", name=matrix, line=dict(color=colour),
                                     legendgroup=matrix, showlegend=col == 1,
                                     hovertemplate="step %{x}<br>effective rank %{y:.1f}<extra>" + matrix + "</extra>"),
                          row=1, col=col)
        per_seed = part.groupby(["seed", "step"])["value"].mean().reset_index()
        s = summarize(per_seed, ["step"]).sort_values("step")
        fig.add_trace(go.Scatter(x=s["step"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines",
                                 name="mean of all", line=dict(color="black", dash="dash"), legendgroup="mean",
                                 showlegend=col == 1, hovertemplate="step %{x}<br>mean %{y:.1f}<extra></extra>"),
                      row=1, col=col)
        noise = gaussian_effective_rank((d_model, d_model))
        fig.add_hline(y=noise, line_dash="dot", line_color=_PRE_COLOUR, annotation_text=f"Gaussian noise {d_model}×{d_model}",
                      annotation_position="bottom right", row=1, col=col)
    fig.update_xaxes(title="training step")
    fig.update_yaxes(title="effective rank (Roy & Vetterli)", rangemode="tozero", row=1, col=1)
    fig.update_layout(title="How the rank of the weight update changes during training", legend=dict(orientation="h", y=-0.2))
    return fig


def plot_spectrum(singular_values: pd.DataFrame, adaptation: pd.DataFrame) -> go.Figure:
    """Singular values of the final update divided by the largest, by index (log scale), one line
    per kind of matrix (singular values averaged over layers, then the ratio over seeds):
    pre-training's W - W_init and full fine-tuning's Delta W at its selected rate."""
    pick = selected_lrs(adaptation)
    full_lr = float(pick.loc[pick["config"] == FULL, "lr"].iloc[0])
    sv = singular_values.copy()
    top = sv.groupby(["method", "lr", "seed", "matrix"])["value"].transform("max")
    sv["share"] = sv["value"] / top.where(top > 0, 1.0)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("pre-training: W − W_init", f"full fine-tuning: W − W0 (lr {full_lr:g})"),
                        shared_yaxes=True)
    for col, part in ((1, sv[sv["method"] == PRETRAINING]), (2, sv[(sv["method"] == FULL) & np.isclose(sv["lr"], full_lr)])):
        for matrix, colour in _MATRIX_COLOURS.items():
            m = part[part["matrix"] == matrix].groupby("index")["share"].mean()
            if m.empty:
                continue
            fig.add_trace(go.Scatter(x=m.index, y=m.values, mode="lines", name=matrix, line=dict(color=colour),
                                     legendgroup=matrix, showlegend=col == 1,
                                     hovertemplate="singular value %{x}<br>%{y:.3f} of the largest<extra>" + matrix + "</extra>"),
                          row=1, col=col)
    fig.update_yaxes(type="log", title="singular value / largest", row=1, col=1)
    fig.update_xaxes(title="index (largest first)")
    fig.update_layout(title="Spectrum of the final weight update", legend=dict(orientation="h", y=-0.2))
    return fig


def plot_cost(cost: pd.DataFrame, adaptation: pd.DataFrame) -> go.Figure:
    """Trainable parameters (log scale) and milliseconds per training step (mean ± std over seeds,
    one torch thread) of every configuration at its selected rate."""
    pick = selected_lrs(adaptation)
    c = _labelled(cost[cost["method"].isin([FULL, LORA])]).merge(pick[["config", "lr"]], on=["config", "lr"])
    order = [k for k in config_order(c)]
    colours = _rank_colours(c.loc[c["method"] == LORA, "rank"].dropna().unique())
    fig = make_subplots(rows=1, cols=2, subplot_titles=("trainable parameters", "milliseconds per training step"))
    for col, metric in ((1, "trainable parameters"), (2, "ms per step")):
        s = summarize(c[c["metric"] == metric], ["config"]).set_index("config").reindex(order).reset_index()
        fig.add_trace(go.Bar(x=s["config"], y=s["mean"], error_y=dict(type="data", array=s["std"]) if col == 2 else None,
                             marker_color=[_colour(k, colours) for k in s["config"]], showlegend=False,
                             hovertemplate="%{x}<br>%{y:,.1f}<extra></extra>"), row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(title="What each configuration costs")
    return fig
