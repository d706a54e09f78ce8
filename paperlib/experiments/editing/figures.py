"""Figures of the editing and unlearning notebook: scaling sweeps of task vectors and the unlearning comparison."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paperlib.experiments.findings import summarize


def _sweep(fig: go.Figure, part: pd.DataFrame, name: str, dash: str | None = None) -> None:
    s = summarize(part, ["scale"]).sort_values("scale")
    fig.add_trace(go.Scatter(x=s["scale"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers",
                             name=name, line=dict(dash=dash), hovertemplate="scale %{x}<br>%{y:.3f}<extra>" + name + "</extra>"))


def plot_negation(df: pd.DataFrame, chosen: pd.DataFrame | None = None) -> go.Figure:
    """Target- and control-class test accuracy of theta_pre - scale * tau against the scale; chosen scales marked."""
    neg = df[(df["experiment"] == "negation") & (df["split"] == "test")]
    fig = go.Figure()
    for metric, dash in (("target accuracy", None), ("control accuracy", "dash")):
        _sweep(fig, neg[neg["metric"] == metric], metric, dash)
    if chosen is not None and len(chosen):
        for s in sorted(chosen["scale"][chosen["metric"] == "target accuracy"].unique()):
            fig.add_vline(x=float(s), line_dash="dot", line_color="grey", annotation_text=f"chosen {s:g}")
    fig.update_layout(title="Task negation: forgetting one class by subtracting its task vector",
                      xaxis_title="negation scale (theta_pre - scale * tau)", yaxis=dict(title="test accuracy", range=[0, 1.02]))
    return fig


def plot_addition(df: pd.DataFrame) -> go.Figure:
    """Test accuracy on each task of theta_pre + scale * sum(tau) against the scale, with each fine-tuned model as a reference."""
    add = df[(df["experiment"] == "addition") & (df["split"] == "test")]
    fig = go.Figure()
    for metric in add.loc[add["method"] == "task addition", "metric"].unique():
        label = metric.replace(" accuracy", "") + (" (pretraining task: control)" if metric.startswith("permuted-1 ") else " (added)")
        _sweep(fig, add[(add["method"] == "task addition") & (add["metric"] == metric)], label,
               "dash" if metric.startswith("permuted-1 ") else None)
    ft = add[add["method"] == "fine-tuned on its task"]
    if len(ft):
        fig.add_hline(y=float(ft["value"].mean()), line_dash="dot",
                      annotation_text=f"fine-tuned on its own task: {ft['value'].mean():.3f}", annotation_position="bottom right")
    fig.update_layout(title="Task addition: one model from the sum of the task vectors",
                      xaxis_title="scale (theta_pre + scale * sum tau)", yaxis=dict(title="test accuracy", range=[0, 1.02]))
    return fig


def plot_unlearning(df: pd.DataFrame) -> go.Figure:
    """Forget-class and retain test accuracy per method (mean ± std over seeds), and the time each took (log scale)."""
    un = df[df["experiment"] == "unlearning"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], subplot_titles=("test accuracy", "seconds (log scale)"))
    for metric in ("forget accuracy", "retain accuracy"):
        s = summarize(un[un["metric"] == metric], ["method"])
        fig.add_trace(go.Bar(x=s["method"], y=s["mean"], error_y=dict(type="data", array=s["std"]), name=metric,
                             hovertemplate="%{x}: %{y:.3f}<extra>" + metric + "</extra>"), row=1, col=1)
    s = summarize(un[un["metric"] == "seconds"], ["method"])
    fig.add_trace(go.Bar(x=s["method"], y=s["mean"], error_y=dict(type="data", array=s["std"]), name="seconds",
                         marker_color="#999999", hovertemplate="%{x}: %{y:.2f} s<extra></extra>"), row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(title="Unlearning one class: SSD against retraining without it", barmode="group")
    return fig
