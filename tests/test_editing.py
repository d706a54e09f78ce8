"""Task vectors, SSD's importance and dampening rule by hand; scale selection; a tiny end-to-end run."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from tiny import blobs
from torch import nn

from paperlib.experiments.editing.experiment import (
    Config,
    apply_vector,
    batch_importance,
    choose_addition_scale,
    choose_negation_scale,
    combine,
    editing_findings,
    editing_rows,
    run,
    ssd_dampen,
    task_vector,
    units,
)
from paperlib.store import ResultStore


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear(weight, bias=None) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def test_task_vector_roundtrip_and_original_untouched():
    pre, ft = _linear([[1.0, 2.0]], [0.5]), _linear([[1.5, 1.0]], [0.0])
    tau = task_vector(ft, pre)
    assert tau["weight"].tolist() == [[0.5, -1.0]] and tau["bias"].tolist() == [-0.5]
    back = apply_vector(pre, tau, 1.0)
    assert torch.equal(back.weight, ft.weight) and torch.equal(back.bias, ft.bias)
    neg = apply_vector(pre, tau, -2.0)
    assert neg.weight.tolist() == [[0.0, 4.0]]
    assert pre.weight.tolist() == [[1.0, 2.0]]  # apply_vector works on a copy


def test_task_vector_rejects_other_architectures():
    with pytest.raises(ValueError, match="does not match"):
        task_vector(_linear([[1.0, 2.0, 3.0]]), _linear([[1.0, 2.0]]))


def test_combine_by_hand():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([10.0, -1.0])}
    assert combine([a, b], [1.0, -0.5])["w"].tolist() == [-4.0, 2.5]
    with pytest.raises(ValueError):
        combine([a, b], [1.0])


def test_batch_importance_by_hand():
    model = _linear([[0.0], [math.log(3.0)]])  # logits (0, log 3) for x = 1: softmax (1/4, 3/4)
    x = torch.tensor([[1.0], [2.0]])
    y = torch.tensor([0, 0])
    imp = batch_importance(model, x, y, batch_size=1)
    # batch 1 (x=1): logits (0, log3), dL/dz = (p0 - 1, p1) = (-3/4, 3/4), dL/dw = dL/dz * x
    # batch 2 (x=2): logits (0, 2 log3) -> softmax (1/10, 9/10); dL/dz = (-9/10, 9/10), times x = 2
    e0 = ((0.75 * 1) ** 2 + (0.9 * 2) ** 2) / 2
    assert imp["weight"].flatten().tolist() == pytest.approx([e0, e0], rel=1e-5)


def test_ssd_dampen_rule_by_hand():
    model = _linear([[1.0, 2.0, 3.0, 4.0]])
    imp_f = {"weight": torch.tensor([[50.0, 5.0, 200.0, 0.0]])}
    imp_d = {"weight": torch.tensor([[2.0, 1.0, 10.0, 0.0]])}
    out, n = ssd_dampen(model, imp_f, imp_d, alpha=10.0, lam=1.0)
    # 50 > 20: beta = 2/50; 5 <= 10: kept; 200 > 100: beta = 10/200; 0 > 0 false: kept
    assert out.weight.flatten().tolist() == pytest.approx([1.0 * 2 / 50, 2.0, 3.0 * 10 / 200, 4.0])
    assert n == 2
    assert model.weight.flatten().tolist() == [1.0, 2.0, 3.0, 4.0]
    # lambda large enough: beta capped at 1, nothing changes though parameters are selected
    out2, n2 = ssd_dampen(model, imp_f, imp_d, alpha=10.0, lam=100.0)
    assert torch.equal(out2.weight, model.weight) and n2 == 2
    with pytest.raises(ValueError):
        ssd_dampen(model, imp_f, imp_d, alpha=0.0)


def _sweep_rows():
    rows = []
    # seed 0: control val 0.9 at scale 0; scale 1 keeps 0.86 (>= 0.855), scale 2 drops to 0.5
    for s, tgt, ctl in ((0.0, 0.95, 0.9), (1.0, 0.3, 0.86), (2.0, 0.0, 0.5)):
        for split in ("val", "test"):
            rows.append(dict(seed=0, experiment="negation", method="task negation", scale=s, split=split, metric="target accuracy", value=tgt))
            rows.append(dict(seed=0, experiment="negation", method="task negation", scale=s, split=split, metric="control accuracy", value=ctl))
    return pd.DataFrame(rows)


def test_choose_negation_scale_keeps_control():
    chosen = choose_negation_scale(_sweep_rows(), keep=0.95)
    picked = chosen[chosen["metric"] == "target accuracy"]
    assert picked["scale"].tolist() == [1.0] and picked["value"].tolist() == [0.3]


def test_choose_addition_scale_uses_added_tasks_only():
    rows = []
    for s, a, c in ((0.0, 0.1, 0.99), (1.0, 0.8, 0.5)):
        for split in ("val", "test"):
            rows.append(dict(seed=0, experiment="addition", method="task addition", scale=s, split=split, metric="permuted-2 accuracy", value=a))
            rows.append(dict(seed=0, experiment="addition", method="task addition", scale=s, split=split, metric="permuted-1 accuracy", value=c))
    chosen = choose_addition_scale(pd.DataFrame(rows))
    assert set(chosen["scale"]) == {1.0}


def _tiny_data(n: int = 150, seed: int = 0):
    return blobs(n, noise=0.1, seed=seed)


def _run_tiny(config: Config) -> pd.DataFrame:
    """Every seed's rows on the tiny blobs (a run on a named data set goes through `run`)."""
    data = _tiny_data()
    return pd.concat([editing_rows(config, data, seed) for seed in config.seeds], ignore_index=True)


