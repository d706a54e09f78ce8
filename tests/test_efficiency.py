"""Pruning, quantisation and delta editing checked by hand on tiny tensors; the claim checks on
hand-made tables; a tiny end-to-end run that is deterministic."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from tiny import blobs
from torch import nn

from paperlib.experiments.efficiency.experiment import (
    DARE,
    DENSE,
    FINETUNED,
    FLOAT32,
    ONE_SHOT,
    PER_CHANNEL,
    PER_TENSOR,
    PRE,
    REINIT,
    TICKET,
    Config,
    apply_masks,
    dare,
    delta_gain_kept,
    delta_rows,
    efficiency_findings,
    eight_bit_verdict,
    full_masks,
    keep_fraction,
    layer_rates,
    linear_weights,
    lottery_verdict,
    magnitude_delta,
    magnitude_prune,
    model_size_bits,
    n_pruned,
    per_channel_verdict,
    pruning_rows,
    quantisation_rows,
    quantise,
    quantise_delta,
    rewind,
    sign_delta,
    top_magnitude_mask,
    train_masked,
    units,
)
from paperlib.experiments.training import LoopConfig, make_mlp, train_loop

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W = torch.tensor([[0.9, -0.3, 0.05], [0.2, -0.12, 0.14]])


def _close(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- quantisation


def test_quantise_3_bits_per_tensor_by_hand():
    # symmetric uniform, q = 2**(3-1) - 1 = 3 levels each side; one scale s = max|w| / 3 = 0.3
    # w / s = [[3, -1, 0.17], [0.67, -0.4, 0.47]] -> round -> [[3, -1, 0], [1, 0, 0]]
    _close(quantise(W, 3, PER_TENSOR), [[0.9, -0.3, 0.0], [0.3, 0.0, 0.0]])


def test_quantise_3_bits_per_channel_by_hand():
    # row 0: s = 0.9 / 3 = 0.3, as above; row 1: s = 0.2 / 3, w / s = [3, -1.8, 2.1] -> [3, -2, 2]
    s1 = 0.2 / 3
    _close(quantise(W, 3, PER_CHANNEL), [[0.9, -0.3, 0.0], [3 * s1, -2 * s1, 2 * s1]])


def test_quantise_2_bits_is_ternary():
    # q = 1: levels -s, 0, s. Per tensor s = 0.9: only 0.9 survives; per channel row 1 s = 0.2:
    # w / s = [1, -0.6, 0.7] -> [1, -1, 1]
    _close(quantise(W, 2, PER_TENSOR), [[0.9, 0.0, 0.0], [0.0, 0.0, 0.0]])
    _close(quantise(W, 2, PER_CHANNEL), [[0.9, 0.0, 0.0], [0.2, -0.2, 0.2]])


def test_quantise_error_bound_zero_rows_and_bad_input():
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    w[3] = 0.0
    for g in (PER_TENSOR, PER_CHANNEL):
        out = quantise(w, 8, g)
        scale = (w.abs().max() if g == PER_TENSOR else w.abs().amax(1, keepdim=True)) / 127
        assert torch.all((out - w).abs() <= scale / 2 + 1e-7)
        assert torch.all(out[3] == 0)
    assert torch.count_nonzero(quantise(w, 8, PER_CHANNEL) - w) > 0
    with pytest.raises(ValueError):
        quantise(w, 1)
    with pytest.raises(ValueError):
        quantise(w, 4, "per block")


def test_model_size_by_hand():
    model = nn.Sequential(nn.Linear(3, 2))  # 6 weights, 2 biases
    assert model_size_bits(model) == 32 * 8
    assert model_size_bits(model, 4, PER_TENSOR) == 4 * 6 + 32 + 32 * 2
    assert model_size_bits(model, 4, PER_CHANNEL) == 4 * 6 + 32 * 2 + 32 * 2


# --------------------------------------------------------------------------- pruning


def test_n_pruned_rounds_halves_up():
    assert [n_pruned(n, 0.2) for n in (10, 8, 6, 5, 0)] == [2, 2, 1, 1, 0]
    assert n_pruned(5, 0.1) == 1  # 0.5 rounds up


def test_magnitude_prune_removes_the_smallest_and_keeps_the_right_count():
    w = torch.tensor([0.5, -0.1, 0.3, 0.05, -0.9, 0.2, 0.0, 0.7, -0.4, 0.6])
    mask = magnitude_prune(w, torch.ones(10, dtype=torch.bool), 0.2)
    assert int(mask.sum()) == 8
    assert not mask[6] and not mask[3]  # |0.0| and |0.05| are the two smallest
    assert top_magnitude_mask(w, 3).nonzero().flatten().tolist() == [4, 7, 9]


def test_iterative_pruning_never_revives_and_keeps_exact_share():
    gen = torch.Generator().manual_seed(1)
    mask = torch.ones(40, 25, dtype=torch.bool)
    expected = mask.numel()
    for _ in range(6):
        w = torch.randn(40, 25, generator=gen) * 10  # new weights, large where pruned too
        new = magnitude_prune(w, mask, 0.2)
        expected -= n_pruned(expected, 0.2)
        assert int(new.sum()) == expected
        assert not torch.any(new & ~mask)  # a pruned weight never comes back
        kept_vals = w[new].abs()
        dropped_now = w[mask & ~new].abs()
        assert kept_vals.min() >= dropped_now.max()  # the smallest of the survivors went
        mask = new


def test_layer_rates_halve_the_output_layer():
    model = make_mlp(4, (6, 5), 3, seed=0)
    rates = layer_rates(model, 0.2, 0.1)
    assert list(rates.values()) == [0.2, 0.2, 0.1]
    assert list(rates) == list(linear_weights(model))


def test_rewind_resets_survivors_to_initial_values():
    data = blobs()
    model = make_mlp(4, (8,), 3, seed=0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    train_loop(model, data.x_train, data.y_train, LoopConfig(steps=20, batch_size=16, lr=1e-2), seed=0)
    masks = {n: magnitude_prune(w, m, 0.5) for (n, w), m in zip(linear_weights(model).items(), full_masks(model).values())}
    rewind(model, initial, masks)
    for name, param in model.state_dict().items():
        if name in masks:
            assert torch.equal(param[masks[name]], initial[name][masks[name]])
            assert torch.all(param[~masks[name]] == 0)
        else:  # biases go back to their initial values too
            assert torch.equal(param, initial[name])


def test_masked_training_keeps_pruned_weights_at_zero():
    data = blobs()
    model = make_mlp(4, (8,), 3, seed=0)
    masks = {n: magnitude_prune(w, torch.ones_like(w, dtype=torch.bool), 0.6) for n, w in linear_weights(model).items()}
    apply_masks(model, masks)
    before = {n: w.detach().clone() for n, w in linear_weights(model).items()}
    train_masked(model, masks, data.x_train, data.y_train, LoopConfig(steps=30, batch_size=16, lr=1e-2), seed=0)
    for n, w in linear_weights(model).items():
        assert torch.all(w[~masks[n]] == 0)
        assert not torch.equal(w[masks[n]], before[n][masks[n]])  # the survivors did train
    assert keep_fraction(masks) == pytest.approx(sum(int(m.sum()) for m in masks.values()) / (4 * 8 + 8 * 3))


# --------------------------------------------------------------------------- delta editing


def test_dare_keeps_the_expectation():
    delta = {"w": torch.full((200, 500), 0.3)}
    out = dare(delta, 0.2, seed=0)["w"]
    kept = out != 0
    assert torch.allclose(out[kept], torch.tensor(1.5))  # dropped, or kept and divided by 0.2
    assert float((out != 0).float().mean()) == pytest.approx(0.2, abs=0.005)
    # E[dare] = delta: per entry sd is 0.3 * sqrt(1/0.2 - 1) = 0.6, so the mean of 1e5 entries is within 0.01
    assert float(out.mean()) == pytest.approx(0.3, abs=0.01)
    small = {"w": torch.tensor([1.0, -2.0, 0.5])}
    avg = torch.stack([dare(small, 0.25, seed=s)["w"] for s in range(4000)]).mean(0)
    assert avg.tolist() == pytest.approx([1.0, -2.0, 0.5], abs=0.15)


def test_dare_is_seeded_and_rescale_optional():
    delta = {"a": torch.linspace(-1, 1, 50), "b": torch.ones(3, 4)}
    one, two, other = dare(delta, 0.5, seed=3), dare(delta, 0.5, seed=3), dare(delta, 0.5, seed=4)
    assert all(torch.equal(one[k], two[k]) for k in delta)
    assert not torch.equal(one["a"], other["a"])
    plain = dare(delta, 0.5, seed=3, rescale=False)
    kept = one["a"] != 0
    assert torch.equal(plain["a"][kept], delta["a"][kept]) and torch.equal(one["a"][kept], 2 * delta["a"][kept])
    with pytest.raises(ValueError):
        dare(delta, 0.0, seed=0)


def test_magnitude_sign_and_quantised_delta_by_hand():
    delta = {"w": torch.tensor([0.4, -0.1, 0.05, -0.8])}
    assert magnitude_delta(delta, 0.5)["w"].tolist() == pytest.approx([0.4, 0.0, 0.0, -0.8])
    # mean |delta| = (0.4 + 0.1 + 0.05 + 0.8) / 4 = 0.3375
    assert sign_delta(delta)["w"].tolist() == pytest.approx([0.3375, -0.3375, 0.3375, -0.3375])
    # 2 bits per tensor: s = 0.8, delta / s = [0.5, -0.125, 0.06, -1] -> [0 (half to even), 0, 0, -1]
    assert quantise_delta(delta, 2)["w"].tolist() == pytest.approx([0.0, 0.0, 0.0, -0.8])


# --------------------------------------------------------------------------- claim checks on hand-made tables


def _pruning_table(ticket: dict, reinit: dict, spread: float = 0.002) -> pd.DataFrame:
    rows = []
    for seed, jitter in enumerate((-spread, 0.0, spread)):
        rows.append(dict(method=DENSE, seed=seed, round=0, keep_fraction=1.0, metric="test accuracy", value=0.95 + jitter))
        for r, acc in ticket.items():
            rows.append(dict(method=TICKET, seed=seed, round=r, keep_fraction=0.8 ** r, metric="test accuracy", value=acc + jitter))
        for r, acc in reinit.items():
            for m in (REINIT, ONE_SHOT):
                rows.append(dict(method=m, seed=seed, round=r, keep_fraction=0.8 ** r, metric="test accuracy",
                                 value=acc + jitter * (1 + r / 10)))
    return pd.DataFrame(rows)


def test_lottery_claim_holds_when_reinit_drops_and_tickets_stay():
    df = _pruning_table({r: 0.95 for r in range(1, 13)} | {13: 0.93}, {3: 0.95, 6: 0.93, 9: 0.90, 12: 0.85})
    v = lottery_verdict(df, small_share=0.2, negligible=0.005)
    assert v["verdict"] == "holds"
    assert v["smallest_ticket"] == pytest.approx(0.8 ** 12) and v["smallest_reinit"] == pytest.approx(0.8 ** 3)


def test_lottery_claim_fails_when_reinit_does_as_well_or_tickets_drop():
    same = _pruning_table({r: 0.95 for r in range(1, 13)}, {3: 0.95, 6: 0.95, 9: 0.95, 12: 0.95})
    assert lottery_verdict(same)["verdict"] == "fails"
    both_drop = _pruning_table({r: 0.95 if r < 5 else 0.90 for r in range(1, 13)}, {3: 0.95, 6: 0.88, 9: 0.85, 12: 0.8})
    assert lottery_verdict(both_drop)["verdict"] == "fails"
    one_seed = _pruning_table({r: 0.95 for r in range(1, 13)}, {3: 0.9, 12: 0.8})
    assert lottery_verdict(one_seed[one_seed["seed"] == 0])["verdict"] == "unresolved"


def _quant_table(acc: dict) -> pd.DataFrame:
    rows = []
    for seed, jitter in enumerate((-0.001, 0.0, 0.002)):
        for (method, bits), value in acc.items():
            rows.append(dict(method=method, seed=seed, bits=bits, metric="test accuracy", value=value + jitter))
    return pd.DataFrame(rows)


def test_quantisation_claims_on_hand_made_tables():
    table = _quant_table({(FLOAT32, 32): 0.95, (PER_TENSOR, 8): 0.949, (PER_CHANNEL, 8): 0.95,
                          (PER_TENSOR, 4): 0.90, (PER_CHANNEL, 4): 0.94})
    assert eight_bit_verdict(table)["verdict"] == "holds"
    assert per_channel_verdict(table, 4)["verdict"] == "holds"
    worse = _quant_table({(FLOAT32, 32): 0.95, (PER_TENSOR, 8): 0.90, (PER_CHANNEL, 8): 0.95,
                          (PER_TENSOR, 4): 0.94, (PER_CHANNEL, 4): 0.94})
    assert eight_bit_verdict(worse)["verdict"] == "fails"
    assert per_channel_verdict(worse, 4)["verdict"] == "unresolved"  # equal: not shown either way


def test_delta_gain_kept_by_hand():
    rows = []
    for seed, jitter in enumerate((-0.01, 0.01)):
        for flr, ft in ((1e-4, 0.7), (1e-3, 0.9)):
            rows.append(dict(method=PRE, seed=seed, finetune_lr=flr, keep_fraction=0.0, bits=32.0, metric="test accuracy",
                             value=0.5 + jitter))
            rows.append(dict(method=FINETUNED, seed=seed, finetune_lr=flr, keep_fraction=1.0, bits=32.0,
                             metric="test accuracy", value=ft + jitter))
            rows.append(dict(method=FINETUNED, seed=seed, finetune_lr=flr, keep_fraction=1.0, bits=32.0,
                             metric="mean |delta|", value=0.01))
            for keep, share in ((0.5, 0.75), (0.1, -0.5)):
                rows.append(dict(method=DARE, seed=seed, finetune_lr=flr, keep_fraction=keep, bits=32.0,
                                 metric="test accuracy", value=0.5 + share * (ft - 0.5) + jitter))
    table = delta_gain_kept(pd.DataFrame(rows)).set_index("share of delta kept")
    assert list(table.index) == [0.5, 0.1] and list(table.columns) == ["fine-tuning lr 0.0001", "fine-tuning lr 0.001"]
    assert table.to_numpy().tolist() == [[pytest.approx(0.75), pytest.approx(0.75)], [pytest.approx(-0.5), pytest.approx(-0.5)]]


# --------------------------------------------------------------------------- end to end


def _tiny() -> Config:
    return Config.quick(hidden=(8,), steps=40, batch_size=16, lr=1e-2, rounds=3, baseline_every=2,
                        pretrain_classes=2, finetune_steps=20, delta_keep=(0.5, 0.1), bits=(8, 2), delta_bits=(4,))


def test_pruning_rows_shape_and_determinism():
    data, cfg = blobs(), _tiny()
    one, two = pruning_rows(cfg, data, 0), pruning_rows(cfg, data, 0)
    pd.testing.assert_frame_equal(one, two)
    acc = one[one["metric"] == "test accuracy"]
    assert set(acc["method"]) == {DENSE, TICKET, REINIT, ONE_SHOT}
    assert sorted(acc.loc[acc["method"] == TICKET, "round"]) == [1, 2, 3]
    assert sorted(acc.loc[acc["method"] == REINIT, "round"]) == [2, 3]  # every 2nd round and the last
    kept = one[one["metric"] == "weights kept"].set_index(["method", "round"])["value"]
    # hidden 4x8 = 32 weights at 20% per round: 26, 21, 17; output 8x3 = 24 at 10%: 22, 20, 18
    assert [kept[(TICKET, r)] for r in (1, 2, 3)] == [26 + 22, 21 + 20, 17 + 18]
    assert kept[(ONE_SHOT, 3)] == kept[(TICKET, 3)] == kept[(REINIT, 3)]
    assert one.loc[one["method"] == DENSE, "keep_fraction"].eq(1.0).all()


def test_quantisation_and_delta_rows():
    data, cfg = blobs(), _tiny()
    q = quantisation_rows(cfg, data, 0)
    assert set(q["bits"]) == {32, 8, 2} and set(q["method"]) == {FLOAT32, PER_TENSOR, PER_CHANNEL}
    size = q[q["metric"] == "size (KiB)"].set_index(["method", "bits"])["value"]
    assert size[(FLOAT32, 32)] > size[(PER_CHANNEL, 8)] > size[(PER_TENSOR, 8)] > size[(PER_TENSOR, 2)]
    d = delta_rows(cfg, data, 0)
    pd.testing.assert_frame_equal(d, delta_rows(cfg, data, 0))
    assert {"method", "seed", "finetune_lr", "keep_fraction", "bits", "metric", "value"} <= set(d.columns)
    assert set(d.loc[d["method"] == DARE, "keep_fraction"]) == {0.5, 0.1}


def test_units_are_plain_json_and_parts_are_independent():
    cfg = _tiny()
    us = units(cfg)
    assert [u.config["part"] for u in us] == ["pruning", "quantisation", "delta"]
    for u in us:
        json.dumps(u.config)
    changed = units(Config.quick(**{**cfg.__dict__, "delta_keep": (0.3,)}))
    assert [u.key for u in changed[:2]] == [u.key for u in us[:2]] and changed[2].key != us[2].key


def test_findings_on_tiny_tables():
    data, cfg = blobs(), _tiny()
    tables = [pd.concat([f(cfg, data, s) for s in (0, 1)]) for f in (pruning_rows, quantisation_rows, delta_rows)]
    out = efficiency_findings(*tables)
    assert list(out.columns) == ["key", "verdict", "finding"]
    assert {"lottery_ticket", "eight_bit", "per_channel_4bit"} - set(out["key"]) == {"per_channel_4bit"}  # no 4-bit run
    assert set(out["verdict"]) <= {"holds", "fails", "unresolved", "measured", "reference"}
    assert not out["finding"].str.contains("nan").any()
