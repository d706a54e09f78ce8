"""LoRA checked by hand on tiny models: exact at initialisation, merging keeps the outputs, only A
and B train, parameter counts; effective ranks of small matrices by hand; the text domains; the
claim checks on hand-made tables; a tiny end-to-end run that is deterministic."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from paperlib.experiments.adaptation import experiment as ad
from paperlib.experiments.adaptation.lora import (
    LoRALinear,
    add_lora,
    effective_rank,
    energy_rank,
    lora_modules,
    lora_parameter_count,
    merge_lora,
    target_weights,
    trainable_parameters,
)
from paperlib.experiments.lm import LMConfig, TinyLM, count_parameters
from paperlib.experiments.training import LoopConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(seed: int = 0, n_layer: int = 2, d_model: int = 32) -> TinyLM:
    return TinyLM(LMConfig(vocab_size=11, block_size=12, n_layer=n_layer, n_head=4, d_model=d_model), seed=seed)


def _tokens(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- LoRA


def test_lora_at_initialisation_is_exactly_the_base_model():
    base = _model()
    adapted = add_lora(base, rank=4, alpha=8.0, seed=3)
    assert len(lora_modules(adapted)) == 8  # 4 linear layers in each of 2 blocks
    x = _tokens()
    assert torch.equal(adapted(x), base(x))
    for m in lora_modules(adapted).values():
        assert torch.equal(m.B, torch.zeros_like(m.B)) and m.A.abs().sum() > 0


def test_merging_the_adapter_gives_the_same_outputs():
    adapted = add_lora(_model(), rank=3, alpha=6.0, seed=1)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in lora_modules(adapted).values():
            m.B.copy_(torch.randn(m.B.shape, generator=gen) * 0.1)
    merged = merge_lora(adapted)
    assert not lora_modules(merged)
    assert all(type(m) is nn.Linear for n, m in merged.named_modules() if n.endswith(("qkv", "proj", "mlp.0", "mlp.2")))
    x = _tokens(1)
    out_a, out_m = adapted(x), merged(x)
    assert not torch.allclose(out_a, _model()(x), atol=1e-4)  # the adapter does change the model
    torch.testing.assert_close(out_m, out_a, atol=1e-5, rtol=1e-5)
    # the merged weight is W0 + (alpha / r) B A
    m = lora_modules(adapted)["blocks.0.mlp.2"]
    torch.testing.assert_close(merged.get_submodule("blocks.0.mlp.2").weight, m.base.weight + 2.0 * m.B @ m.A)
    torch.testing.assert_close(target_weights(adapted)["blocks.0.mlp.2"], target_weights(merged)["blocks.0.mlp.2"])


def test_only_a_and_b_train():
    base = _model()
    adapted = add_lora(base, rank=2, alpha=4.0, seed=0)
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith((".A", ".B")) for n in trainable)
    frozen = {n: p.detach().clone() for n, p in adapted.named_parameters() if not p.requires_grad}
    before = {n: p.detach().clone() for n, p in adapted.named_parameters() if p.requires_grad}
    x = _tokens(2)
    opt = torch.optim.Adam([p for p in adapted.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = nn.functional.cross_entropy(adapted(x[:, :-1]).reshape(-1, 11), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in adapted.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
        else:
            assert not torch.equal(p, before[n]), n
    # the base model passed in is untouched and still trainable
    assert all(p.requires_grad for p in base.parameters())


def test_trainable_parameter_counts_by_hand():
    layer = LoRALinear(nn.Linear(5, 3), rank=2, alpha=2.0, seed=0)
    assert trainable_parameters(layer) == 2 * (5 + 3) == 16
    assert lora_parameter_count([(3, 5)], 2) == 16
    # d_model 32: qkv 32->96, proj 32->32, MLP 32->128 and 128->32; r (in + out) each
    per_block = 2 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32))
    assert per_block == 1024
    assert trainable_parameters(add_lora(_model(n_layer=2), rank=2, alpha=4.0, seed=0)) == 2 * per_block
    model = _model()
    assert trainable_parameters(model) == count_parameters(model)
    with pytest.raises(ValueError):
        LoRALinear(nn.Linear(5, 3), rank=0, alpha=1.0, seed=0)


# --------------------------------------------------------------------------- effective rank


def test_effective_rank_by_hand():
    # Roy & Vetterli: singular values (3, 1, 0) -> p = (0.75, 0.25), H = -(0.75 ln 0.75 + 0.25 ln 0.25)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0, 0.0]))) == pytest.approx(math.exp(h), abs=1e-12)
    assert math.exp(h) == pytest.approx(1.75476, abs=1e-5)
    assert effective_rank(torch.eye(4) * 2.5) == pytest.approx(4.0)  # k equal singular values -> k
    assert effective_rank(torch.outer(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.0, 1.0]))) == pytest.approx(1.0)
    assert effective_rank(torch.zeros(3, 3)) == 0.0
    # the same spectrum rotated: singular values decide, not the basis
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert effective_rank(q @ torch.diag(torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64)) @ q.T) == pytest.approx(math.exp(h))


def test_energy_rank_by_hand():
    m = torch.diag(torch.tensor([3.0, 1.0, 0.0]))  # energies 9, 1, 0 of 10
    assert energy_rank(m, share=0.9) == 1
    assert energy_rank(m, share=0.95) == 2
    assert energy_rank(m, share=1.0) == 2
    assert energy_rank(torch.zeros(2, 2)) == 0
    with pytest.raises(ValueError):
        energy_rank(m, share=0.0)


# --------------------------------------------------------------------------- text domains


def test_normalise_cut_split_and_encode():
    assert ad.normalise("café\tx\r\ny\x07") == "cafe    x\ny"
    pieces = ad.cut_pieces(["aa\nbb\ncc\ndd", "eeee"], min_chars=5)
    assert pieces == ["aa\nbb", "cc\ndd", "eeee"]
    split = ad.split_pieces([str(i) for i in range(20)])
    assert split["test"] == "9\n19" and split["valid"] == "8\n18"
    assert split["train"].split("\n") == [str(i) for i in range(20) if i % 10 < 8]
    text = "def f(x):\n    return x ~ 1"
    assert ad.encode(text).tolist() == ad.VOCAB.encode(text)
    with pytest.raises(ValueError):
        ad.encode("é")


def test_domains_are_disjoint_and_deterministic():
    old = ad.domain_splits(ad.OLD, ad.PYTHON_MODULES, 2000)
    new = ad.domain_splits(ad.NEW, ad.PYTHON_MODULES, 2000)
    for d in (old, new):
        assert len(d["train"]) > 5 * len(d["test"]) > 0 and len(d["valid"]) > 0
    text = ad.VOCAB.decode(new["test"][:2000].tolist())
    assert "def " in text or "class " in text or "import " in text
    ad.domain_splits.cache_clear()
    assert torch.equal(ad.domain_splits(ad.NEW, ad.PYTHON_MODULES, 2000)["test"], new["test"])


def test_windows_and_losses_by_hand():
    tokens = torch.arange(10)
    assert ad.window_batch(tokens, torch.tensor([0, 3]), 4).tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]]
    assert ad.eval_starts(10, 4, 3).tolist() == [0, 3, 6]

    class Uniform(nn.Module):  # equal logits: the loss is log(vocabulary size)
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.zeros(*x.shape, 7) + self.w

    assert ad.split_loss(Uniform(), torch.arange(7).repeat(5), block_size=4, n_windows=3) == pytest.approx(math.log(7))


# --------------------------------------------------------------------------- claim checks


def _final_table(new_by_rank: dict, full_new: list, forget_by_rank: dict, full_forget: list) -> pd.DataFrame:
    rows = []
    for s in range(len(full_new)):
        for r, vals in new_by_rank.items():
            rows.append(dict(method=ad.LORA, rank=float(r), seed=s, metric=ad.NEW_LOSS, value=vals[s]))
            rows.append(dict(method=ad.LORA, rank=float(r), seed=s, metric=ad.FORGETTING, value=forget_by_rank[r][s]))
        rows.append(dict(method=ad.FULL, rank=math.nan, seed=s, metric=ad.NEW_LOSS, value=full_new[s]))
        rows.append(dict(method=ad.FULL, rank=math.nan, seed=s, metric=ad.FORGETTING, value=full_forget[s]))
    df = pd.DataFrame(rows)
    return df.assign(config=[ad.label(m, r) for m, r in zip(df["method"], df["rank"])])


def test_rank_trend_slope_by_hand():
    # loss = 2 - 0.1 log2(r) exactly (seed 0) and 2.1 - 0.2 log2(r) (seed 1): slopes -0.1, -0.2
    fin = _final_table({1: [2.0, 2.1], 2: [1.9, 1.9], 4: [1.8, 1.7]}, [1.5, 1.5],
                       {1: [0.1, 0.1], 2: [0.2, 0.2], 4: [0.3, 0.3]}, [0.5, 0.6])
    t = ad.rank_trend(fin, ad.NEW_LOSS)
    assert t.mean == pytest.approx(-0.15)
    assert t.std == pytest.approx(np.std([-0.1, -0.2], ddof=1))
    assert t.direction == "falls"
    assert t.means == {1: pytest.approx(2.05), 2: pytest.approx(1.9), 4: pytest.approx(1.75)}


def test_rank_claims_hold_fail_and_stay_unresolved():
    good = _final_table({1: [2.0, 2.1, 2.05], 4: [1.8, 1.85, 1.8], 16: [1.6, 1.62, 1.61]}, [1.4, 1.42, 1.41],
                        {1: [0.05, 0.06, 0.05], 4: [0.10, 0.12, 0.11], 16: [0.2, 0.21, 0.2]}, [0.4, 0.42, 0.41])
    assert ad.rank_claim(good, ad.NEW_LOSS, lower_is_more=True)["verdict"] == "holds"
    assert ad.rank_claim(good, ad.FORGETTING, lower_is_more=False)["verdict"] == "holds"
    # full fine-tuning forgets less than the highest rank, beyond the spread: fails
    bad = _final_table({1: [2.0, 2.1, 2.05], 4: [1.8, 1.85, 1.8], 16: [1.6, 1.62, 1.61]}, [1.4, 1.42, 1.41],
                       {1: [0.05, 0.06, 0.05], 4: [0.10, 0.12, 0.11], 16: [0.2, 0.21, 0.2]}, [0.1, 0.11, 0.1])
    assert ad.rank_claim(bad, ad.FORGETTING, lower_is_more=False)["verdict"] == "fails"
    # noisy: the slope's sign flips between seeds
    noisy = _final_table({1: [2.0, 1.6, 1.8], 16: [1.6, 2.0, 1.81]}, [1.4, 1.42, 1.41],
                         {1: [0.1, 0.1, 0.1], 16: [0.1, 0.1, 0.1]}, [0.4, 0.42, 0.41])
    assert ad.rank_claim(noisy, ad.NEW_LOSS, lower_is_more=True)["verdict"] == "unresolved"
    one = good[good["seed"] == 0]
    assert ad.rank_claim(one, ad.NEW_LOSS, lower_is_more=True)["verdict"] == "unresolved"


def test_rank_growth_claim_on_a_hand_made_spectrum():
    rows = []
    for seed, (early, late) in enumerate([(3.0, 9.0), (4.0, 10.0), (3.5, 8.0)]):
        for step, v in ((10, early), (20, late)):
            for matrix in ("MLP in", "MLP out"):
                rows.append(dict(method=ad.FULL, rank=math.nan, lr=1e-3, seed=seed, step=step, layer=0, matrix=matrix,
                                 metric=ad.ERANK, value=v))
                rows.append(dict(method=ad.FULL, rank=math.nan, lr=1e-3, seed=seed, step=step, layer=0, matrix=matrix,
                                 metric=ad.ERANK90, value=v / 2))
    spec = pd.DataFrame(rows)
    assert ad.rank_growth_claim(spec, ad.FULL, 1e-3)["verdict"] == "holds"
    flipped = spec.assign(step=spec["step"].map({10: 20, 20: 10}))
    assert ad.rank_growth_claim(flipped, ad.FULL, 1e-3)["verdict"] == "fails"


def test_forgetting_at_equal_learning_by_hand():
    rows = []
    for seed in (0, 1):
        # full fine-tuning: new-domain loss 4, 3, 2 at steps 0, 10, 20 with forgetting 0, 0.4, 0.6
        for step, new, forget in ((0, 4.0, 0.0), (10, 3.0, 0.4), (20, 2.0, 0.6)):
            rows += [dict(method=ad.FULL, rank=math.nan, lr=1e-3, seed=seed, step=step, metric=ad.NEW_LOSS, value=new),
                     dict(method=ad.FULL, rank=math.nan, lr=1e-3, seed=seed, step=step, metric=ad.FORGETTING, value=forget)]
        rows.append(dict(method=ad.FULL, rank=math.nan, lr=1e-3, seed=seed, step=20, metric=ad.VALID_LOSS, value=2.0))
        # LoRA ends at new-domain loss 2.5 with forgetting 0.3 (seed 0) or 0.35 (seed 1)
        for step, new, forget in ((0, 4.0, 0.0), (20, 2.5, 0.3 + 0.05 * seed)):
            rows += [dict(method=ad.LORA, rank=2.0, lr=1e-3, seed=seed, step=step, metric=ad.NEW_LOSS, value=new),
                     dict(method=ad.LORA, rank=2.0, lr=1e-3, seed=seed, step=step, metric=ad.FORGETTING, value=forget)]
        rows.append(dict(method=ad.LORA, rank=2.0, lr=1e-3, seed=seed, step=20, metric=ad.VALID_LOSS, value=2.5))
    table = pd.DataFrame(rows)
    m = ad.matched_forgetting(table, "LoRA r=2")
    # loss 2.5 lies halfway between steps 10 and 20: full fine-tuning's forgetting there is 0.5
    assert m["full"].tolist() == pytest.approx([0.5, 0.5]) and m["between_steps"].tolist() == ["10-20", "10-20"]
    assert m["value"].tolist() == pytest.approx([0.3, 0.35])
    assert ad.equal_learning_claim(table)["verdict"] == "fails"  # 0.325 vs 0.5, per-seed gaps -0.2 and -0.15


def test_at_steps_reads_the_selected_rate():
    rows = []
    for seed in (0, 1):
        for lr, valid in ((1e-3, 2.0), (3e-3, 1.0)):  # 3e-3 has the lower validation loss: selected
            for step in (10, 20):
                rows += [dict(method=ad.LORA, rank=2.0, lr=lr, seed=seed, step=step, metric=ad.NEW_LOSS,
                              value=step / 10 + lr * 1000 + seed),
                         dict(method=ad.LORA, rank=2.0, lr=lr, seed=seed, step=step, metric=ad.FORGETTING, value=0.1 * step)]
            rows.append(dict(method=ad.LORA, rank=2.0, lr=lr, seed=seed, step=20, metric=ad.VALID_LOSS, value=valid))
    rows.append(dict(method=ad.PRETRAINED, rank=math.nan, lr=math.nan, seed=0, step=0, metric=ad.NEW_LOSS, value=9.0))
    table = ad.at_steps(pd.DataFrame(rows), [10, 20])
    assert list(table.index) == ["LoRA r=2"]
    # at 3e-3: new-domain loss step / 10 + 3 + seed, mean over seeds 0 and 1
    assert table.loc["LoRA r=2", (ad.NEW_LOSS, 10)] == pytest.approx(4.5)
    assert table.loc["LoRA r=2", (ad.NEW_LOSS, 20)] == pytest.approx(5.5)
    assert table.loc["LoRA r=2", (ad.FORGETTING, 20)] == pytest.approx(2.0)


# --------------------------------------------------------------------------- end to end

TINY = ad.Config.quick(d_model=16, n_head=2, block_size=16, batch_size=4, pretrain_steps=10, pretrain_eval_every=5,
                       pretrain_early_evals=(2,), finetune_steps=6, eval_every=3, early_evals=(1,), eval_windows=4,
                       lrs=(1e-3, 3e-3), ranks=(1, 2))


def test_evaluation_schedule_and_evaluation_does_not_change_training():
    assert ad.eval_schedule(100, 25, (5, 10, 25, 200)) == [5, 10, 25, 50, 75, 100]
    old, _ = ad._splits(TINY)
    loop = LoopConfig(steps=6, batch_size=4, lr=1e-3)
    plain = ad._train_windows(TinyLM(TINY.lm_config(), seed=0), old["train"], loop, seed=1, block_size=16)
    seen = []

    def evaluate(step):
        seen.append(step)
        ad.split_loss(watched, old["test"], block_size=16, n_windows=4)

    watched = TinyLM(TINY.lm_config(), seed=0)
    ad._train_windows(watched, old["train"], loop, seed=1, block_size=16, evaluate=evaluate, at=[1, 3, 6])
    assert seen == [1, 3, 6]
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(a, b), name


def test_units_cover_every_method_rate_and_seed():
    us = ad.units(ad.Config.quick(seeds=(0, 1)), device="cpu")
    methods = [(u.config["method"], u.config.get("rank"), u.config.get("lr"), u.seed) for u in us]
    assert len(us) == 2 * (1 + 1 * (1 + 2)) and len({u.key for u in us}) == len(us)
    assert (ad.PRETRAINED, None, None, 0) in methods and (ad.LORA, 4, 1e-3, 1) in methods
    assert ad.Config.quick() != ad.Config()
    with pytest.raises(ValueError):
        ad.Config(finetune_steps=301)


def test_tiny_run_is_deterministic_and_shares_the_base_model():
    from paperlib.experiments.runner import compute

    units = {(u.config["method"], u.config.get("rank"), u.config.get("lr")): u for u in ad.units(TINY, device="cpu")}
    pre = compute(units[(ad.PRETRAINED, None, None)]).tables
    lora = compute(units[(ad.LORA, 2, 1e-3)]).tables
    full = compute(units[(ad.FULL, None, 3e-3)]).tables
    base_new = pre["adaptation"].query("metric == @ad.NEW_LOSS")["value"].iloc[0]
    for t in (lora, full):
        step0 = t["adaptation"].query("step == 0 and metric == @ad.NEW_LOSS")["value"].iloc[0]
        assert step0 == base_new  # every unit of a seed starts from the same base model
        assert t["adaptation"].query("step == 0 and metric == @ad.FORGETTING")["value"].iloc[0] == 0.0
    params = lora["cost"].query("metric == 'trainable parameters'")["value"].iloc[0]
    assert params == 2 * ((16 + 48) + (16 + 16) + (16 + 64) + (64 + 16))  # rank 2, one block of width 16
    assert set(full["spectrum"]["step"]) == {1, 3, 6} and set(lora["spectrum"]["step"]) == {6}
    assert set(full["adaptation"]["step"]) == {0, 1, 3, 6} and set(pre["pretraining"]["step"]) == {0, 2, 5, 10}
    lora_rank = lora["spectrum"].query("metric == @ad.ERANK")["value"]
    assert (lora_rank <= 2 + 1e-9).all()  # a rank-2 update has effective rank at most 2
    ad._pretrained.cache_clear()
    again = compute(units[(ad.LORA, 2, 1e-3)]).tables
    for name in ("adaptation", "spectrum"):
        pd.testing.assert_frame_equal(again[name], lora[name], check_exact=True)
    assert set(again["cost"]["metric"]) == {"trainable parameters", "seconds", "ms per step"}
    assert set(ad.comparable_rows("cost", again["cost"])["metric"]) == {"trainable parameters"}


def test_results_tables_findings_and_figures():
    import tempfile

    from paperlib.experiments.adaptation import figures
    from paperlib.store import ResultStore

    with tempfile.TemporaryDirectory() as tmp:
        res = ad.run(TINY, store=ResultStore(tmp), progress=False, device="cpu")
    sel = ad.selected_lrs(res["adaptation"])
    assert list(sel["config"]) == ["LoRA r=1", "LoRA r=2", ad.FULL]
    table = ad.final_table(res["adaptation"], res["cost"])
    assert list(table["configuration"]) == [ad.PRETRAINED, "LoRA r=1", "LoRA r=2", ad.FULL]
    f = res.findings()
    verdicts = dict(zip(f["key"], f["verdict"]))
    for key in ("learns_with_rank", "forgets_with_rank", "rank_grows_finetuning", "rank_grows_pretraining"):
        assert verdicts[key] == "unresolved"  # one seed decides nothing
    for fig in (figures.plot_tradeoff(res["adaptation"]), figures.plot_rank_sweep(res["adaptation"]),
                figures.plot_update_rank(res["spectrum"], res["adaptation"], TINY.d_model),
                figures.plot_spectrum(res["singular_values"], res["adaptation"]),
                figures.plot_cost(res["cost"], res["adaptation"])):
        assert len(fig.data) > 0


def test_unit_keys_record_the_texts_this_machine_reads(tmp_path, monkeypatch):
    config = ad.Config.quick()
    keys = [u.key for u in ad.units(config)]
    modules = tuple(config.python_modules)
    for name in modules:  # the same standard library, one module changed
        text = (ad.stdlib_folder() / f"{name}.py").read_text(encoding="utf-8")
        (tmp_path / f"{name}.py").write_text(text + ("\n# another Python\n" if name == modules[0] else ""),
                                             encoding="utf-8")
    unit = ad.units(config)[0]
    ad.texts_fingerprint.cache_clear()
    monkeypatch.setattr(ad, "stdlib_folder", lambda: tmp_path)
    try:
        assert all(a != b for a, b in zip(keys, [u.key for u in ad.units(config)]))
        with pytest.raises(ValueError, match="another Python version"):
            ad.compute_unit(unit.config, unit.seed)
    finally:
        ad.texts_fingerprint.cache_clear()