def test_editing_rows_tiny_are_deterministic_and_findings_render():
    cfg = Config(seeds=(0, 1), hidden=(8,), pretrain_steps=40, finetune_steps=10, batch_size=32,
                 forget_class=1, scales=(0.0, 1.0), n_added_tasks=1)
    a, b = _run_tiny(cfg), _run_tiny(cfg)
    cols = [c for c in a.columns]
    timeless = lambda d: d[d["metric"] != "seconds"].reset_index(drop=True)[cols]
    pd.testing.assert_frame_equal(timeless(a), timeless(b))
    assert set(a["experiment"]) == {"negation", "addition", "unlearning"}
    findings = editing_findings(a)
    assert len(findings) >= 5 and findings["finding"].str.len().min() > 20


def test_run_stores_each_seed_and_loads_it_back(tmp_path):
    config = Config.quick(dataset="digits", hidden=(8,), pretrain_steps=20, finetune_steps=5, scales=(0.0, 1.0),
                          n_added_tasks=1)
    store = ResultStore(tmp_path)
    first = run(config, store=store, progress=False)
    rows = first["editing"]
    assert set(rows["seed"]) == {0} and set(rows["experiment"]) == {"negation", "addition", "unlearning"}
    assert first.report.computed == 1
    again = run(config, store=store, progress=False)
    assert again.report.computed == 0
    timeless = lambda d: d[d["metric"] != "seconds"].reset_index(drop=True)
    pd.testing.assert_frame_equal(timeless(again["editing"]), timeless(rows), check_dtype=False)


def test_unit_keys_follow_the_config_and_the_seed():
    keys = lambda config: [u.key for u in units(config)]
    base = keys(Config.quick())
    assert base == keys(Config.quick()) and len(base) == 1
    assert keys(Config.quick(seeds=(0, 1)))[0] == base[0]  # another seed adds a unit, the first stays
    assert keys(Config.quick(seeds=(1,)))[0] != base[0]
    for change in (dict(forget_class=3), dict(scales=(0.0, 1.0)), dict(ssd_alpha=5.0), dict(dataset="digits")):
        assert keys(Config.quick(**change))[0] != base[0], change


def test_figures_from_a_tiny_run():
    from paperlib.experiments.editing.figures import plot_addition, plot_negation, plot_unlearning

    cfg = Config(seeds=(0,), hidden=(8,), pretrain_steps=30, finetune_steps=10, batch_size=32,
                 forget_class=1, scales=(0.0, 1.0), n_added_tasks=1)
    df = _run_tiny(cfg)
    neg = plot_negation(df, choose_negation_scale(df)).to_dict()
    assert [t["name"] for t in neg["data"]] == ["target accuracy", "control accuracy"]
    assert _arr(neg["data"][0]["x"]) == [0.0, 1.0]
    add = plot_addition(df).to_dict()
    assert len(add["data"]) == 2  # the pretraining task and one added task
    un = plot_unlearning(df).to_dict()
    assert [t["name"] for t in un["data"]] == ["forget accuracy", "retain accuracy", "seconds"]
    assert un["layout"]["yaxis2"]["type"] == "log"


def _arr(v):
    """A figure dict's array: plotly may store numbers as base64 typed arrays ({'dtype', 'bdata'})."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)
