"""Figures of the continual-learning notebooks: task curves, the lambda slider, the Fisher image, the paper gap."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paperlib.experiments.continual.scenarios import METHOD_LABELS, SCENARIO_LABELS

COLORS = {"None": "#1f77b4", "SGD": "#1f77b4", "L2": "#2ca02c", "EWC": "#d62728"}
TASK_NAMES = "ABCDEFGHIJ"


def _task_label(t: int) -> str:
    return f"task {TASK_NAMES[t]}" if t < len(TASK_NAMES) else f"task {t + 1}"


def plot_task_curves(curves: pd.DataFrame, *, methods: dict[str, float] | None = None, steps_per_task: int | None = None) -> go.Figure:
    """Kirkpatrick et al.'s figure 2A: test accuracy on each task (one row each) while tasks are trained in turn.

    `methods` maps a method to the strength to show (default: every method at its first strength).
    """
    tasks = sorted(curves["task"].unique())
    fig = make_subplots(rows=len(tasks), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"Accuracy on {_task_label(t)}" for t in tasks])
    if methods is None:
        methods = {m: curves[curves["method"] == m]["strength"].iloc[0] for m in curves["method"].unique()}
    for method, strength in methods.items():
        sub = curves[(curves["method"] == method) & (curves["strength"] == strength)]
        for row, t in enumerate(tasks, start=1):
            d = sub[sub["task"] == t].sort_values("step")
            fig.add_trace(go.Scatter(
                x=d["step"], y=d["accuracy"], mode="lines", name=html.escape(method), legendgroup=html.escape(method),
                showlegend=row == 1, line={"color": COLORS.get(method)},
                hovertemplate=f"{html.escape(method)}<br>step %{{x}}<br>accuracy %{{y:.1%}}<extra></extra>",
            ), row=row, col=1)
            fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=row, col=1)
    _shade_tasks(fig, curves, steps_per_task, len(tasks))
    fig.update_xaxes(title_text="training step", row=len(tasks), col=1)
    fig.update_layout(height=220 * len(tasks) + 80, title="Test accuracy on each task while tasks are trained in turn",
                      legend={"orientation": "h", "y": 1.06})
    return fig


def _shade_tasks(fig: go.Figure, curves: pd.DataFrame, steps_per_task: int | None, n_rows: int) -> None:
    if not steps_per_task:
        return
    for t in sorted(curves["training_task"].unique()):
        if t % 2 == 1:
            for row in range(1, n_rows + 1):
                fig.add_vrect(x0=t * steps_per_task, x1=(t + 1) * steps_per_task, fillcolor="grey", opacity=0.08,
                              line_width=0, row=row, col=1)


def plot_lambda_sweep(curves: pd.DataFrame, *, method: str = "EWC", baseline: str = "None", steps_per_task: int | None = None) -> go.Figure:
    """Curves of `method` at every swept strength, walked through with a slider (precomputed: works in static HTML).

    The `baseline` curves stay visible for comparison.
    """
    tasks = sorted(curves["task"].unique())
    strengths = sorted(curves[curves["method"] == method]["strength"].unique())
    fig = make_subplots(rows=len(tasks), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"Accuracy on {_task_label(t)}" for t in tasks])
    base = curves[curves["method"] == baseline]
    for row, t in enumerate(tasks, start=1):
        d = base[base["task"] == t].sort_values("step")
        fig.add_trace(go.Scatter(x=d["step"], y=d["accuracy"], mode="lines", name=html.escape(baseline),
                                 legendgroup=baseline, showlegend=row == 1, line={"color": COLORS.get(baseline), "dash": "dot"}),
                      row=row, col=1)
    n_fixed = len(fig.data)
    for i, s in enumerate(strengths):
        sub = curves[(curves["method"] == method) & (curves["strength"] == s)]
        for row, t in enumerate(tasks, start=1):
            d = sub[sub["task"] == t].sort_values("step")
            fig.add_trace(go.Scatter(x=d["step"], y=d["accuracy"], mode="lines", name=f"{html.escape(method)} λ={s:g}",
                                     legendgroup=method, showlegend=row == 1, visible=i == 0,
                                     line={"color": COLORS.get(method)}), row=row, col=1)
            fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=row, col=1)
    steps = []
    for i, s in enumerate(strengths):
        visible = [True] * n_fixed + [j // len(tasks) == i for j in range(len(strengths) * len(tasks))]
        steps.append({"method": "update", "label": f"{s:g}", "args": [{"visible": visible}]})
    fig.update_layout(
        sliders=[{"active": 0, "currentvalue": {"prefix": "λ = "}, "pad": {"t": 40}, "steps": steps}],
        height=220 * len(tasks) + 140, title=f"{method} at each penalty strength λ (drag the slider)",
        legend={"orientation": "h", "y": 1.06},
    )
    _shade_tasks(fig, curves, steps_per_task, len(tasks))
    fig.update_xaxes(title_text="training step", row=len(tasks), col=1)
    return fig


def plot_fisher_image(image: np.ndarray, *, title: str = "Fisher information of the first layer, per input pixel") -> go.Figure:
    """Heat map of per-pixel importance (the first layer's Fisher summed over units)."""
    fig = go.Figure(go.Heatmap(z=image[::-1], colorscale="Viridis", colorbar={"title": "Fisher"},
                               hovertemplate="row %{y}, column %{x}<br>Fisher %{z:.3g}<extra></extra>"))
    fig.update_layout(title=title, width=480, height=460, xaxis={"visible": False, "scaleanchor": "y"}, yaxis={"visible": False})
    return fig


def plot_reference_gap(comparison: pd.DataFrame) -> go.Figure:
    """Ours minus the paper, in points, per method (bars) and scenario (panels); error bars: our seed std."""
    scenarios = [s for s in ("task", "domain", "class") if s in set(comparison["scenario"])]
    protocols = list(dict.fromkeys(comparison["protocol"]))
    fig = make_subplots(rows=len(protocols), cols=len(scenarios), shared_yaxes=True,
                        subplot_titles=[f"{p} MNIST, {SCENARIO_LABELS[s]}" for p in protocols for s in scenarios])
    for r, p in enumerate(protocols, start=1):
        for c, s in enumerate(scenarios, start=1):
            d = comparison[(comparison["protocol"] == p) & (comparison["scenario"] == s) & comparison["gap"].notna()]
            labels = [html.escape(METHOD_LABELS.get(m, m)) for m in d["method"]]
            fig.add_trace(go.Bar(
                x=labels, y=d["gap"], error_y={"type": "data", "array": d["std"].fillna(0).tolist()},
                marker_color=["#2ca02c" if abs(g) <= 3 else "#d62728" for g in d["gap"]], showlegend=False,
                customdata=np.stack([d["mean"], d["paper_mean"]], axis=1) if len(d) else None,
                hovertemplate="%{x}<br>ours %{customdata[0]:.2f}, paper %{customdata[1]:.2f}<br>gap %{y:+.2f}<extra></extra>",
            ), row=r, col=c)
            fig.add_hrect(y0=-3, y1=3, fillcolor="grey", opacity=0.12, line_width=0, row=r, col=c)
    fig.update_yaxes(title_text="ours − paper (points)", col=1)
    fig.update_layout(height=330 * len(protocols) + 60, title="Gap to the published accuracies (grey band: ±3 points)")
    return fig


def plot_scenario_bars(summary: pd.DataFrame, reference: pd.DataFrame | None = None, *, protocol: str = "split") -> go.Figure:
    """Average accuracy per method in each scenario, ours (bars with seed std) and the paper's (markers)."""
    s = summary[summary["protocol"] == protocol]
    scenarios = [x for x in ("task", "domain", "class") if x in set(s["scenario"])]
    fig = make_subplots(rows=1, cols=len(scenarios), shared_yaxes=True, subplot_titles=[SCENARIO_LABELS[x] for x in scenarios])
    for c, sc in enumerate(scenarios, start=1):
        d = s[s["scenario"] == sc]
        labels = [html.escape(METHOD_LABELS.get(m, m)) for m in d["method"]]
        fig.add_trace(go.Bar(x=labels, y=d["mean"], error_y={"type": "data", "array": d["std"].fillna(0).tolist()},
                             name="ours", marker_color="#1f77b4", showlegend=c == 1), row=1, col=c)
        if reference is not None:
            r = reference[(reference["protocol"] == protocol) & (reference["scenario"] == sc)].set_index("method")["mean"]
            fig.add_trace(go.Scatter(x=labels, y=[r.get(m, np.nan) for m in d["method"]], mode="markers", name="paper",
                                     marker={"symbol": "diamond", "size": 10, "color": "#ff7f0e"}, showlegend=c == 1), row=1, col=c)
    fig.update_yaxes(title_text="average accuracy (%)", range=[0, 101], col=1)
    fig.update_layout(height=420, title=f"{protocol} MNIST: average accuracy after the last task")
    return fig
