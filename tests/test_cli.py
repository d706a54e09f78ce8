"""The `paperlib` console script, run as a user runs it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from paperlib import store
from paperlib.cli import main

PAPERLIB = shutil.which("paperlib", path=str(Path(sys.executable).parent))


def run(*args, cwd=None):
    return subprocess.run([PAPERLIB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for command in ("parse",):
        assert command in out.stdout


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_parse_writes_the_table(tmp_path, corpus_path, suffix):
    out_file = tmp_path / f"papers{suffix}"
    out = run("parse", corpus_path, "--out", out_file)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("257 papers, 0 duplicates merged, 0 skipped")
    df = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix](out_file)
    assert len(df) == 257 and df.title[0].startswith("VideoMAE V2")
    urls = df.code_urls[0]
    assert (json.loads(urls) if isinstance(urls, str) else list(urls)) == ["https://github.com/OpenGVLab/VideoMAEv2"]


def test_parse_error_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("A Title\n" + "An abstract that is long enough. " * 12 + "\nDangling Title\n")
    out = run("parse", bad)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "bad.txt, line 3: expected an abstract" in out.stderr and "Traceback" not in out.stderr


def test_parse_lenient_reports_skips(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("A Title\n" + "An abstract that is long enough. " * 12 + "\nDangling Title\n")
    out = run("parse", bad, "--lenient")
    assert out.returncode == 0
    assert "1 papers, 0 duplicates merged, 1 skipped" in out.stdout
    assert "line 3" in out.stderr


def test_unknown_output_extension_is_a_clear_error(tmp_path, corpus_path):
    out = run("parse", corpus_path, "--out", tmp_path / "papers.xlsx")
    assert out.returncode == 2 and "expected a .csv" in out.stderr


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_parse_table_round_trips_through_the_store(tmp_path, corpus_path, suffix, capsys):
    out_file = tmp_path / f"papers{suffix}"
    assert main(["parse", str(corpus_path), "--out", str(out_file)]) == 0
    back = store.read_table(out_file)
    assert back.code_urls[0] == ["https://github.com/OpenGVLab/VideoMAEv2"]
    assert all(isinstance(v, list) for v in back.code_urls) and back.code_urls.map(len).sum() > 10


def test_similar_evaluate_pools_several_label_files(capsys):
    from paperlib.paths import default_corpus_path, shipped_dir

    labels = shipped_dir() / "labels"
    corpus = str(default_corpus_path())
    assert main(["similar", corpus, "--evaluate", str(labels / "dev_tags.json")]) == 0
    one = capsys.readouterr().out
    assert main(["similar", corpus, "--evaluate", str(labels / "dev_tags.json"),
                 "--evaluate", str(labels / "check_tags.json")]) == 0
    both = capsys.readouterr().out
    n_one, n_both = (int(t.split("mean over ")[1].split()[0]) for t in (one, both))
    assert n_both > n_one


def test_tag_and_methods_evaluate_pool_several_label_files(capsys):
    from paperlib.paths import default_corpus_path, shipped_dir

    labels = shipped_dir() / "labels"
    corpus = str(default_corpus_path())
    for command, files in (("tag", ("check2_tags.json", "check3_tags.json")),
                           ("methods", ("methods_check2.json", "methods_check3.json"))):
        totals = []
        for chosen in (files[:1], files):
            argv = [command, corpus]
            for name in chosen:
                argv += ["--evaluate", str(labels / name)]
            assert main(argv) == 0
            out = capsys.readouterr().out
            line = next(t for t in out.splitlines() if t.startswith(("kind     accuracy", "mention recall")))
            totals.append(int(line.split()[-1].strip("()").split("/")[-1]) if command == "methods"
                          else int(line.split()[-1]))
        assert totals[1] > totals[0], command
