"""Figures of the RL-for-reasoning notebook: pass@k curves, training curves, the share of groups
without a learning signal, and the curricula's choice of problem lengths."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paperlib.experiments.findings import summarize
from paperlib.experiments.reasoning.analysis import curve_pass1

PALETTE = ["#ef553b", "#636efa", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"]
COLORS = {"SFT": "#444444", "GRPO": "#ef553b", "REINFORCE": "#636efa", "RFT": "#00cc96", "SFT (continued)": "#ab63fa",
          "GRPO, easy to hard": "#ffa15a", "GRPO, UCB curriculum": "#19d3f3"}


def _color(method: str, i: int = 0) -> str:
    return COLORS.get(method, PALETTE[i % len(PALETTE)])


def plot_passk(passk: pd.DataFrame, methods=("SFT", "GRPO", "REINFORCE", "RFT", "SFT (continued)")) -> go.Figure:
    """pass@k against k (log axis) for each method, one panel per operand length (mean ± std over seeds)."""
    lengths = sorted(passk["digits"].unique())
    fig = make_subplots(rows=1, cols=len(lengths), subplot_titles=[f"{d}-digit operands" for d in lengths], shared_yaxes=True)
    for i, m in enumerate(x for x in methods if x in set(passk["method"])):
        for j, d in enumerate(lengths, start=1):
            s = summarize(passk[(passk["method"] == m) & (passk["digits"] == d)], ["k"]).sort_values("k")
            fig.add_trace(go.Scatter(x=s["k"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers",
                                     name=m, legendgroup=m, showlegend=j == 1, line=dict(color=_color(m, i),
                                                                                       dash="dot" if m == "SFT" else None)),
                          row=1, col=j)
    ks = sorted(int(k) for k in passk["k"].unique())
    fig.update_xaxes(type="log", title_text="k", tickvals=ks, ticktext=[str(k) for k in ks])
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(title="pass@k before (SFT) and after RL (mean ± std over seeds)", yaxis_title="pass@k")
    return fig


def plot_gain_by_k(passk: pd.DataFrame, methods=("GRPO", "REINFORCE", "RFT", "SFT (continued)"), digits=None) -> go.Figure:
    """Each method's pass@k minus the SFT model's, against k (mean ± std over seeds, averaged over `digits`)."""
    from paperlib.experiments.reasoning.analysis import gains

    digits = digits or sorted(passk["digits"].unique())
    ks = sorted(passk["k"].unique())
    fig = go.Figure()
    for i, m in enumerate(x for x in methods if x in set(passk["method"])):
        s = summarize(gains(passk, m, ks, digits), ["k"]).sort_values("k")
        fig.add_trace(go.Scatter(x=s["k"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers", name=m,
                                 line=dict(color=_color(m, i))))
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Gain over the SFT model by k ({', '.join(str(d) for d in digits)}-digit operands)",
                      xaxis=dict(type="log", title="k", tickvals=list(ks), ticktext=[str(int(k)) for k in ks]),
                      yaxis_title="pass@k minus SFT's")
    return fig


def plot_training(training: pd.DataFrame, digits, methods=None) -> go.Figure:
    """Along training: pass@1 on the trained lengths (left) and the share of groups whose samples all
    got the same reward (right), mean over seeds."""
    methods = methods or [m for m in training["method"].unique() if m != "SFT"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("pass@1 on the trained lengths", "groups with no learning signal"))
    curve = curve_pass1(training, digits)
    for i, m in enumerate(methods):
        color = _color(m, i)
        s = summarize(curve[curve["method"] == m], ["step"]).sort_values("step")
        fig.add_trace(go.Scatter(x=s["step"], y=s["mean"], mode="lines+markers", name=m, legendgroup=m, line=dict(color=color)),
                      row=1, col=1)
        zv = training[(training["method"] == m) & (training["metric"] == "zero_variance_share")]
        if len(zv):
            z = summarize(zv, ["step"]).sort_values("step")
            z["smooth"] = z["mean"].rolling(10, min_periods=1).mean()
            fig.add_trace(go.Scatter(x=z["step"], y=z["smooth"], mode="lines", name=m, legendgroup=m, showlegend=False,
                                     line=dict(color=color)), row=1, col=2)
    fig.update_xaxes(title_text="RL step")
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(title="Training curves (mean over seeds; right: share of zero-variance groups, 10-step moving mean)")
    return fig


def plot_level_shares(training: pd.DataFrame, methods=("GRPO", "GRPO, easy to hard", "GRPO, UCB curriculum")) -> go.Figure:
    """Share of each operand length among the training problems along each run (mean over seeds,
    10-step moving mean)."""
    methods = [m for m in methods if m in set(training["method"])]
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, shared_yaxes=True)
    shares = training[training["metric"].str.startswith("share_")]
    levels = sorted(shares["metric"].unique(), key=lambda x: int(x.split("_")[1]))
    for j, m in enumerate(methods, start=1):
        for i, metric in enumerate(levels):
            g = shares[(shares["method"] == m) & (shares["metric"] == metric)]
            s = summarize(g, ["step"]).sort_values("step")
            fig.add_trace(go.Scatter(x=s["step"], y=s["mean"].rolling(10, min_periods=1).mean(), mode="lines",
                                     name=f"{metric.split('_')[1]}-digit operands", legendgroup=metric, showlegend=j == 1,
                                     line=dict(color=PALETTE[(i + 1) % len(PALETTE)])), row=1, col=j)
    fig.update_xaxes(title_text="RL step")
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(title="Which problem lengths each run trained on", yaxis_title="share of problems")
    return fig
