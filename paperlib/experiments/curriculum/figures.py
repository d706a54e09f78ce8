"""Figures of the curriculum notebook: pacing functions, easy and hard examples, accuracy by ordering."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from paperlib.experiments.curriculum.experiment import (
    PACING_FAMILIES,
    WU_FAMILIES,
    Pacing,
    pacing_curves,
)

ORDERING_COLORS = {
    "curriculum": "#1f77b4",
    "anti_curriculum": "#d62728",
    "random_curriculum": "#2ca02c",
    "standard": "#7f7f7f",
}
_DASH = {family: ("solid" if family in WU_FAMILIES else "dash") for family in PACING_FAMILIES}


def _pacings(a: float, b: float, increase: float, step_fraction: float, families: Sequence[str]) -> list[Pacing]:
    return [Pacing(f, a=a, b=b, increase=increase, step_fraction=step_fraction) for f in families]


def plot_pacing_curves(curves: pd.DataFrame, *, highlight: str | None = None, title: str = "Pacing functions g(step)") -> go.Figure:
    """One line per pacing family from `pacing_curves()`: the share of the ordered data available at each step."""
    fig = go.Figure()
    for family, part in curves.groupby("family", sort=False):
        dim = highlight is not None and family != highlight
        fig.add_trace(go.Scatter(
            x=part["step"].tolist(), y=part["fraction"].tolist(), mode="lines", name=family,
            line={"dash": _DASH.get(family, "solid"), "width": 1.5 if dim else 3},
            opacity=0.35 if dim else 1.0,
        ))
    fig.update_layout(title=title, xaxis_title="training step", yaxis_title="fraction of the data available",
                      yaxis_range=[0, 1.05], legend_title="family", height=450)
    return fig


def plot_pacing_slider(
    *,
    n: int,
    total_steps: int,
    a_values: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0),
    b_values: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
    increase: float = 1.9,
    step_fraction: float = 0.1,
    families: Sequence[str] = PACING_FAMILIES,
    points: int = 101,
    start: tuple[float, float] | None = None,
) -> go.Figure:
    """All pacing families with a plotly slider over precomputed (a, b) pairs: works in the static HTML page.

    The slider starts at the pair `start` when it is on the grid, else in the middle.
    """
    combos = [(a, b) for a in a_values for b in b_values]
    tables = {c: pacing_curves(_pacings(c[0], c[1], increase, step_fraction, families), n=n, total_steps=total_steps, points=points)
              for c in combos}
    start = combos.index(start) if start in combos else len(combos) // 2
    fig = plot_pacing_curves(tables[combos[start]])
    steps = []
    for a, b in combos:
        t = tables[(a, b)]
        ys = [t.loc[t["family"] == f, "fraction"].tolist() for f in families]
        steps.append({"method": "restyle", "label": f"a={a:g}, b={b:g}", "args": [{"y": ys}]})
    fig.update_layout(
        sliders=[{"active": start, "currentvalue": {"prefix": "pacing parameters: "}, "pad": {"t": 40}, "steps": steps}],
        title=f"Pacing functions for N={n} examples and T={total_steps} steps (dashed: Hacohen & Weinshall)",
        height=560,
    )
    return fig


def pacing_explorer(
    *, n: int, total_steps: int, a: float = 0.8, b: float = 0.2, increase: float = 1.9, step_fraction: float = 0.1
):
    """Sliders for a, b and the exponential-pacing parameters redraw a FigureWidget of every family (needs a kernel)."""
    import ipywidgets as w

    families = list(PACING_FAMILIES)
    fig = go.FigureWidget(plot_pacing_curves(pacing_curves(_pacings(a, b, increase, step_fraction, families), n=n, total_steps=total_steps)))
    sa = w.FloatSlider(value=a, min=0.05, max=1.0, step=0.05, description="a")
    sb = w.FloatSlider(value=b, min=0.0, max=1.0, step=0.05, description="b")
    si = w.FloatSlider(value=increase, min=1.0, max=4.0, step=0.1, description="increase")
    ss = w.FloatSlider(value=step_fraction, min=0.02, max=0.5, step=0.02, description="stage length")
    fam = w.Dropdown(options=["(all)", *families], value="(all)", description="family")

    def redraw(_=None) -> None:
        table = pacing_curves(_pacings(sa.value, sb.value, si.value, ss.value, families), n=n, total_steps=total_steps)
        chosen = None if fam.value == "(all)" else fam.value
        with fig.batch_update():
            for trace, family in zip(fig.data, families):
                trace.y = table.loc[table["family"] == family, "fraction"].to_numpy()
                dim = chosen is not None and family != chosen
                trace.opacity = 0.35 if dim else 1.0
                trace.line.width = 1.5 if dim else 3

    for control in (sa, sb, si, ss, fam):
        control.observe(redraw, names="value")
    return w.VBox([w.HBox([sa, sb, fam]), w.HBox([si, ss]), fig])


def plot_difficulty_examples(
    x, difficulty: np.ndarray, image_shape: tuple[int, int], *, k: int = 8, title: str = "Easiest (top) and hardest (bottom) training examples"
) -> go.Figure:
    """The k easiest and k hardest examples by difficulty score, as one grey-scale image grid."""
    xs = np.asarray(x.cpu() if hasattr(x, "cpu") else x)
    order = np.argsort(np.asarray(difficulty), kind="stable")
    h, w_ = image_shape
    rows = []
    for idx in (order[:k], order[::-1][:k]):
        tiles = [np.pad(xs[i].reshape(h, w_), 1, constant_values=1.0) for i in idx]
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    fig = go.Figure(go.Heatmap(z=grid.tolist(), colorscale="gray_r", showscale=False, hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_layout(title=title, height=260, plot_bgcolor="white", margin={"l": 10, "r": 10})
    return fig


def plot_final_accuracy(summary: pd.DataFrame, *, title: str = "Final test accuracy (mean ± std over seeds)") -> go.Figure:
    """Grouped bars: regime on x, one bar per ordering, error bars one seed standard deviation (from `final_accuracy()`)."""
    fig = go.Figure()
    for ordering, part in summary.groupby("ordering", sort=False):
        fig.add_trace(go.Bar(
            x=part["regime"].tolist(), y=part["mean"].tolist(), name=ordering.replace("_", " "),
            marker_color=ORDERING_COLORS.get(ordering), error_y={"type": "data", "array": part["std"].tolist()},
            customdata=np.stack([part["std"], part["n"]], axis=1).tolist(),
            hovertemplate="%{x}<br>%{y:.3f} ± %{customdata[0]:.3f} (n=%{customdata[1]})<extra>" + ordering + "</extra>",
        ))
    lo = max(0.0, float((summary["mean"] - summary["std"]).min()) - 0.05)
    fig.update_layout(barmode="group", title=title, yaxis_title="test accuracy", yaxis_range=[lo, 1.0], legend_title="ordering",
                      height=450)
    return fig


def accuracy_curve_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and seed standard deviation of test accuracy per regime, ordering and step."""
    g = curves.groupby(["regime", "ordering", "step"], sort=False)["test_accuracy"]
    return g.agg(mean="mean", std=lambda s: float(s.std(ddof=1)) if len(s) > 1 else 0.0).reset_index()


