"""Turn per-seed results into mean +- spread tables and into sentences that claim only what
the numbers support: a difference is stated only when it exceeds the spread across seeds."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import pandas as pd


def summarize(df: pd.DataFrame, by: Sequence[str], value: str = "value") -> pd.DataFrame:
    """Mean, standard deviation across seeds (0 for one seed) and count of `value` per group."""
    by = list(by)
    out = (
        df.groupby(by, sort=False, dropna=False)[value]
        .agg(mean="mean", std="std", n="count")
        .reset_index()
    )
    out["std"] = out["std"].fillna(0.0)
    return out


@dataclass(frozen=True)
class Comparison:
    """Two groups' means and seed spreads, and whether their gap exceeds the combined spread."""

    label_a: str
    label_b: str
    mean_a: float
    std_a: float
    n_a: int
    mean_b: float
    std_b: float
    n_b: int
    metric: str
    decimals: int = 3
    paired_std: float | None = None  # std over seeds of the per-seed difference a - b, when paired

    @property
    def gap(self) -> float:
        return self.mean_a - self.mean_b

    @property
    def spread(self) -> float:
        """The seed spread a gap must exceed to be claimed: std_a + std_b, or for a paired
        comparison the std over seeds of the per-seed differences."""
        return self.paired_std if self.paired_std is not None else self.std_a + self.std_b

    @property
    def decided(self) -> bool:
        """True when both sides have at least two seeds and the gap exceeds their spread."""
        return min(self.n_a, self.n_b) >= 2 and abs(self.gap) > self.spread

    @property
    def verdict(self) -> str:
        """'higher' or 'lower' (a beyond b), 'within seed spread', or 'single seed'."""
        if min(self.n_a, self.n_b) < 2:
            return "single seed"
        if not self.decided:
            return "within seed spread"
        return "higher" if self.gap > 0 else "lower"

    def claim(self, expected: str = "higher") -> str:
        """'holds', 'fails' or 'unresolved' for the claim that a is `expected` ('higher' or 'lower') than b."""
        if self.verdict == expected:
            return "holds"
        return "fails" if self.verdict in ("higher", "lower") else "unresolved"

    def _fmt(self, mean: float, std: float, n: int) -> str:
        d = self.decimals
        return f"{mean:.{d}f} ± {std:.{d}f} (n={n})" if n > 1 else f"{mean:.{d}f} (one seed)"

    def sentence(self) -> str:
        """One sentence stating the measured comparison, hedged when the spread decides nothing."""
        a = f"{self.label_a} {self._fmt(self.mean_a, self.std_a, self.n_a)}"
        b = f"{self.label_b} {self._fmt(self.mean_b, self.std_b, self.n_b)}"
        d = self.decimals
        if min(self.n_a, self.n_b) < 2:
            return (f"{self.metric}: {a} vs {b}; with a single seed the gap of {abs(self.gap):.{d}f} "
                    "cannot be compared with a seed spread, so no difference is claimed.")
        what = "the spread over seeds of the per-seed gap" if self.paired_std is not None else "the seed spread"
        if not self.decided:
            return (f"{self.metric}: {a} vs {b}; the gap of {abs(self.gap):.{d}f} is within {what} "
                    f"({self.spread:.{d}f}), so the two are not distinguishable here.")
        word = "higher" if self.gap > 0 else "lower"
        return (f"{self.metric}: {a} is {word} than {b} by {abs(self.gap):.{d}f}, "
                f"more than {what} ({self.spread:.{d}f}).")


def compare(
    df: pd.DataFrame,
    column: str,
    a: object,
    b: object,
    *,
    value: str = "value",
    metric: str | None = None,
    labels: tuple[str, str] | None = None,
    decimals: int = 3,
) -> Comparison:
    """Compare the rows where `column == a` with those where `column == b` on `value`."""
    out = []
    for key in (a, b):
        vals = df.loc[df[column] == key, value].astype(float)
        if vals.empty:
            raise ValueError(f"no rows with {column} == {key!r} (have {sorted(map(str, df[column].unique()))})")
        out.append((float(vals.mean()), float(vals.std()) if len(vals) > 1 else 0.0, int(len(vals))))
    la, lb = labels or (str(a), str(b))
    (ma, sa, na), (mb, sb, nb) = out
    return Comparison(la, lb, ma, sa, na, mb, sb, nb, metric or value, decimals)


def compare_paired(
    df: pd.DataFrame,
    column: str,
    a: object,
    b: object,
    *,
    pair_on: str = "seed",
    value: str = "value",
    metric: str | None = None,
    labels: tuple[str, str] | None = None,
    decimals: int = 3,
) -> Comparison:
    """Like `compare`, for runs that share a seed (same data split, same initialisation): the gap must
    exceed the std over seeds of the per-seed difference a - b."""
    c = compare(df, column, a, b, value=value, metric=metric, labels=labels, decimals=decimals)
    wide = df[df[column].isin([a, b])].pivot_table(index=pair_on, columns=column, values=value)
    diff = (wide[a] - wide[b]).dropna()
    std = float(diff.std()) if len(diff) > 1 else 0.0
    return replace(c, paired_std=std, n_a=min(c.n_a, len(diff)), n_b=min(c.n_b, len(diff)))


def against_reference(comparison: Comparison, expected: str, source: str) -> str:
    """The comparison's sentence plus whether it agrees with the direction a paper reports
    (`expected` is 'higher', 'lower' or 'within seed spread' for a against b, or several joined by '|')."""
    text = comparison.sentence()
    allowed = [e.strip() for e in str(expected).split("|")]
    words = {"higher": "higher", "lower": "lower", "within seed spread": "no real difference"}
    said = " or ".join(words.get(e, e) for e in allowed)
    if comparison.verdict == "single seed":
        return f"{text} {source} report {said}; one seed cannot test that."
    if comparison.verdict in allowed:
        return f"{text} {source} report {said}; our runs agree."
    if comparison.verdict == "within seed spread":
        return f"{text} {source} report {said}; our runs do not show that difference at this scale."
    return f"{text} {source} report {said}; our runs point the other way."


def findings_markdown(findings: pd.DataFrame, column: str = "finding") -> str:
    """Findings as a Markdown bullet list for display in a notebook."""
    return "\n".join(f"- {text}" for text in findings[column])
