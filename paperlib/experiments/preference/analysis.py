"""Claims and findings of the preference experiment, computed from its tidy tables.

A claim's verdict is "holds" when the measured gap points the claimed way by more than the
spread over seeds of the per-seed gap, "fails" when it points the other way by more than that
spread, and "unresolved" otherwise (or with a single seed).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.experiments.findings import compare_paired, summarize
from paperlib.experiments.preference.methods import GoldReward, fit_gao_bon
from paperlib.store import load_reference

REFERENCE = "preference"



def points(frontier: pd.DataFrame, method: str, rm_pairs: int | None = None) -> pd.DataFrame:
    """One row per (seed, setting) of a method: kl_to_ref, gold_reward, proxy_reward (and length)."""
    part = frontier[frontier["method"] == method]
    if rm_pairs is not None:
        part = part[part["rm_pairs"] == rm_pairs]
    return part.pivot_table(index=["seed", "setting"], columns="metric", values="value").reset_index()


def reference_gold(frontier: pd.DataFrame) -> pd.Series:
    """The reference model's gold reward per seed."""
    ref = frontier[(frontier["method"] == "reference") & (frontier["metric"] == "gold_reward")]
    return ref.set_index("seed")["value"]


def gold_at_kl(frontier: pd.DataFrame, method: str, kl: float | np.ndarray) -> pd.DataFrame:
    """Per seed, the method's gold reward at the given KL(s), linearly interpolated between its
    settings sorted by KL, with the reference itself as the point at KL 0."""
    ref = reference_gold(frontier)
    rows = []
    grid = np.atleast_1d(np.asarray(kl, float))
    for seed, part in points(frontier, method).groupby("seed"):
        x = np.concatenate([[0.0], np.clip(part["kl_to_ref"].to_numpy(), 0.0, None)])
        y = np.concatenate([[ref.loc[seed]], part["gold_reward"].to_numpy()])
        order = np.argsort(x, kind="stable")
        rows += [{"seed": seed, "kl": float(k), "value": float(v)} for k, v in zip(grid, np.interp(grid, x[order], y[order]))]
    return pd.DataFrame(rows)


def common_kl(frontier: pd.DataFrame, methods=("DPO", "PPO")) -> float:
    """The largest KL every seed of every listed method reaches: the range where they can be compared."""
    return float(min(points(frontier, m).groupby("seed")["kl_to_ref"].max().min() for m in methods))


def bon_curve(frontier: pd.DataFrame, rm_pairs: int) -> pd.DataFrame:
    return points(frontier, "best-of-n", rm_pairs).rename(columns={"setting": "n"})


def main_rm_pairs(frontier: pd.DataFrame) -> int:
    """The pairs of the reward model PPO used (the main one)."""
    rows = frontier[frontier["method"] != "best-of-n"]["rm_pairs"].dropna()
    return int(rows.iloc[0]) if len(rows) else int(frontier["rm_pairs"].max())


def gao_fits(frontier: pd.DataFrame) -> pd.DataFrame:
    """Gao et al.'s best-of-n form fitted per seed and reward model: alpha, beta, r2, peak_kl."""
    rows = []
    bon = frontier[frontier["method"] == "best-of-n"]
    for (rm, seed), _ in bon.groupby(["rm_pairs", "seed"]):
        c = bon_curve(frontier[frontier["seed"] == seed], int(rm))
        gain = c["gold_reward"] - c.loc[c["n"] == c["n"].min(), "gold_reward"].iloc[0]
        rows.append({"rm_pairs": int(rm), "seed": seed, **fit_gao_bon(c["kl_to_ref"], gain)})
    return pd.DataFrame(rows)


