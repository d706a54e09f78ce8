"""Numeric claims: value, unit, context and sentence from abstracts."""
from __future__ import annotations

import pandas as pd
import pytest

from paperlib import extract_claims
from paperlib.corpus.claims import claims_in, sentences


def test_the_issue_examples():
    text = ("We reach 90.0% on K400 and 89.9% on K600. The model has 7.5x fewer parameters and 9.4x faster "
            "inference. It gives a 41.0% absolute improvement over GPT-4.")
    got = [(c["value"], c["unit"], c["context"]) for c in claims_in(text)]
    assert got == [(90.0, "%", "on K400"), (89.9, "%", "on K600"), (7.5, "x", "fewer parameters"),
                   (9.4, "x", "faster inference"), (41.0, "%", "absolute improvement over GPT-4")]


def test_units_and_spellings():
    got = [(c["value"], c["unit"]) for c in claims_in(
        "A 3-fold speedup, 2 times fewer steps, 1,200 million tokens, a 7B model, 5 percentage points, 3 points.")]
    assert got == [(3.0, "x"), (2.0, "x"), (1200.0, "M"), (7.0, "B"), (5.0, "pp"), (3.0, "pp")]


def test_names_years_and_bare_numbers_are_not_claims():
    assert claims_in("Results on K400, V2 and CIFAR-100 in 2023 with 12 layers.") == []


def test_sentences_never_split_decimals():
    assert sentences("It got 90.5% here. Then 3.2x there! Done") == ["It got 90.5% here.", "Then 3.2x there!", "Done"]


def test_extract_claims_table(corpus):
    out = extract_claims(corpus)
    assert list(out.columns) == ["paper_id", "value", "unit", "context", "sentence"]
    assert out["value"].dtype == "float64" and len(out) > 50
    assert set(out["paper_id"]) <= set(corpus["paper_id"])
    first = out[out["paper_id"] == corpus["paper_id"].iloc[0]].iloc[0]
    assert (first["value"], first["unit"], first["context"]) == (90.0, "%", "on K400")
    assert "90.0% on K400" in first["sentence"]


def test_extract_claims_needs_abstracts():
    with pytest.raises(ValueError, match="abstract"):
        extract_claims(pd.DataFrame({"title": ["x"]}))
    assert extract_claims(pd.DataFrame({"paper_id": ["p"], "abstract": ["no numbers"]})).empty
