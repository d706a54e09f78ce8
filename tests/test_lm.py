"""The tiny language model: vocabulary round trips, the causal mask, log-probabilities that add
up, seeded sampling, SFT that learns a grammar, and the generated data checked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperlib.experiments.lm import (
    BOS,
    EOS,
    PAD,
    BigramGrammar,
    LMConfig,
    TinyLM,
    Vocab,
    addition_problems,
    check_addition,
    operand_digits,
    lm_loss,
    sample,
    sequence_logprob,
    sft,
    sft_until,
    token_logprobs,
)
from paperlib.experiments.training import LoopConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB = Vocab("abcd")


def _model(seed: int = 0, **shape) -> TinyLM:
    return TinyLM(LMConfig(len(VOCAB), **{"block_size": 12, "n_layer": 2, "d_model": 32, "n_head": 4, **shape}), seed=seed)


def test_vocab_round_trip_and_batch_masks():
    assert VOCAB.encode("bad", bos=True, eos=True) == [BOS, 4, 3, 6, EOS]
    assert VOCAB.decode([BOS, 4, 3, EOS, 5]) == "ba"
    tokens, mask = VOCAB.batch(["ab", "c"], ["d", "a"])
    assert tokens.tolist() == [[BOS, 3, 4, 6, EOS], [BOS, 5, 3, EOS, PAD]]
    assert mask.tolist() == [[False, False, False, True, True], [False, False, True, True, False]]
    assert VOCAB.batch(["ab"], length=6)[0].tolist() == [[BOS, 3, 4, EOS, PAD, PAD]]
    with pytest.raises(KeyError):
        VOCAB.encode("z")
    with pytest.raises(ValueError):
        Vocab("aa")


def test_weights_come_from_the_seed_without_touching_the_global_generator():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = _model(0), _model(0), _model(1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.tok.weight, c.tok.weight)


def test_causal_mask_a_later_token_never_changes_earlier_logits():
    model = _model()
    x = torch.tensor([[BOS, 3, 4, 5, 6, 3, 4, EOS]])
    base = model(x)
    for j in range(1, x.shape[1]):
        y = x.clone()
        y[0, j] = 3 + (int(y[0, j]) - 2) % 4  # another symbol at position j
        out = model(y)
        assert torch.allclose(out[:, :j], base[:, :j], atol=1e-6), j
        assert not torch.allclose(out[:, j], base[:, j])


def test_incremental_decoding_gives_the_full_forward_logits():
    model = _model(5)
    x = torch.tensor([[BOS, 3, 4, 5, 6, 3], [BOS, 6, 6, 5, 4, 4]])
    full = model(x)
    logits, cache = model.extend(x[:, :2])
    assert torch.allclose(logits, full[:, 1], atol=1e-5)
    for t in range(2, x.shape[1]):
        logits, cache = model.extend(x[:, t : t + 1], cache)
        assert torch.allclose(logits, full[:, t], atol=1e-5), t
    with pytest.raises(ValueError, match="one new position"):
        model.extend(x[:, :2], cache)


def test_sequence_logprob_is_the_sum_of_its_token_logprobs_and_of_prefix_predictions():
    model = _model(3)
    tokens, mask = VOCAB.batch(["ab", "c"], ["dca", "b"])
    seq = sequence_logprob(model, tokens, mask)
    tok = token_logprobs(model, tokens)
    assert torch.allclose(seq, (tok * mask[:, 1:]).sum(1))
    # the same number from one forward pass per prefix, by hand
    for i in range(len(tokens)):
        total = 0.0
        for t in range(1, tokens.shape[1]):
            if mask[i, t]:
                logits = model(tokens[i : i + 1, :t])[0, -1]
                total += torch.log_softmax(logits, -1)[tokens[i, t]].item()
        assert seq[i].item() == pytest.approx(total, abs=1e-4)
    # probabilities over every one-token response sum to one
    every = torch.tensor([[BOS, s] for s in range(len(VOCAB))])
    m = torch.tensor([[False, True]] * len(VOCAB))
    assert torch.logsumexp(sequence_logprob(model, every, m), 0).item() == pytest.approx(0.0, abs=1e-5)


def test_lm_loss_is_the_mean_masked_negative_logprob():
    model = _model(2)
    tokens, mask = VOCAB.batch(["ab", "c"], ["dca", "b"])
    expected = -sequence_logprob(model, tokens, mask).sum() / mask[:, 1:].sum()
    assert lm_loss(model, tokens, mask).item() == pytest.approx(expected.item(), rel=1e-6)


def test_sampling_is_deterministic_under_a_seed_and_respects_eos_and_lengths():
    model = _model(1)
    prompts = [[BOS], [BOS, 3, 4], [BOS, 5]]
    a = sample(model, prompts, max_new_tokens=6, seed=11)
    b = sample(model, prompts, max_new_tokens=6, seed=11)
    c = sample(model, prompts, max_new_tokens=6, seed=12)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.tokens, c.tokens)
    for row, m, p in zip(a.tokens.tolist(), a.mask.tolist(), prompts):
        assert row[: len(p)] == p and not any(m[: len(p)])
        generated = [t for t, k in zip(row, m) if k]
        assert 1 <= len(generated) <= 6
        assert EOS not in generated[:-1]  # nothing after <eos>
        assert all(t == PAD for t, k in zip(row[len(p):], m[len(p):]) if not k)
    greedy = sample(model, prompts, max_new_tokens=6, greedy=True)
    assert torch.equal(greedy.tokens, sample(model, prompts, max_new_tokens=6, greedy=True).tokens)
    with pytest.raises(ValueError, match="seed"):
        sample(model, prompts, max_new_tokens=6)
    with pytest.raises(ValueError, match="block_size"):
        sample(model, prompts, max_new_tokens=20, seed=0)


def test_sample_frequencies_follow_the_model():
    model = _model(4)
    s = sample(model, [[BOS]] * 4000, max_new_tokens=1, seed=0)
    freq = torch.bincount(s.tokens[:, 1], minlength=len(VOCAB)).float() / 4000
    probs = torch.softmax(model(torch.tensor([[BOS]]))[0, -1], -1)
    assert torch.allclose(freq, probs, atol=0.03)


def test_grammar_logprob_matches_sampling_and_normalises():
    g = BigramGrammar(letters="ab", seed=3, stop=0.4, min_length=1, max_length=4)
    strings = ["".join(t) for n in range(1, 5) for t in __import__("itertools").product("ab", repeat=n)]
    assert sum(math.exp(g.logprob(s)) for s in strings) == pytest.approx(1.0)
    draws = g.sample(4000, seed=0)
    for s in ("a", "ab", "bbbb"):
        assert draws.count(s) / 4000 == pytest.approx(math.exp(g.logprob(s)), abs=0.025)
    assert g.sample(5, seed=1) == g.sample(5, seed=1)


def test_sft_learns_the_grammar():
    g = BigramGrammar(letters="abcd", seed=1, concentration=0.3, max_length=8)
    tokens, mask = VOCAB.batch(g.sample(2000, seed=0))
    model = _model(0)
    held = VOCAB.batch(g.sample(300, seed=1))
    before = lm_loss(model, *held).item()
    sft(model, tokens, mask, LoopConfig(steps=150, batch_size=64, lr=3e-3), seed=0)
    after = lm_loss(model, *held).item()
    true_nll = -np.mean([g.logprob(s) for s in g.sample(300, seed=1)]) / held[1][:, 1:].sum(1).float().mean().item()
    assert after < before - 0.5 and after < true_nll + 0.25


def test_sft_until_stops_at_the_target():
    tokens, mask = VOCAB.batch(["ab"] * 64)
    model = _model(0)
    score = lambda m: float(torch.exp(sequence_logprob(m, tokens[:1], mask[:1])).item())
    model, history = sft_until(model, tokens, mask, LoopConfig(steps=400, batch_size=16, lr=1e-2), seed=0,
                               score=score, target=0.9, check_every=10)
    assert history[-1][1] >= 0.9 and history[-1][0] < 400
    assert all(s < 0.9 for _, s in history[:-1])


def test_addition_problems_and_checker():
    prompts, answers = addition_problems(200, (1, 3), seed=0)
    assert prompts == addition_problems(200, (1, 3), seed=0)[0]
    for p, a in zip(prompts, answers):
        x, y = p[:-1].split("+")
        assert p.endswith("=") and len(x) in (1, 3) and len(x) == len(y) and int(x) + int(y) == int(a)
        assert operand_digits(p) == len(x)
        assert check_addition(p, a) and not check_addition(p, str(int(a) + 1)) and not check_addition(p, "0" + a)
    assert check_addition("12+5=", "17")
