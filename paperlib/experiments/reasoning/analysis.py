"""Claims and findings of the RL-for-reasoning experiment, computed from its tidy tables.

A claim "holds" when the measured gap points the claimed way by more than the spread over
seeds of the per-seed gap, "fails" when it points the other way by more than that, and is
"unresolved" otherwise (or with a single seed).
"""
from __future__ import annotations

import pandas as pd

from paperlib.experiments.findings import compare_paired, summarize
from paperlib.store import load_reference

REFERENCE = "reasoning"



def pass_at(passk: pd.DataFrame, k: int, digits) -> pd.DataFrame:
    """pass@k averaged over the given operand lengths: one row per (method, seed)."""
    part = passk[(passk["k"] == k) & passk["digits"].isin(list(digits))]
    return part.groupby(["method", "seed"], as_index=False)["value"].mean()


def gains(passk: pd.DataFrame, method: str, ks, digits, base: str = "SFT") -> pd.DataFrame:
    """Per seed and k, pass@k of `method` minus that of `base` (averaged over `digits`)."""
    rows = []
    for k in ks:
        p = pass_at(passk, k, digits).pivot(index="seed", columns="method", values="value")
        rows += [{"seed": s, "k": k, "value": float(v)} for s, v in (p[method] - p[base]).items()]
    return pd.DataFrame(rows)


def reasoning_claims(passk: pd.DataFrame, config) -> pd.DataFrame:
    """GRPO raises pass@1 over SFT; its gain at pass@16 (largest k) is smaller than at pass@1."""
    trained = tuple(config.train_digits)
    kmax = max(config.ks)
    rows = []
    p1 = pass_at(passk, 1, trained)
    comp = compare_paired(p1, "method", "GRPO", "SFT", metric=f"pass@1 over {_lengths(trained)}",
                          labels=("GRPO", "the SFT model"))
    rows.append({"key": "grpo_pass1", "claim": "GRPO raises pass@1 over the SFT model", "verdict": comp.claim(),
                 "measured": comp.sentence()})
    g = gains(passk, "GRPO", (1, kmax), trained)
    g = g.assign(which=g["k"].map({1: "gain at pass@1", kmax: f"gain at pass@{kmax}"}))
    comp = compare_paired(g, "which", "gain at pass@1", f"gain at pass@{kmax}", metric=f"GRPO minus SFT over {_lengths(trained)}")
    rows.append({"key": "sharpening", "claim": f"GRPO's gain at pass@{kmax} is smaller than at pass@1",
                 "verdict": comp.claim(), "measured": comp.sentence()})
    return pd.DataFrame(rows, columns=["key", "claim", "verdict", "measured"])


def _lengths(digits) -> str:
    d = sorted(digits)
    return f"{d[0]}- to {d[-1]}-digit operands" if len(d) > 1 else f"{d[0]}-digit operands"


def curve_pass1(training: pd.DataFrame, digits) -> pd.DataFrame:
    """Along each RL run: pass@1 averaged over the given lengths, per (method, seed, step)."""
    names = [f"pass@1 ({d} digits)" for d in digits]
    part = training[training["metric"].isin(names)]
    return part.groupby(["method", "seed", "step"], as_index=False)["value"].mean()