def overoptimisation(frontier: pd.DataFrame, rm_pairs: int) -> tuple[str, str]:
    """Is best-of-n's gold reward at the largest n below its peak? The peak is the n where the
    mean curve over seeds is highest; the gold reward there and at the largest n are compared
    paired by seed. When the peak is the largest n itself, the last step of the curve decides
    between "still rising" (fails) and "flat within the seed spread" (unresolved).
    Returns (verdict, measured sentence)."""
    c = bon_curve(frontier, rm_pairs).rename(columns={"gold_reward": "value"})
    mean = c.groupby("n")["value"].mean()
    peak, last = float(mean.idxmax()), float(mean.index.max())
    metric = f"best-of-n gold reward ({rm_pairs} pairs)"
    if peak != last:
        both = pd.concat([c[c["n"] == peak].assign(where="peak"), c[c["n"] == last].assign(where="largest n")])
        comp = compare_paired(both, "where", "peak", "largest n", metric=metric,
                              labels=(f"at the peak (n = {peak:g})", f"at the largest n ({last:g})"))
        return comp.claim(), comp.sentence()
    before = float(mean.index[-2])
    both = pd.concat([c[c["n"] == last].assign(where="last"), c[c["n"] == before].assign(where="before")])
    comp = compare_paired(both, "where", "last", "before", metric=metric,
                          labels=(f"at the largest n ({last:g})", f"at n = {before:g}"))
    v = "fails" if comp.verdict == "higher" else "unresolved"
    return v, f"The mean curve is highest at the largest n tested. {comp.sentence()}"


def preference_claims(frontier: pd.DataFrame) -> pd.DataFrame:
    """The three claims with their verdicts and the measured comparison behind each."""
    rows = []
    top = common_kl(frontier)
    matched = top / 2
    ref = reference_gold(frontier).rename("value").reset_index().assign(method="reference")
    parts = []
    for m in ("DPO", "PPO"):
        at = gold_at_kl(frontier, m, matched).assign(method=m)
        comp = compare_paired(pd.concat([at, ref]), "method", m, "reference", metric=f"gold reward at KL {matched:.2f}",
                              labels=(m, "the reference"))
        parts.append((m, comp))
    verdicts = [c.claim() for _, c in parts]
    overall = "holds" if all(v == "holds" for v in verdicts) else "fails" if "fails" in verdicts else "unresolved"
    rows.append({"key": "raise", "claim": "DPO and PPO both raise gold reward over the reference at matched KL",
                 "verdict": overall, "measured": " ".join(c.sentence() for _, c in parts)})
    grid = np.linspace(top / 20, top, 20)
    mean_gold = pd.concat([gold_at_kl(frontier, m, grid).groupby("seed")["value"].mean().reset_index().assign(method=m)
                           for m in ("DPO", "PPO")])
    comp = compare_paired(mean_gold, "method", "DPO", "PPO", metric=f"mean gold reward over KL in (0, {top:.2f}]",
                          labels=("DPO's frontier", "PPO's"))
    rows.append({"key": "frontier", "claim": "DPO's frontier is at least as high as PPO's over the KL range tested",
                 "verdict": comp.claim(), "measured": comp.sentence()})
    v, measured = overoptimisation(frontier, main_rm_pairs(frontier))
    rows.append({"key": "overoptimisation", "claim": "gold reward at the largest KL is below its peak for best-of-n "
                 "against the learned reward", "verdict": v, "measured": measured})
    return pd.DataFrame(rows, columns=["key", "claim", "verdict", "measured"])


def _source(ref_row: pd.Series) -> str:
    first = str(ref_row["authors"]).split(",")[0].split()[-1]
    return f"{first} et al. ({int(ref_row['year'])}; {ref_row['where']})"


