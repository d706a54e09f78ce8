"""The store: atomic files, the list-column convention, references, results and unit folders."""
from __future__ import annotations

import json
import os
import threading

import pandas as pd
import pytest

from paperlib.store import (ResultStore, UnitRecord, atomic_write, canonical_json, load_reference, load_results,
                            read_table, references_dir, save_results, write_json, write_table)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "t.csv"
    atomic_write(target, "old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # the temporary file was removed


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_list_columns_round_trip(tmp_path, suffix):
    df = pd.DataFrame({"paper_id": ["a", "b"], "theme": [["x", "y"], []], "score": [0.1, 1 / 3],
                       "evidence": [{"x": ["p"]}, {}], "method": ["None", "NA"]})
    back = read_table(write_table(df, tmp_path / f"t{suffix}"))
    assert back["theme"].tolist() == [["x", "y"], []]
    assert back["score"].tolist() == [0.1, 1 / 3]  # floats round-trip exactly
    assert back["method"].tolist() == ["None", "NA"]  # strings that look like missing values stay strings
    if suffix != ".parquet":
        assert back["evidence"].tolist() == [{"x": ["p"]}, {}]
        text = (tmp_path / f"t{suffix}").read_text()
        assert '[""x"", ""y""]' in text  # JSON text in the cell (CSV-quoted), the one convention for CSV


def test_write_table_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.xlsx"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")


def test_save_and_load_results(tmp_path):
    tables = {"runs": pd.DataFrame({"seed": [0, 1], "value": [0.5, 0.25]}),
              "curves": pd.DataFrame({"step": [1, 2], "accuracy": [0.1, 0.2]})}
    save_results(tables, {"seeds": (0, 1), "hidden": (32,)}, tmp_path, "exp")
    back, config = load_results(tmp_path, "exp")
    assert config == {"seeds": [0, 1], "hidden": [32]}
    for name, df in tables.items():
        pd.testing.assert_frame_equal(back[name], df)
    save_results(tables["runs"], {}, tmp_path, "single")
    pd.testing.assert_frame_equal(load_results(tmp_path, "single")[0]["single"], tables["runs"])


def test_every_reference_file_loads_with_its_header():
    names = sorted(p.stem for p in references_dir().glob("*.csv"))
    assert "three_scenarios" in names
    for name in names:
        df = load_reference(name)
        assert len(df) > 0 and "checked" in df.columns, name
        assert not any(str(c).startswith("#") for c in df.columns), name
    scen = load_reference("three_scenarios")
    assert "van de Ven" in scen.attrs["header"]
    assert {"protocol", "method", "scenario", "mean"} <= set(scen.columns)
    with pytest.raises(FileNotFoundError, match="have: "):
        load_reference("no-such-file")


def test_canonical_json_is_order_free():
    assert canonical_json({"b": 1, "a": (1, 2)}) == canonical_json({"a": [1, 2], "b": 1})


def _record(key="k1", value=1.0):
    return UnitRecord("demo.exp", key, 0, 1, "cpu", {"x": 1}, {"rows": pd.DataFrame({"v": [value]})},
                      {"seconds": 0.1})


def test_result_store_layers(tmp_path):
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    ResultStore(shipped).put(_record("k1", 1.0))
    store = ResultStore(user, shipped, writable=user)
    hit = store.get("demo.exp", "k1")
    assert hit is not None and hit.layer == str(shipped) and hit.tables["rows"]["v"].tolist() == [1.0]
    assert store.get("demo.exp", "k2") is None
    store.put(_record("k2", 2.0))
    assert (user / "demo.exp" / "k2" / "unit.json").is_file()
    assert not (shipped / "demo.exp" / "k2").exists()  # the shipped layer is never written
    assert sorted(r.key for r in store.records()) == ["k1", "k2"]
    head = json.loads((user / "demo.exp" / "k2" / "unit.json").read_text())
    assert head["tables"] == ["rows"] and head["provenance"]["seconds"] == 0.1


def test_concurrent_puts_keep_one_copy(tmp_path):
    store = ResultStore(tmp_path)
    threads = [threading.Thread(target=store.put, args=(_record("same", float(i)),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folders = [p for p in (tmp_path / "demo.exp").iterdir()]
    assert [p.name for p in folders] == ["same"]  # no temporary folders left, one unit
    assert len(store.get("demo.exp", "same").tables["rows"]) == 1


def test_missing_table_is_named(tmp_path):
    store = ResultStore(tmp_path)
    folder = store.put(_record())
    (folder / "rows.csv").unlink()
    with pytest.raises(FileNotFoundError, match="rows.csv"):
        store.get("demo.exp", "k1")


def test_write_json_is_atomic_and_plain(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class C:
        hidden: tuple = (4, 2)

    write_json(C(), tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text()) == {"hidden": [4, 2]}