def reasoning_findings(tables: dict, config, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sentences (key, finding) from the measured tables, each beside the papers' reports."""
    ref = (reference if reference is not None else load_reference(REFERENCE)).set_index("key")
    passk, training = tables["passk"], tables.get("training", pd.DataFrame())
    trained = tuple(config.train_digits)
    longer = [d for d in config.test_digits if d > max(trained)]
    rows = []
    sft_checks = training[(training["method"] == "SFT") & (training["metric"] == "sft pass@1 check")] if len(training) else training
    if len(sft_checks):
        last = sft_checks.sort_values("step").groupby("seed").last()
        rows.append(("sft", f"SFT stopped after {', '.join(str(int(s)) for s in last['step'])} steps (per seed) with a check "
                            f"pass@1 of {last['value'].mean():.2f} (target {config.sft_target:g})."))
    claims = reasoning_claims(passk, config)
    sources = {"grpo_pass1": ("grpo", "still3"), "sharpening": ("rl_sharpens", "rl_majk_not_passk")}
    for r in claims.itertuples():
        said = " ".join(f"{_source(ref.loc[k])}: {ref.loc[k, 'claim']}" for k in sources[r.key])
        rows.append((f"claim_{r.key}", f"**{r.claim}: {r.verdict}.** {r.measured} {said}"))
    g = gains(passk, "GRPO", config.ks, trained)
    s = summarize(g, ["k"])
    rows.append(("gain_by_k", "GRPO minus SFT by k: " + ", ".join(f"pass@{int(k)} {m:+.3f} ± {d:.3f}" for k, m, d in
                                                                   zip(s["k"], s["mean"], s["std"])) + "."))
    p1 = pass_at(passk, 1, trained)
    for other, key in (("REINFORCE", "reinforce"), ("RFT", "rft"), ("SFT (continued)", "sft_continued")):
        if other in set(p1["method"]):
            comp = compare_paired(p1, "method", "GRPO", other, metric=f"pass@1 over {_lengths(trained)}", labels=("GRPO", other))
            text = comp.sentence()
            if key == "sft_continued":
                r = ref.loc["two_stage"]
                text += (f" {_source(r)}: {r['claim']} (Here answers have a fixed length, so there is no solution length "
                         "for RL to shorten.)")
            if key == "rft":
                r = ref.loc["star"]
                text += f" {_source(r)}: {r['claim']}"
            rows.append((key, text))
    if longer:
        pl = pass_at(passk, 1, longer)
        comp = compare_paired(pl, "method", "GRPO", "SFT", metric=f"pass@1 on {_lengths(longer)} (longer than trained)",
                              labels=("GRPO", "the SFT model"))
        rows.append(("longer", comp.sentence()))
    if len(training):
        zv = training[(training["method"] == "GRPO") & (training["metric"] == "zero_variance_share")]
        if len(zv):
            steps = sorted(zv["step"].unique())
            tenth = max(1, len(steps) // 10)
            early = zv[zv["step"].isin(steps[:tenth])]["value"].mean()
            late = zv[zv["step"].isin(steps[-tenth:])]["value"].mean()
            r = ref.loc["dapo_dynamic_sampling"]
            rows.append(("zero_variance", f"Share of GRPO groups whose {config.group} samples all got the same reward: "
                                          f"{early:.2f} over the first tenth of training, {late:.2f} over the last tenth. "
                                          f"{_source(r)}: {r['claim']}"))
        curve = curve_pass1(training, trained)
        for other, key in (("GRPO, UCB curriculum", "ucb"), ("GRPO, easy to hard", "paced")):
            if other not in set(passk["method"]):
                continue
            comp = compare_paired(p1, "method", other, "GRPO", metric=f"final pass@1 over {_lengths(trained)}",
                                  labels=(other, "GRPO with uniform lengths"))
            auc = curve[curve["method"].isin([other, "GRPO"])].groupby(["method", "seed"], as_index=False)["value"].mean()
            speed = compare_paired(auc, "method", other, "GRPO", metric="mean pass@1 along training (area under the curve)",
                                   labels=(other, "GRPO with uniform lengths"))
            text = f"{comp.sentence()} {speed.sentence()}"
            if key == "ucb":
                r = ref.loc["dump"]
                text += f" {_source(r)}: {r['claim']}"
            rows.append((key, text))
    return pd.DataFrame(rows, columns=["key", "finding"])


def _source(ref_row: pd.Series) -> str:
    first = str(ref_row["authors"]).split(",")[0].split()[-1]
    return f"{first} et al. ({int(ref_row['year'])}; {ref_row['where']}) report"


def passk_table(passk: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of pass@k per method and operand length (columns: k)."""
    s = summarize(passk, ["method", "digits", "k"])
    s["cell"] = [f"{m:.3f} ± {d:.3f}" for m, d in zip(s["mean"], s["std"])]
    wide = s.pivot_table(index=["method", "digits"], columns="k", values="cell", aggfunc="first")
    wide.columns = [f"pass@{k}" for k in wide.columns]
    return wide.reset_index()