def plot_accuracy_curves(curves: pd.DataFrame, *, title: str = "Test accuracy during training") -> go.Figure:
    """Mean test accuracy over steps with ± one-std bands, one line per ordering; a dropdown picks the regime."""
    summ = accuracy_curve_summary(curves)
    regimes = list(dict.fromkeys(summ["regime"]))
    fig = go.Figure()
    owner = []
    for r_i, regime in enumerate(regimes):
        for ordering, part in summ.loc[summ["regime"] == regime].groupby("ordering", sort=False):
            color = ORDERING_COLORS.get(ordering, "#333333")
            fig.add_trace(go.Scatter(
                x=part["step"].tolist(), y=part["mean"].tolist(), mode="lines+markers", name=ordering.replace("_", " "),
                line={"color": color}, error_y={"type": "data", "array": part["std"].tolist(), "thickness": 1},
                visible=r_i == 0, legendgroup=ordering,
            ))
            owner.append(regime)
    buttons = [
        {"label": regime, "method": "update",
         "args": [{"visible": [o == regime for o in owner]}, {"title": f"{title}: {regime}"}]}
        for regime in regimes
    ]
    fig.update_layout(
        title=f"{title}: {regimes[0]}" if regimes else title,
        xaxis_title="training step", yaxis_title="test accuracy", legend_title="ordering", height=450,
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.15, "yanchor": "top"}],
    )
    return fig
