"""Figures of the preference notebook: the reward-KL frontier, over-optimisation of best-of-n,
training curves, the reward model's accuracy and the one-step check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paperlib.experiments.findings import summarize
from paperlib.experiments.preference.analysis import (
    bon_curve,
    gao_fits,
    main_rm_pairs,
    points,
    reference_gold,
)

COLORS = {"best-of-n": "#636efa", "PPO": "#ef553b", "DPO": "#00cc96", "IPO": "#ab63fa", "RRHF": "#ffa15a",
          "reference": "#444444"}
PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880"]


def _mean_points(frontier: pd.DataFrame, method: str, rm_pairs: int | None = None) -> pd.DataFrame:
    p = points(frontier, method, rm_pairs)
    g = p.groupby("setting")
    out = g[["kl_to_ref", "gold_reward", "proxy_reward"]].mean()
    std = g[["kl_to_ref", "gold_reward", "proxy_reward"]].std().fillna(0.0).add_suffix("_std")
    return pd.concat([out, std], axis=1).reset_index().sort_values("kl_to_ref")


def plot_frontier(frontier: pd.DataFrame) -> go.Figure:
    """Gold reward against KL(pi || pi_ref) per method (mean ± std over seeds; one point per beta,
    tau, n or RRHF checkpoint), best-of-n against the main reward model, the reference at KL 0."""
    fig = go.Figure()
    main = main_rm_pairs(frontier)
    knobs = {"best-of-n": "n", "PPO": "beta", "DPO": "beta", "IPO": "tau", "RRHF": "steps"}
    for method in ("best-of-n", "PPO", "DPO", "IPO", "RRHF"):
        if method not in set(frontier["method"]):
            continue
        m = _mean_points(frontier, method, main if method == "best-of-n" else None)
        fig.add_trace(go.Scatter(
            x=m["kl_to_ref"], y=m["gold_reward"], mode="lines+markers", name=method,
            line=dict(color=COLORS[method], dash="dot" if method == "best-of-n" else None),
            error_x=dict(type="data", array=m["kl_to_ref_std"], thickness=1),
            error_y=dict(type="data", array=m["gold_reward_std"], thickness=1),
            text=[f"{knobs[method]} = {s:g}" for s in m["setting"]],
            hovertemplate="%{text}<br>KL %{x:.2f}<br>gold %{y:.2f}<extra>" + method + "</extra>"))
    ref = reference_gold(frontier)
    fig.add_trace(go.Scatter(x=[0.0], y=[ref.mean()], mode="markers", name="reference", marker=dict(size=11, color="#444444", symbol="x")))
    fig.update_layout(title="Gold reward against KL to the reference (mean ± std over seeds)",
                      xaxis_title="KL(π ‖ π_ref), nats", yaxis_title="gold reward r*(y)")
    return fig


def plot_overoptimisation(frontier: pd.DataFrame) -> go.Figure:
    """Best-of-n against reward models trained on different numbers of pairs: the gold gain (solid,
    with the fitted R(d) = d(alpha - beta d) dashed) and the proxy gain (dotted) over n = 1, against d = sqrt(KL)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("gold reward gain", "proxy (reward-model) gain"), shared_xaxes=True)
    fits = gao_fits(frontier).groupby("rm_pairs")[["alpha", "beta"]].mean()
    for i, rm in enumerate(sorted(frontier.loc[frontier["method"] == "best-of-n", "rm_pairs"].unique())):
        c = bon_curve(frontier, int(rm))
        base = c[c["n"] == c["n"].min()].set_index("seed")
        c = c.assign(gold_gain=c["gold_reward"] - c["seed"].map(base["gold_reward"]),
                     proxy_gain=c["proxy_reward"] - c["seed"].map(base["proxy_reward"]))
        s = c.groupby("n")[["kl_to_ref", "gold_gain", "proxy_gain"]].agg(["mean", "std"]).fillna(0.0)
        d = np.sqrt(s[("kl_to_ref", "mean")])
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=d, y=s[("gold_gain", "mean")], error_y=dict(type="data", array=s[("gold_gain", "std")]),
                                 mode="lines+markers", name=f"{int(rm)} pairs", line=dict(color=color), legendgroup=str(rm)),
                      row=1, col=1)
        grid = np.linspace(0, float(d.max()), 50)
        a, b = fits.loc[rm, "alpha"], fits.loc[rm, "beta"]
        fig.add_trace(go.Scatter(x=grid, y=grid * (a - b * grid), mode="lines", line=dict(color=color, dash="dash"),
                                 name=f"fit ({int(rm)} pairs)", legendgroup=str(rm), showlegend=False), row=1, col=1)
        fig.add_trace(go.Scatter(x=d, y=s[("proxy_gain", "mean")], mode="lines+markers", line=dict(color=color, dash="dot"),
                                 name=f"proxy ({int(rm)} pairs)", legendgroup=str(rm), showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="d = sqrt(KL(best-of-n ‖ π_ref))")
    fig.update_layout(title="Best-of-n against the learned reward: proxy keeps rising, does gold?")
    return fig


def plot_training(training: pd.DataFrame, metric: str = "gold_reward") -> go.Figure:
    """`metric` along training for PPO, DPO and IPO, one line per strength (mean over seeds)."""
    methods = [m for m in ("PPO", "DPO", "IPO") if m in set(training["method"])]
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, shared_yaxes=True)
    for j, method in enumerate(methods, start=1):
        part = training[(training["method"] == method) & (training["metric"] == metric)]
        for i, (setting, g) in enumerate(part.groupby("setting")):
            s = summarize(g, ["step"]).sort_values("step")
            fig.add_trace(go.Scatter(x=s["step"], y=s["mean"], mode="lines+markers", line=dict(color=PALETTE[i % len(PALETTE)]),
                                     name=f"{method} {g['knob'].iloc[0]} = {setting:g}"), row=1, col=j)
        fig.update_xaxes(title_text="iteration" if method == "PPO" else "step", row=1, col=j)
    fig.update_layout(title=f"{metric.replace('_', ' ')} along training (mean over seeds)", yaxis_title=metric.replace("_", " "))
    return fig


