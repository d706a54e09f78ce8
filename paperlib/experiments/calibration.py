"""How far a classifier's confidence matches its accuracy: reliability bins and the expected
calibration error (ECE), the calibration measure PS-KD reports."""
from __future__ import annotations

import pandas as pd
import torch


def reliability_table(probs: torch.Tensor, y: torch.Tensor, *, n_bins: int = 15) -> pd.DataFrame:
    """Per equal-width confidence bin: count, mean confidence and accuracy of the top-1 prediction.

    Bins are (lo, hi], the first also holds confidence 0. Empty bins are kept with count 0.
    """
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError(f"probs must be (n, classes) with n == len(y); got {tuple(probs.shape)} and {len(y)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf, pred = probs.detach().float().cpu().max(1)
    correct = (pred == y.cpu()).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    idx = torch.clamp(torch.bucketize(conf, edges[1:-1], right=False), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        rows.append({
            "bin": b,
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "count": count,
            "confidence": float(conf[mask].mean()) if count else float("nan"),
            "accuracy": float(correct[mask].mean()) if count else float("nan"),
        })
    return pd.DataFrame(rows)


def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, *, n_bins: int = 15) -> float:
    """ECE = sum over bins of (bin share) * |accuracy - mean confidence|."""
    table = reliability_table(probs, y, n_bins=n_bins)
    full = table[table["count"] > 0]
    weights = full["count"] / table["count"].sum()
    return float((weights * (full["accuracy"] - full["confidence"]).abs()).sum())
