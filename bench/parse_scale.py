"""How fast and how lean is `load_corpus` on large corpora, in every format?

Generates corpora of N papers by resampling the words of the shipped abstracts (seeded),
writes each supported format, then parses each file in a fresh process and reports
papers per second (wall clock) and the peak resident memory the parse added (the kernel's
peak-RSS mark, reset just before the call, minus the RSS then), against the file size.

    .venv/bin/python bench/parse_scale.py                       # 10k, 100k, 300k, all formats
    .venv/bin/python bench/parse_scale.py --sizes 10000 --formats listing csv
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from paperlib import default_corpus_path, load_corpus

FORMATS = ["listing", "bibtex", "csv", "tsv", "json", "jsonl"]
SUFFIX = {"listing": ".txt", "bibtex": ".bib", "csv": ".csv", "tsv": ".tsv", "json": ".json", "jsonl": ".jsonl"}

CHILD = r"""
import json, os, sys, time
from paperlib import default_corpus_path, load_corpus
load_corpus(default_corpus_path())  # warm up: lazy imports and compiled patterns are not per-paper costs
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
base = status("VmRSS")
t = time.perf_counter()
df = load_corpus(sys.argv[1])
sec = time.perf_counter() - t
print(json.dumps({"papers": len(df), "seconds": sec, "base_bytes": base, "peak_bytes": status("VmHWM")}))
"""


def synthetic_corpus(n: int, *, seed: int = 0) -> pd.DataFrame:
    """n papers whose titles and abstracts resample the real corpus's words and lengths."""
    real = load_corpus(default_corpus_path())
    words = np.array(" ".join(real.abstract).replace("{", "").replace("}", "").split())
    title_words = np.array(" ".join(real.title).split())
    rng = np.random.default_rng(seed)
    abstract_lengths = rng.choice(real.abstract.str.split().map(len).to_numpy(), size=n)
    title_lengths = rng.choice(real.title.str.split().map(len).to_numpy(), size=n)
    all_words = rng.choice(words, size=int(abstract_lengths.sum()))
    all_title_words = rng.choice(title_words, size=int(title_lengths.sum()))
    a_cuts, t_cuts = np.cumsum(abstract_lengths)[:-1], np.cumsum(title_lengths)[:-1]
    abstracts = [" ".join(chunk) for chunk in np.split(all_words, a_cuts)]
    titles = [f"{' '.join(chunk)} {i}" for i, chunk in enumerate(np.split(all_title_words, t_cuts))]
    return pd.DataFrame({"title": titles, "abstract": abstracts})


def write_corpus(df: pd.DataFrame, fmt: str, path: Path) -> None:
    """Write the synthetic corpus in one of the supported formats."""
    if fmt == "listing":
        with path.open("w", encoding="utf-8") as f:
            f.write("Get trending papers in your email inbox once a day!\nGet trending papers in your email inbox!\nSubscribe")
            for t, a in zip(df.title, df.abstract):
                f.write(f"{t}\n{a}\n")
    elif fmt == "bibtex":
        with path.open("w", encoding="utf-8") as f:
            for i, (t, a) in enumerate(zip(df.title, df.abstract)):
                f.write(f"@article{{p{i},\n  title = {{{t}}},\n  abstract = {{{a}}},\n}}\n\n")
    elif fmt in ("csv", "tsv"):
        df.to_csv(path, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "json":
        path.write_text(json.dumps(df.to_dict(orient="records"), ensure_ascii=False), encoding="utf-8")
    else:
        df.to_json(path, orient="records", lines=True, force_ascii=False)


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"parsing {path} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--formats", nargs="+", default=FORMATS, choices=FORMATS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            df = synthetic_corpus(n)
            for fmt in args.formats:
                path = Path(tmp) / f"corpus_{n}{SUFFIX[fmt]}"
                write_corpus(df, fmt, path)
                r = measure(path)
                assert r["papers"] == n, (fmt, n, r["papers"])
                size_mb = path.stat().st_size / 2**20
                added_mb = (r["peak_bytes"] - r["base_bytes"]) / 2**20
                rows.append({"format": fmt, "papers": n, "file_MB": round(size_mb, 1), "seconds": round(r["seconds"], 2),
                             "papers_per_s": int(n / r["seconds"]), "peak_added_MB": round(added_mb, 1),
                             "peak_over_file": round(added_mb / size_mb, 2)})
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
                path.unlink()
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False))
    listing = table[table.format == "listing"]
    if len(listing):
        print(f"\nlisting format: slowest {listing.papers_per_s.min():,} papers/s; "
              f"largest peak/file ratio {table.peak_over_file.max():.2f}")
    print("reproduce: .venv/bin/python bench/parse_scale.py --sizes " + " ".join(map(str, args.sizes))
          + " --formats " + " ".join(args.formats))


if __name__ == "__main__":
    main()