def plot_reward_model(reward_model: pd.DataFrame) -> go.Figure:
    """Held-out and training pair accuracy of each reward model by epoch (mean ± std over seeds)."""
    fig = go.Figure()
    sizes = sorted(reward_model["rm_pairs"].unique())
    for (rm, metric), g in reward_model.groupby(["rm_pairs", "metric"]):
        s = summarize(g, ["epoch"]).sort_values("epoch")
        fig.add_trace(go.Scatter(x=s["epoch"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers",
                                 name=f"{int(rm)} pairs, {metric.replace('_', ' ')}",
                                 line=dict(dash="dot" if metric.startswith("train") else None,
                                           color=PALETTE[sizes.index(rm) % len(PALETTE)])))
    fig.update_layout(title="Reward-model pair accuracy by epoch", xaxis_title="epoch", yaxis_title="accuracy",
                      xaxis=dict(dtick=1))
    return fig


def plot_bandit(bandit: pd.DataFrame) -> go.Figure:
    """KL(pi_DPO || pi*) against the number of pairs in the one-step case: every seed as a point,
    the median as a line; one colour per (beta, label noise)."""
    b = bandit[bandit["metric"] == "kl_to_optimum"]
    fig = go.Figure()
    for i, ((beta, noise), g) in enumerate(b.groupby(["beta", "label_noise"])):
        color = PALETTE[i % len(PALETTE)]
        name = f"beta {beta:g}, label noise {noise:g}"
        med = g.groupby("pairs")["value"].median()
        fig.add_trace(go.Scatter(x=med.index, y=med.clip(lower=1e-6), mode="lines", name=name, line=dict(color=color),
                                 legendgroup=name))
        fig.add_trace(go.Scatter(x=g["pairs"], y=g["value"].clip(lower=1e-6), mode="markers", marker=dict(color=color, size=6),
                                 name=f"{name} (seeds)", legendgroup=name, showlegend=False,
                                 hovertemplate="seed %{text}<br>%{x} pairs<br>KL %{y:.4f}<extra></extra>", text=g["seed"]))
    pairs = sorted(int(n) for n in b["pairs"].unique())
    fig.update_layout(title="One-step case: DPO's policy against the closed-form optimum π_ref·exp(r/β)/Z",
                      xaxis=dict(type="log", title="preference pairs", tickvals=pairs, ticktext=[f"{n:,}" for n in pairs]),
                      yaxis=dict(type="log", title="KL(π_DPO ‖ π*)", dtick=1, exponentformat="power"))
    return fig
