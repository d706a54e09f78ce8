"""Figures of the rehearsal-schedule notebook: revisit probabilities, accuracy over the stream, final accuracy."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from paperlib.experiments.continual.rehearsal import revisit_weights
from paperlib.experiments.findings import summarize


def plot_revisit_weights(*, tau: float, exponent: float, max_time: float = 5.0) -> go.Figure:
    """Weight of revisiting a task against the time since it was last seen, for each schedule."""
    t = np.linspace(0, max_time, 101)
    fig = go.Figure()
    for schedule in ("uniform", "exponential", "power-law"):
        w = revisit_weights(t, schedule, tau=tau, exponent=exponent).numpy()
        fig.add_trace(go.Scatter(x=t, y=w, mode="lines", name=schedule,
                                 hovertemplate="%{x:.2f} tasks ago: weight %{y:.3f}<extra>" + schedule + "</extra>"))
    fig.update_layout(title=f"Revisit weight against time since last seen (exponential tau={tau:g}, power-law exponent={exponent:g})",
                      xaxis_title="time since the task was last seen (tasks)", yaxis=dict(title="relative weight", type="log"))
    return fig


def plot_stream_accuracy(curves: pd.DataFrame) -> go.Figure:
    """Mean test accuracy over the tasks seen so far against time in the stream, one line per method
    (mean over seeds, band = std); the dropdown switches to a single task's accuracy."""
    c = curves.copy()
    c["seen"] = c["task"] <= np.floor(c["time"] - 1e-9)
    fig = go.Figure()
    methods = list(dict.fromkeys(c["method"]))
    tasks = sorted(c["task"].unique())
    views = [("tasks seen so far", c[c["seen"]].groupby(["method", "seed", "time"])["accuracy"].mean().reset_index())]
    views += [(f"task {k + 1}", c[c["task"] == k][["method", "seed", "time", "accuracy"]]) for k in tasks]
    for v, (label, data) in enumerate(views):
        for m in methods:
            s = summarize(data[data["method"] == m], ["time"], value="accuracy").sort_values("time")
            fig.add_trace(go.Scatter(x=s["time"], y=s["mean"], error_y=dict(type="data", array=s["std"], thickness=0.8),
                                     mode="lines", name=m, visible=v == 0, legendgroup=m,
                                     hovertemplate="t=%{x:.2f}: %{y:.3f}<extra>" + m + "</extra>"))
    n = len(methods)
    buttons = [dict(label=label, method="update",
                    args=[{"visible": [i // n == v for i in range(n * len(views))]}, {"yaxis.title.text": f"test accuracy ({label})"}])
               for v, (label, _) in enumerate(views)]
    boundaries = sorted(c["time"].apply(np.ceil).unique())[:-1]
    for b in boundaries:
        fig.add_vline(x=float(b), line_dash="dot", line_color="lightgrey")
    fig.update_layout(title="Accuracy along the task stream (dotted lines: a new task starts)",
                      xaxis_title="time (tasks)", yaxis=dict(title="test accuracy (tasks seen so far)", range=[0, 1.02]),
                      updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.15, yanchor="top")])
    return fig


def plot_final_accuracy(final: pd.DataFrame) -> go.Figure:
    """Accuracy on each task after the whole stream, grouped by method (mean ± std over seeds)."""
    last = final[final["after_task"] == final["after_task"].max()]
    fig = go.Figure()
    for m in dict.fromkeys(last["method"]):
        s = summarize(last[last["method"] == m], ["task"], value="accuracy").sort_values("task")
        fig.add_trace(go.Bar(x=[f"task {k + 1}" for k in s["task"]], y=s["mean"], error_y=dict(type="data", array=s["std"]),
                             name=m, hovertemplate="%{x}: %{y:.3f}<extra>" + m + "</extra>"))
    fig.update_layout(title="Accuracy on every task at the end of the stream", barmode="group",
                      yaxis=dict(title="test accuracy", range=[0, 1.02]))
    return fig


def plot_revisits(revisits: pd.DataFrame, *, seed: int | None = None) -> go.Figure:
    """Which old task each schedule rehearsed, and when (one seed): share of rehearsal steps per task in
    windows of a tenth of a task."""
    if seed is None and len(revisits):
        seed = int(revisits["seed"].min())
    r = revisits[revisits["seed"] == seed].copy()
    r["window"] = (r["time"] * 10).astype(int) / 10
    fig = go.Figure()
    methods = list(dict.fromkeys(r["method"]))
    for i, m in enumerate(methods):
        counts = r[r["method"] == m].groupby(["window", "task"]).size().unstack(fill_value=0)
        share = counts.div(counts.sum(axis=1), axis=0)
        for k in share.columns:
            fig.add_trace(go.Bar(x=share.index, y=share[k], name=f"task {k + 1}", legendgroup=f"task {k + 1}",
                                 showlegend=i == 0, visible=i == 0, marker_color=f"hsl({(k * 67) % 360},55%,55%)",
                                 hovertemplate="t=%{x:.1f}: %{y:.0%}<extra>task " + str(k + 1) + "</extra>"))
    sizes = [r[r["method"] == m]["task"].nunique() for m in methods]
    buttons = []
    for i, m in enumerate(methods):
        vis = [j == i for j, s in enumerate(sizes) for _ in range(s)]
        buttons.append(dict(label=m, method="update", args=[{"visible": vis}]))
    fig.update_layout(title=f"Which old task was rehearsed, over time (seed {seed})", barmode="stack", bargap=0,
                      xaxis_title="time (tasks)", yaxis=dict(title="share of rehearsal steps", range=[0, 1]),
                      updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.15, yanchor="top")])
    return fig
