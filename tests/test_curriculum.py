"""Curriculum pacing: pacing formulas, scoring order, orderings, label noise, paced trainer, findings, figures."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from paperlib.experiments.curriculum import experiment as cl
from paperlib.experiments.findings import findings_markdown
from paperlib.experiments.training import LoopConfig
from paperlib.store import ResultStore, load_reference, load_results, read_json, to_jsonable

N, T = 1000, 100
C = 10.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def wu_formula(family: str, step: int, *, a: float, b: float, n: int = N, t: int = T, min_size: int = 1) -> int:
    """The issue's formulas, written out independently of the library."""
    u = step / (a * t)
    base = b * n
    raw = {
        "linear": base + (n - base) * u,
        "quad": base + (n - base) * u**2,
        "root": base + (n - base) * math.sqrt(u),
        "step": base + n * math.floor(u),
        "exp": base + (n - base) * (math.exp(C * min(u, 2)) - 1) / (math.exp(C) - 1),
        "log": base + (n - base) * (1 + math.log(u + math.exp(-C)) / C),
    }[family]
    return int(min(n, max(min_size, math.floor(raw + 1e-9))))


# --- pacing ---------------------------------------------------------------------------------


def test_wu_families_hand_values_at_start_middle_and_end():
    # N=1000, T=100, a=0.5, b=0.1: all data from step 50 on; at step 25 u = 0.5.
    kw = dict(n=N, total_steps=T, a=0.5, b=0.1)
    for family, fn in cl.WU_FAMILIES.items():
        assert fn(0, **kw) == 100, family
        assert fn(50, **kw) == N, family
        assert fn(100, **kw) == N, family  # beyond aT: clipped to N
    assert cl.pace_linear(25, **kw) == 550  # 100 + 900 * 0.5
    assert cl.pace_quad(25, **kw) == 325  # 100 + 900 * 0.25
    assert cl.pace_root(25, **kw) == 736  # 100 + 900 * 0.7071
    assert cl.pace_step(25, **kw) == 100  # floor(0.5) = 0
    assert cl.pace_exp(25, **kw) == 106  # 100 + 900 * (e^5 - 1) / (e^10 - 1)
    assert cl.pace_log(25, **kw) == 937  # 100 + 900 * (1 + ln(0.5 + e^-10) / 10)


@pytest.mark.parametrize("family", list(cl.WU_FAMILIES))
@pytest.mark.parametrize("a,b", [(0.5, 0.1), (0.8, 0.2), (1.0, 0.0), (0.25, 0.5)])
def test_wu_families_match_formula_monotone_and_reach_n_by_aT(family, a, b):
    fn = cl.WU_FAMILIES[family]
    sizes = [fn(s, n=N, total_steps=T, a=a, b=b, min_size=32) for s in range(T + 1)]
    assert sizes == [wu_formula(family, s, a=a, b=b, min_size=32) for s in range(T + 1)]
    assert all(x <= y for x, y in zip(sizes, sizes[1:])), "pacing must be non-decreasing"
    assert sizes[math.ceil(a * T)] == N
    assert min(sizes) >= 32 and max(sizes) == N


def test_a_above_one_never_reaches_the_full_data():
    # a = 1.6: at the last step u = 1 / 1.6, so linear pacing holds 100 + 900 / 1.6 = 662.5 examples
    assert cl.pace_linear(T, n=N, total_steps=T, a=1.6, b=0.1) == 662


def test_pacing_clips_to_minimum_batch_and_to_n():
    assert cl.pace_linear(0, n=N, total_steps=T, a=0.5, b=0.0, min_size=64) == 64
    assert cl.pace_log(0, n=N, total_steps=T, a=0.5, b=0.0, min_size=64) == 64
    assert cl.pace_step(10**6, n=N, total_steps=T, a=0.5, b=0.9) == N  # bN + N would be 1900
    assert cl.pace_linear(0, n=10, total_steps=T, a=0.5, b=0.0, min_size=64) == 10  # min batch larger than N


