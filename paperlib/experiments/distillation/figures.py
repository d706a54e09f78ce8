"""Figures of the distillation notebook: KD grid, reliability diagram, weak-to-strong bars."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from paperlib.experiments.findings import summarize


def plot_kd_grid(df: pd.DataFrame) -> go.Figure:
    """Student test accuracy against temperature, one line per alpha (mean, error bar = std over seeds),
    with the label-only student and the teacher as horizontal reference lines."""
    fig = go.Figure()
    kd = summarize(df[df["model"] == "distilled"], ["alpha", "temperature"])
    for alpha, part in kd.groupby("alpha", sort=True):
        part = part.sort_values("temperature")
        fig.add_trace(go.Scatter(
            x=part["temperature"], y=part["mean"], error_y=dict(type="data", array=part["std"]),
            mode="lines+markers", name=f"distilled, alpha={alpha:g}",
            hovertemplate="T=%{x}<br>accuracy %{y:.4f}<extra>alpha=" + f"{alpha:g}" + "</extra>",
        ))
    for model, dash in (("labels only", "dash"), ("teacher", "dot")):
        vals = df.loc[df["model"] == model, "value"]
        if len(vals):
            fig.add_hline(y=float(vals.mean()), line_dash=dash,
                          annotation_text=f"{model}: {vals.mean():.4f} ± {vals.std() if len(vals) > 1 else 0:.4f}",
                          annotation_position="bottom right")
    fig.update_layout(title="Student accuracy against distillation temperature",
                      xaxis=dict(title="temperature T", type="log"), yaxis_title="test accuracy",
                      legend_title="student")
    return fig


def plot_metric_bars(df: pd.DataFrame, *, by: str = "method", metrics: tuple[str, ...] | None = None,
                     title: str = "") -> go.Figure:
    """One bar per method and metric (mean over seeds, error bar = std): metrics side by side as subplots."""
    from plotly.subplots import make_subplots

    metrics = metrics or tuple(df["metric"].unique())
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[html.escape(m) for m in metrics])
    for i, metric in enumerate(metrics, start=1):
        s = summarize(df[df["metric"] == metric], [by])
        fig.add_trace(go.Bar(x=s[by].map(html.escape), y=s["mean"], error_y=dict(type="data", array=s["std"]),
                             name=metric, showlegend=False,
                             hovertemplate="%{x}: %{y:.4f}<extra>" + html.escape(metric) + "</extra>"),
                      row=1, col=i)
    fig.update_layout(title=title)
    return fig


def plot_reliability(tables: dict[str, pd.DataFrame]) -> go.Figure:
    """Reliability diagram: accuracy against mean confidence per bin for each method, with the diagonal."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="grey"),
                             name="perfect calibration", hoverinfo="skip"))
    for name, table in tables.items():
        t = table[table["count"] > 0]
        fig.add_trace(go.Scatter(
            x=t["confidence"], y=t["accuracy"], mode="lines+markers", name=html.escape(name),
            marker=dict(size=[4 + 20 * (c / t["count"].max()) ** 0.5 for c in t["count"]]),
            customdata=t["count"],
            hovertemplate="confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} examples<extra></extra>",
        ))
    fig.update_layout(title="Reliability diagram (test set; marker size ~ examples in the bin)",
                      xaxis=dict(title="mean confidence in bin", range=[0, 1.02]),
                      yaxis=dict(title="accuracy in bin", range=[0, 1.02]))
    return fig


def plot_weak_to_strong(df: pd.DataFrame, pgr: pd.DataFrame) -> go.Figure:
    """Test accuracy of weak supervisor, strong students and strong ceiling; PGR in the hover and labels."""
    order = ["weak", "student", "student + confidence loss", "ceiling"]
    s = summarize(df[df["model"].isin(order)], ["model"]).set_index("model").reindex(order).dropna().reset_index()
    p = summarize(pgr, ["model"]).set_index("model") if len(pgr) else pd.DataFrame()
    text = [f"PGR {p.loc[m, 'mean']:.2f} ± {p.loc[m, 'std']:.2f}" if m in p.index else "" for m in s["model"]]
    fig = go.Figure(go.Bar(
        x=s["model"], y=s["mean"], error_y=dict(type="data", array=s["std"]), text=text, textposition="outside",
        marker_color=["#bbbbbb", "#6fa8dc", "#3d85c6", "#444444"][: len(s)],
        hovertemplate="%{x}: %{y:.4f}<extra></extra>",
    ))
    lo = float((s["mean"] - s["std"]).min())
    fig.update_layout(title="Weak-to-strong: test accuracy (bars) and performance gap recovered (labels)",
                      yaxis=dict(title="test accuracy", range=[max(0.0, lo - 0.05), 1.0]))
    return fig