def preference_findings(tables: dict, config, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sentences (key, finding) from the measured tables, each claim beside the paper's report."""
    ref = (reference if reference is not None else load_reference(REFERENCE)).set_index("key")
    frontier = tables["frontier"]
    rows = []
    gold_ref = reference_gold(frontier)
    rm = tables.get("reward_model", pd.DataFrame())
    main = main_rm_pairs(frontier)
    best = GoldReward(config.good_letters, config.target_length, config.length_penalty).best(config.max_new_tokens)
    acc = rm[(rm["rm_pairs"] == main) & (rm["metric"] == "held_out_accuracy")] if len(rm) else rm
    last_epoch = acc[acc["epoch"] == acc["epoch"].max()]["value"] if len(acc) else pd.Series(dtype=float)
    rows.append(("setup", (
        f"The reference model's gold reward is {gold_ref.mean():.2f} ± {gold_ref.std() if len(gold_ref) > 1 else 0:.2f} "
        f"(the best string, {min(config.target_length, config.max_new_tokens)} good letters, gets {best:g}); the reward model "
        f"trained on {main} pairs orders {last_epoch.mean():.1%} of held-out pairs with different gold rewards correctly.")))
    claims = preference_claims(frontier)
    sources = {"raise": "dpo_frontier", "frontier": "dpo_frontier", "overoptimisation": "gao_bon"}
    for r in claims.itertuples():
        s = ref.loc[sources[r.key]]
        rows.append((f"claim_{r.key}", f"**{r.claim}: {r.verdict}.** {r.measured} {_source(s)}: {s['claim']}"))
    fits = gao_fits(frontier)
    if len(fits):
        parts = []
        for k, f in fits.groupby("rm_pairs"):
            s = summarize(f.melt(id_vars=["rm_pairs", "seed"], var_name="metric"), ["metric"]).set_index("metric")
            peak = f["peak_kl"].replace(np.inf, np.nan)
            where = (f"peak at KL {peak.median():.1f} (median)" if peak.notna().any() else "no peak (beta ≤ 0)")
            parts.append(f"{k} pairs: alpha {s.loc['alpha', 'mean']:.2f} ± {s.loc['alpha', 'std']:.2f}, "
                         f"beta {s.loc['beta', 'mean']:.3f} ± {s.loc['beta', 'std']:.3f}, R² {s.loc['r2', 'mean']:.3f}, {where}")
        rows.append(("gao_fit", "Best-of-n gold gain fitted by R(d) = d(alpha - beta d), d = sqrt(KL): " + "; ".join(parts) + "."))
        for k in sorted(set(fits["rm_pairs"]) - {main}):
            v, measured = overoptimisation(frontier, int(k))
            rows.append((f"overoptimisation_{k}", f"With a reward model trained on {k} pairs only, gold at the largest n "
                                                  f"below its peak: {v}. {measured}"))
    if len(rm):
        acc = rm[rm["metric"] == "held_out_accuracy"]
        s = summarize(acc, ["rm_pairs", "epoch"])
        parts = [f"{int(k)} pairs: " + " → ".join(f"{v:.3f}" for v in g.sort_values("epoch")["mean"]) for k, g in s.groupby("rm_pairs")]
        r = ref.loc["ids"]
        rows.append(("reward_model", f"Held-out pair accuracy of the reward model by epoch (mean over seeds): {'; '.join(parts)}. "
                                     f"{_source(r)}: {r['claim']}"))
    bandit = tables.get("bandit", pd.DataFrame())
    if len(bandit):
        b = bandit[bandit["metric"] == "kl_to_optimum"]
        most = b["pairs"].max()
        parts = []
        for (beta, noise), g in b.groupby(["beta", "label_noise"]):
            med = g.groupby("pairs")["value"].median()
            parts.append(f"beta {beta:g}, label noise {noise:g}: median KL {med.iloc[0]:.3f} with {int(med.index[0])} pairs, "
                         f"{med.loc[most]:.4f} with {int(most)}")
        r = ref.loc["dpo_optimum"]
        rows.append(("bandit", "One-step case, KL(pi_DPO || pi*) to the closed-form optimum: " + "; ".join(parts)
                     + f". {_source(r)}: {r['claim']}"))
    rr = points(frontier, "RRHF")
    if len(rr):
        last = rr[rr["setting"] == rr["setting"].max()]
        gain = last.set_index("seed")["gold_reward"] - gold_ref
        r = ref.loc["rrhf"]
        rows.append(("rrhf", f"RRHF after {int(last['setting'].iloc[0])} steps: gold reward +{gain.mean():.2f} over the reference "
                             f"at KL {last['kl_to_ref'].mean():.2f} (mean over seeds). {_source(r)}: {r['claim']}"))
    return pd.DataFrame(rows, columns=["key", "finding"])


def frontier_table(frontier: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of gold, proxy and KL for every method and setting (best-of-n: main reward model)."""
    main = main_rm_pairs(frontier)
    part = frontier[(frontier["method"] != "best-of-n") | (frontier["rm_pairs"] == main)]
    s = summarize(part, ["method", "knob", "setting", "metric"])
    s["cell"] = [f"{m:.2f} ± {d:.2f}" for m, d in zip(s["mean"], s["std"])]
    wide = s.pivot_table(index=["method", "knob", "setting"], columns="metric", values="cell", aggfunc="first")
    return wide[[c for c in ("kl_to_ref", "gold_reward", "proxy_reward", "length") if c in wide.columns]].reset_index()