def test_hacohen_pacing_hand_values():
    fixed = [cl.pace_fixed_exponential(s, n=N, starting_fraction=0.1, increase=2, step_length=10) for s in (0, 9, 10, 19, 20, 30, 40, 99)]
    assert fixed == [100, 100, 200, 200, 400, 800, 1000, 1000]
    varied = lambda s: cl.pace_varied_exponential(s, n=N, starting_fraction=0.1, increase=2, step_lengths=[5, 10, 20])
    assert [varied(s) for s in (0, 4, 5, 14, 15, 34, 35, 54, 55)] == [100, 100, 200, 200, 400, 400, 800, 800, 1000]
    single = lambda s: cl.pace_single_step(s, n=N, starting_fraction=0.25, step_length=30)
    assert [single(0), single(29), single(30)] == [250, 250, 1000]


@pytest.mark.parametrize("family", cl.PACING_FAMILIES)
def test_pacing_dataclass_monotone_for_every_family(family):
    p = cl.Pacing(family, a=0.6, b=0.1, min_size=16)
    sizes = [p.size(s, n=500, total_steps=200) for s in range(201)]
    assert all(x <= y for x, y in zip(sizes, sizes[1:]))
    assert sizes[0] >= 16 and sizes[-1] == 500


def test_pacing_rejects_bad_parameters():
    with pytest.raises(ValueError, match="unknown pacing family 'lin'"):
        cl.Pacing("lin")
    with pytest.raises(ValueError, match="a \\(fraction"):
        cl.pace_linear(0, n=N, total_steps=T, a=0.0, b=0.1)
    with pytest.raises(ValueError, match="b \\(starting"):
        cl.pace_root(0, n=N, total_steps=T, a=0.5, b=1.5)


def test_pacing_curves_table():
    df = cl.pacing_curves([cl.Pacing("linear", a=0.5, b=0.0), cl.Pacing("step", a=0.5, b=0.2)], n=200, total_steps=100, points=11)
    assert list(df.columns) == ["family", "step", "size", "fraction"]
    lin = df[df.family == "linear"].set_index("step")["size"]
    assert lin[20] == 80 and lin[50] == 200
    assert df["fraction"].between(0, 1).all()


# --- scoring on a set whose easy and hard examples are known by construction -------------------


