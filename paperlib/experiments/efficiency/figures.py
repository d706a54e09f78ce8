"""Figures of the pruning and quantisation notebook: accuracy against the share of weights kept,
against the bit width, and against the share of the fine-tuning delta kept."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paperlib.experiments.efficiency.experiment import (
    DARE,
    DENSE,
    DROP,
    FINETUNED,
    FLOAT32,
    MAGNITUDE,
    ONE_SHOT,
    PER_CHANNEL,
    PER_TENSOR,
    PRE,
    REINIT,
    TICKET,
)
from paperlib.experiments.findings import summarize

_COLOURS = {TICKET: "#1f77b4", REINIT: "#d62728", ONE_SHOT: "#2ca02c", DARE: "#1f77b4", DROP: "#d62728",
            MAGNITUDE: "#2ca02c", PER_TENSOR: "#ff7f0e", PER_CHANNEL: "#1f77b4", FLOAT32: "#7f7f7f"}


def _band(fig: go.Figure, mean: float, std: float, label: str, colour: str = "grey", **where) -> None:
    fig.add_hline(y=mean, line_dash="dot", line_color=colour, annotation_text=label,
                  annotation_position="bottom left", **where)
    if std > 0:
        fig.add_hrect(y0=mean - std, y1=mean + std, fillcolor=colour, opacity=0.12, line_width=0, **where)


def plot_pruning(df: pd.DataFrame) -> go.Figure:
    """Test accuracy (mean ± std over seeds) against the share of weights kept (log axis, dense on
    the left) for rewound tickets, random re-initialisations and one-shot pruning; the dense
    network's accuracy as a dotted line with its seed spread."""
    acc = df[df["metric"] == "test accuracy"]
    fig = go.Figure()
    for method in (TICKET, REINIT, ONE_SHOT):
        part = acc[acc["method"] == method]
        if part.empty:
            continue
        s = summarize(part, ["round"]).merge(part.groupby("round")["keep_fraction"].mean().reset_index(), on="round")
        s = s.sort_values("round")
        fig.add_trace(go.Scatter(x=s["keep_fraction"] * 100, y=s["mean"], error_y=dict(type="data", array=s["std"]),
                                 mode="lines+markers", name=method, line=dict(color=_COLOURS[method]),
                                 hovertemplate="%{x:.1f}% of weights<br>accuracy %{y:.3f}<extra>" + method + "</extra>"))
    dense = acc[acc["method"] == DENSE]["value"]
    if len(dense):
        _band(fig, float(dense.mean()), float(dense.std()) if len(dense) > 1 else 0.0, f"dense: {dense.mean():.3f}")
    fig.update_xaxes(type="log", autorange="reversed", title="share of weights kept (%, log scale)")
    fig.update_layout(title="Pruning: accuracy against the share of weights kept", yaxis_title="test accuracy",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def plot_quantisation(df: pd.DataFrame) -> go.Figure:
    """Test accuracy (mean ± std over seeds) and model size per bit width, one scale per tensor or
    per output channel, with float32 as the reference."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=("test accuracy", "model size (KiB)"))
    order = [str(b) for b in sorted(df.loc[df["method"] != FLOAT32, "bits"].unique(), reverse=True)]
    for method in (PER_TENSOR, PER_CHANNEL):
        part = df[df["method"] == method]
        for col, metric in ((1, "test accuracy"), (2, "size (KiB)")):
            s = summarize(part[part["metric"] == metric], ["bits"]).sort_values("bits", ascending=False)
            fig.add_trace(go.Bar(x=s["bits"].astype(int).astype(str), y=s["mean"], error_y=dict(type="data", array=s["std"]),
                                 name=method, marker_color=_COLOURS[method], showlegend=col == 1, legendgroup=method,
                                 hovertemplate="%{x} bits: %{y:.3f}<extra>" + method + "</extra>"), row=1, col=col)
    fp = df[df["method"] == FLOAT32]
    for col, metric in ((1, "test accuracy"), (2, "size (KiB)")):
        v = fp[fp["metric"] == metric]["value"]
        if len(v):
            _band(fig, float(v.mean()), float(v.std()) if len(v) > 1 else 0.0, f"float32: {v.mean():.3f}" if col == 1
                  else f"float32: {v.mean():.0f} KiB", row=1, col=col)
    fig.update_xaxes(title="bits per weight", categoryorder="array", categoryarray=order)
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_layout(title="Post-training weight quantisation (symmetric, uniform)", barmode="group",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def plot_delta(df: pd.DataFrame) -> go.Figure:
    """Test accuracy of pre-trained + edited delta against the share of delta entries kept (log
    axis), one panel per fine-tuning rate: DARE, random drop without rescaling and magnitude; the
    fine-tuned and pre-trained models as dotted lines."""
    acc = df[df["metric"] == "test accuracy"]
    rates = sorted(acc["finetune_lr"].unique())
    fig = make_subplots(rows=1, cols=len(rates), shared_yaxes=True,
                        subplot_titles=[f"fine-tuning lr {r:g}" for r in rates])
    for col, rate in enumerate(rates, start=1):
        part = acc[acc["finetune_lr"] == rate]
        for method in (DARE, DROP, MAGNITUDE):
            s = summarize(part[part["method"] == method], ["keep_fraction"]).sort_values("keep_fraction")
            fig.add_trace(go.Scatter(x=s["keep_fraction"] * 100, y=s["mean"], error_y=dict(type="data", array=s["std"]),
                                     mode="lines+markers", name=method, legendgroup=method, showlegend=col == 1,
                                     line=dict(color=_COLOURS[method]),
                                     hovertemplate="%{x:g}% of the delta<br>accuracy %{y:.3f}<extra>" + method + "</extra>"),
                          row=1, col=col)
        for method, colour in ((FINETUNED, "black"), (PRE, "grey")):
            v = part[part["method"] == method]["value"]
            if len(v):
                _band(fig, float(v.mean()), float(v.std()) if len(v) > 1 else 0.0, f"{method}: {v.mean():.3f}", colour,
                      row=1, col=col)
    fig.update_xaxes(type="log", autorange="reversed", title="share of the delta kept (%, log scale)")
    fig.update_yaxes(range=[0, 1.02], title="test accuracy", row=1, col=1)
    fig.update_layout(title="Pruning only the fine-tuning delta", legend=dict(orientation="h", y=-0.25))
    return fig
