"""Time the build per notebook, quick and full: `python bench/build_time.py [--quick-only] [--only REGEX]`.

Runs `paperlib build` (the library call) once with `--quick` and once in full, each into its own
folder, and prints one row per notebook: seconds quick, seconds full, status and page size. The
full build takes minutes on a CPU; `--quick-only` skips it.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from paperlib.site.build import BuildConfig, format_report, run_build


def timed_build(out: Path, *, quick: bool, only: str | None) -> tuple[pd.DataFrame, float, bool]:
    start = time.perf_counter()
    report = run_build(BuildConfig(out=str(out), quick=quick, only=only, progress=True))
    total = time.perf_counter() - start
    if not report.ok:
        print(format_report(report), file=sys.stderr)
    return report.summary(), total, report.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-only", action="store_true", help="skip the full build")
    parser.add_argument("--only", metavar="REGEX", help="notebooks whose file names match REGEX")
    parser.add_argument("--out", help="folder for the two builds (default: a temporary folder)")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    args = parser.parse_args(argv)

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="paperlib-bench-"))
    quick, quick_total, ok = timed_build(root / "quick", quick=True, only=args.only)
    table = quick.rename(columns={"seconds": "quick_s", "status": "quick_status", "page_kib": "quick_page_kib"})
    table = table[["notebook", "quick_s", "quick_status", "quick_page_kib"]]
    totals = {"quick": quick_total}
    if not args.quick_only:
        full, full_total, full_ok = timed_build(root / "full", quick=False, only=args.only)
        ok = ok and full_ok
        full = full.rename(columns={"seconds": "full_s", "status": "full_status", "page_kib": "full_page_kib"})
        table = table.merge(full[["notebook", "full_s", "full_status", "full_page_kib"]], on="notebook", how="outer")
        totals["full"] = full_total

    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    print(table.to_string(index=False))
    print("whole build (corpus tables + notebooks + site): "
          + ", ".join(f"{k} {v:.0f} s" for k, v in totals.items()))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