def easy_hard_blobs(n_easy: int = 180, n_hard: int = 20, seed: int = 0):
    """Two classes split along the first axis: easy points sit far on their side, hard ones just over the wrong side."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_easy + n_hard) % 2
    side = np.where(y == 1, 1.0, -1.0)
    x = rng.normal(0, 0.3, size=(len(y), 10))
    x[:n_easy, 0] = side[:n_easy] * 3.0 + rng.normal(0, 0.2, n_easy)
    x[n_easy:, 0] = -side[n_easy:] * 0.5  # on the wrong side of the boundary
    hard = np.zeros(len(y), dtype=bool)
    hard[n_easy:] = True
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y), hard


def pair_order_auc(difficulty: np.ndarray, hard: np.ndarray) -> float:
    """Share of (easy, hard) pairs in which the hard example scores as harder."""
    e, h = difficulty[~hard], difficulty[hard]
    return float((h[None, :] > e[:, None]).mean())


@pytest.mark.parametrize(
    "score",
    [
        lambda x, y: cl.transfer_scores(x, y, steps=150, seed=0),
        lambda x, y: cl.loss_scores(x, y, hidden=(16,), steps=60, seed=0),
        lambda x, y: cl.self_taught_scores(x, y, hidden=(16,), loop=LoopConfig(steps=80, batch_size=64), seed=0),
    ],
    ids=["transfer", "loss", "self_taught"],
)
def test_scoring_ranks_constructed_hard_examples_as_harder(score):
    x, y, hard = easy_hard_blobs()
    d = score(x, y)
    assert d.shape == (len(y),)
    assert pair_order_auc(d, hard) > 0.95
    order = cl.order_examples(d, "curriculum")
    assert hard[order[: (~hard).sum() // 2]].sum() == 0, "the first half of the easy-first order holds no hard example"
    assert hard[cl.order_examples(d, "anti_curriculum")[:10]].mean() >= 0.8


def test_transfer_teacher_fitted_on_everything_still_separates_easy_from_hard():
    x, y, hard = easy_hard_blobs()
    d = cl.transfer_scores(x, y, folds=1, steps=100, seed=0)
    assert ((d >= 0) & (d <= 1)).all()  # one minus a probability
    assert d[hard].min() > d[~hard].max()


def test_flipped_share_in_hardest_hand_case():
    d = np.array([0.9, 0.1, 0.8, 0.2, 0.3])
    flipped = np.array([True, False, False, True, False])
    assert cl.flipped_share_in_hardest(d, flipped, fraction=0.4) == 0.5  # hardest two: 0 and 2
    assert cl.flipped_share_in_hardest(d, flipped, fraction=1.0) == 1.0
    with pytest.raises(ValueError, match="no flipped labels"):
        cl.flipped_share_in_hardest(d, np.zeros(5, bool), fraction=0.5)


def test_scores_are_deterministic_and_random_scores_carry_no_order():
    x, y, hard = easy_hard_blobs()
    assert np.array_equal(cl.transfer_scores(x, y, steps=100, seed=3), cl.transfer_scores(x, y, steps=100, seed=3))
    r = cl.random_scores(len(y), seed=1)
    assert np.array_equal(r, cl.random_scores(len(y), seed=1))
    assert not np.array_equal(r, cl.random_scores(len(y), seed=2))
    assert 0.3 < pair_order_auc(r, hard) < 0.7
    with pytest.raises(ValueError, match="unknown scoring 'teacher'"):
        cl.score_examples("teacher", x, y)


# --- orderings and label noise --------------------------------------------------------------


def test_orderings_on_hand_case():
    d = np.array([0.3, 0.1, 0.2])
    assert cl.order_examples(d, "curriculum").tolist() == [1, 2, 0]
    assert cl.order_examples(d, "anti_curriculum").tolist() == [0, 2, 1]
    assert cl.order_examples(d, "standard") is None
    assert sorted(cl.order_examples(d, "random_curriculum", seed=0).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown ordering"):
        cl.order_examples(d, "hard_first")


def test_class_balanced_ordering_interleaves_classes():
    d = np.array([0.9, 0.1, 0.5, 0.2])
    labels = np.array([0, 0, 1, 1])
    # within-class positions: 1 and 3 at 0.25, 2 and 0 at 0.75; ties broken by difficulty
    assert cl.order_examples(d, "curriculum", labels=labels).tolist() == [1, 3, 2, 0]
    assert cl.order_examples(d, "anti_curriculum", labels=labels).tolist() == [0, 2, 3, 1]
    # a class that is all easy cannot take the whole start of the order
    d = np.r_[np.zeros(50), np.ones(50)]
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    first = labels[cl.order_examples(d, "curriculum", labels=labels)[:20]]
    assert first.sum() == 10


def test_flip_labels_flips_exact_fraction_to_other_classes():
    y = torch.arange(1000) % 10
    noisy, mask = cl.flip_labels(y, 0.2, n_classes=10, seed=0)
    assert mask.sum().item() == 200
    assert (noisy[mask] != y[mask]).all() and (noisy[~mask] == y[~mask]).all()
    assert noisy.min() >= 0 and noisy.max() <= 9
    again, mask2 = cl.flip_labels(y, 0.2, n_classes=10, seed=0)
    assert torch.equal(noisy, again) and torch.equal(mask, mask2)
    assert not torch.equal(noisy, cl.flip_labels(y, 0.2, n_classes=10, seed=1)[0])
    assert torch.equal(cl.flip_labels(y, 0.0, seed=0)[0], y)
    assert torch.equal(y, torch.arange(1000) % 10), "the input labels stay untouched"
    with pytest.raises(ValueError, match="fraction of flipped labels"):
        cl.flip_labels(y, 1.5, seed=0)


# --- the paced trainer ----------------------------------------------------------------------


def test_paced_sampler_draws_only_from_available_prefix():
    order = np.random.default_rng(0).permutation(300)
    pacing = cl.Pacing("step", a=0.5, b=0.1, min_size=8)
    sample = cl.paced_sampler(order, pacing, total_steps=20)
    gen = torch.Generator().manual_seed(0)
    for step in range(1, 21):
        available = pacing.size(step - 1, n=300, total_steps=20)
        idx = sample(step, 64, gen)
        assert set(idx.tolist()) <= set(order[:available].tolist())
    assert pacing.size(0, n=300, total_steps=20) == 30


def test_train_paced_is_deterministic_and_records_the_final_step():
    x, y, _ = easy_hard_blobs()
    order = cl.order_examples(cl.random_scores(len(y), seed=0), "curriculum")
    loop = LoopConfig(steps=30, batch_size=32, eval_every=7)
    kw = dict(pacing=cl.Pacing("linear", a=0.5, b=0.2, min_size=32), loop=loop, hidden=(8,), seed=5)
    one = cl.train_paced(x, y, x, y, order=order, **kw)
    two = cl.train_paced(x, y, x, y, order=order, **kw)
    pd.testing.assert_frame_equal(one, two)
    assert one["step"].tolist() == [7, 14, 21, 28, 30]
    std = cl.train_paced(x, y, x, y, order=None, **kw)
    assert std["test_accuracy"].between(0, 1).all()


def _tiny_config(**changes) -> cl.Config:
    base = dict(dataset="digits", seeds=(0,), full_steps=16, limited_fraction=0.5, noise_fractions=(0.4,),
                train_subset=300, evals=2, scorer_steps=20, batch_size=32)
    return cl.Config(**{**base, **changes})


def test_experiment_is_deterministic_and_tidy(tmp_path):
    cfg = _tiny_config()
    one = cl.run(cfg, store=ResultStore(tmp_path / "a"), progress=False).curves
    cl._scored.cache_clear()  # score the examples again too, not only the training runs
    two = cl.run(cfg, store=ResultStore(tmp_path / "b"), progress=False).curves
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns) == ["regime", "ordering", "seed", "budget", "step", "test_accuracy"]
    assert set(one["regime"]) == {"full budget", "limited budget", "40% noisy labels"}
    assert one.groupby(["regime", "ordering"]).size().min() == 2  # two evaluation points per run


def test_run_loads_stored_units_and_computes_only_new_ones(tmp_path):
    store = ResultStore(tmp_path)
    first = cl.run(_tiny_config(orderings=("curriculum", "standard")), store=store, progress=False)
    assert first.report.computed == 3 * 2
    more = cl.run(_tiny_config(orderings=("curriculum", "standard", "anti_curriculum")), store=store, progress=False)
    assert more.report.computed == 3 and sum(more.report.loaded.values()) == 3 * 2
    shared = more.curves[more.curves["ordering"] != "anti_curriculum"].reset_index(drop=True)
    pd.testing.assert_frame_equal(shared.sort_values(["regime", "ordering", "step"], ignore_index=True),
                                  first.curves.sort_values(["regime", "ordering", "step"], ignore_index=True),
                                  check_dtype=False)
    assert set(first.findings()["regime"]) == {"full budget", "limited budget", "40% noisy labels"}


def test_unit_keys_follow_the_config_and_the_seed():
    keys = lambda config: [u.key for u in cl.units(config)]
    base = keys(cl.Config.quick())
    assert base == keys(cl.Config.quick()) and len(set(base)) == len(base) == 3 * 4  # regimes x orderings
    assert not set(base) & set(keys(cl.Config.quick(seeds=(1,))))
    assert set(base) < set(keys(cl.Config.quick(seeds=(0, 1))))
    for change in (dict(pacing=cl.Pacing("root")), dict(scoring="loss"), dict(lr=1e-2), dict(noise_seed=1)):
        assert not set(base) & set(keys(cl.Config.quick(**change))), change
    # a longer full budget changes the full-budget and noisy runs; the limited budget keeps its 10 steps
    longer = cl.units(cl.Config.quick(full_steps=41))
    assert [u.config["regime"] for u, k in zip(longer, base) if u.key == k] == ["limited budget"] * 4
    # another noise level adds its runs and leaves the others alone
    assert set(base) < set(keys(cl.Config.quick(noise_fractions=(0.2, 0.4))))


# --- findings from measured numbers ---------------------------------------------------------


def fake_curves(values: dict[tuple[str, str], list[float]], budget: int = 10) -> pd.DataFrame:
    rows = [
        {"regime": r, "ordering": o, "seed": s, "budget": budget, "step": budget, "test_accuracy": v}
        for (r, o), vals in values.items()
        for s, v in enumerate(vals)
    ]
    rows.append({"regime": "full budget", "ordering": "standard", "seed": 0, "budget": budget, "step": 5, "test_accuracy": 0.1})
    return pd.DataFrame(rows)


def test_compare_to_standard_respects_seed_spread():
    curves = fake_curves({
        ("full budget", "curriculum"): [0.90, 0.92],
        ("full budget", "standard"): [0.91, 0.93],
        ("limited budget", "curriculum"): [0.80, 0.82],
        ("limited budget", "standard"): [0.70, 0.72],
    })
    summary = cl.final_accuracy(curves)
    full_std = summary.set_index(["regime", "ordering"]).loc[("full budget", "standard")]
    assert full_std["mean"] == pytest.approx(0.92) and full_std["std"] == pytest.approx(0.02 / math.sqrt(2))
    comp = cl.compare_to_standard(summary).set_index("regime")
    assert comp.loc["full budget", "verdict"] == "within seed spread"
    assert comp.loc["limited budget", "verdict"] == "higher"
    assert comp.loc["limited budget", "gap"] == pytest.approx(0.10)
    assert comp.loc["limited budget", "spread"] == pytest.approx(2 * 0.02 / math.sqrt(2))


def test_a_single_seed_never_yields_a_claim():
    curves = fake_curves({("limited budget", "curriculum"): [0.9], ("limited budget", "standard"): [0.5]})
    assert cl.compare_to_standard(cl.final_accuracy(curves))["verdict"].tolist() == ["single seed"]
    finding = cl.curriculum_findings(curves).iloc[0]
    assert finding["agrees"] is None and "nothing is claimed" in finding["finding"]


def test_findings_sentences_state_numbers_and_agreement_with_reference():
    curves = fake_curves({
        ("full budget", "curriculum"): [0.90, 0.92],
        ("full budget", "standard"): [0.91, 0.93],
        ("limited budget", "curriculum"): [0.60, 0.62],
        ("limited budget", "standard"): [0.70, 0.72],
        ("20% noisy labels", "curriculum"): [0.85, 0.86],
        ("20% noisy labels", "standard"): [0.75, 0.76],
    })
    f = cl.curriculum_findings(curves).set_index("regime")
    assert f.loc["full budget", "agrees"] is True or f.loc["full budget", "agrees"] == True  # noqa: E712
    assert "is level with" in f.loc["full budget", "finding"]
    assert f.loc["limited budget", "verdict"] == "lower" and not f.loc["limited budget", "agrees"]
    assert "trails" in f.loc["limited budget", "finding"] and "do not agree" in f.loc["limited budget", "finding"]
    assert f.loc["20% noisy labels", "verdict"] == "higher" and f.loc["20% noisy labels", "agrees"]
    assert "85.5% vs 75.5%" in f.loc["20% noisy labels", "finding"]
    assert findings_markdown(cl.curriculum_findings(curves)).count("\n- ") == 2


def test_reference_file_has_citation_and_expected_verdicts():
    ref = load_reference(cl.REFERENCE)
    assert {"authors", "year", "title", "where", "claim"} <= set(ref.columns)
    assert set(ref["regime"]) == {"full budget", "limited budget", "noisy labels"}
    assert set(ref["expected_vs_standard"]) <= {"higher", "lower", "within seed spread"}


# --- config --------------------------------------------------------------------------------


def test_config_saved_as_json_beside_results(tmp_path):
    cfg = cl.Config(seeds=(1, 2), full_steps=50, pacing=cl.Pacing("root", a=0.5, b=0.1))
    assert [r[:2] for r in cfg.regimes] == [("full budget", 50), ("limited budget", 4), ("20% noisy labels", 50), ("40% noisy labels", 50)]
    curves = fake_curves({("full budget", "standard"): [0.5]})
    out = cl.CurriculumResults(cfg, {"curves": curves}).save(tmp_path / "res")
    saved = read_json(out / "curriculum.config.json")
    assert saved == to_jsonable(cfg) and saved["pacing"]["family"] == "root" and saved["seeds"] == [1, 2]
    assert len(pd.read_csv(out / "curriculum_curves.csv")) == len(curves)
    tables, config = load_results(out, "curriculum")
    pd.testing.assert_frame_equal(tables["curves"], curves)
    assert config == saved
    quick = cl.Config.quick(pacing=cfg.pacing)
    assert quick.full_steps == 40 and quick.seeds == (0,) and quick.pacing == cfg.pacing
    assert [r[0] for r in quick.regimes] == ["full budget", "limited budget", "20% noisy labels"]
    with pytest.raises(ValueError, match="unknown orderings"):
        cl.Config(orderings=("curriculum", "shuffled"))
    with pytest.raises(ValueError, match="unknown scoring"):
        cl.Config(scoring="teacher")
    with pytest.raises(ValueError, match="at least one seed"):
        cl.Config.quick(seeds=())


# --- figures -------------------------------------------------------------------------------


def test_pacing_slider_precomputes_every_parameter_pair():
    from paperlib.experiments.curriculum.figures import plot_pacing_slider

    fig = plot_pacing_slider(n=100, total_steps=50, a_values=(0.5, 1.0), b_values=(0.0, 0.2), points=11).to_dict()
    assert len(fig["data"]) == len(cl.PACING_FAMILIES)
    steps = fig["layout"]["sliders"][0]["steps"]
    assert [s["label"] for s in steps] == ["a=0.5, b=0", "a=0.5, b=0.2", "a=1, b=0", "a=1, b=0.2"]
    lin = steps[0]["args"][0]["y"][0]  # linear, a=0.5, b=0: reaches 1 at step 25 of 50
    assert lin[0] == pytest.approx(0.01) and lin[5] == pytest.approx(1.0)
    started = plot_pacing_slider(n=100, total_steps=50, a_values=(0.5, 1.0), b_values=(0.0, 0.2), points=11, start=(1.0, 0.0))
    assert started.layout.sliders[0].active == 2


def test_pacing_explorer_redraws_on_slider_change():
    from paperlib.experiments.curriculum.figures import pacing_explorer

    box = pacing_explorer(n=100, total_steps=50, a=0.5, b=0.2)
    sa, sb, fam = box.children[0].children
    fig = box.children[2]
    sb.value = 0.4
    expected = cl.pacing_curves([cl.Pacing("linear", a=0.5, b=0.4)], n=100, total_steps=50)["fraction"].to_numpy()
    assert np.allclose(fig.data[0].y, expected)
    fam.value = "quad"
    assert fig.data[1].opacity == 1.0 and fig.data[0].opacity < 1.0


def test_result_figures_carry_the_numbers():
    from paperlib.experiments.curriculum.figures import plot_accuracy_curves, plot_final_accuracy

    curves = fake_curves({
        ("full budget", "curriculum"): [0.90, 0.92],
        ("full budget", "standard"): [0.91, 0.93],
        ("limited budget", "curriculum"): [0.60, 0.62],
        ("limited budget", "standard"): [0.70, 0.72],
    })
    bars = plot_final_accuracy(cl.final_accuracy(curves)).to_dict()
    cur = next(t for t in bars["data"] if t["name"] == "curriculum")
    assert list(cur["x"]) == ["full budget", "limited budget"] and list(cur["y"]) == pytest.approx([0.91, 0.61])
    lines = plot_accuracy_curves(curves).to_dict()
    buttons = lines["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons] == ["full budget", "limited budget"]
    assert sum(buttons[1]["args"][0]["visible"]) == 2
    assert [t.get("visible") for t in lines["data"]] == [True, True, False, False]


# --- the notebook --------------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_quick_run_writes_tidy_results_and_config(tmp_path_factory):
    from notebook_runs import quick_run
    from paperlib.paths import notebooks_dir

    path = notebooks_dir() / "20_curriculum_pacing.ipynb"
    result = quick_run(path, tmp_path_factory)
    assert result.status == "ok", f"failed at {result.failing_cell}: {result.error}"
    out = tmp_path_factory.getbasetemp() / "quick-runs" / "results" / path.stem
    tables, config = load_results(out, "curriculum")
    curves = tables["curves"]
    assert set(curves["ordering"]) == set(cl.ORDERINGS)
    assert curves["test_accuracy"].between(0, 1).all()
    assert config["full_steps"] == 40 and len(config["seeds"]) == 1
