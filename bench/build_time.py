"""Time `paperlib build`: fresh, warm, and a full recompute projected from the shipped runs.

    .venv/bin/python bench/build_time.py [--jobs N] [--quick] [--recompute] [--only REGEX]

- fresh: a build into an empty folder with an empty user results store, so every experiment
  number comes from the shipped store (what `make run` does on a fresh clone);
- warm: the same build again with nothing changed (notebooks whose inputs did not change keep
  their pages);
- projection: the seconds each shipped run took (recorded in its provenance, one torch thread
  each) summed for one process and scheduled longest-first over 2 and 16 processes;
- `--recompute`: also time `paperlib build --rerun` for real with 1 and 2 jobs (hours on 2 cores).
"""
from __future__ import annotations

import argparse
import heapq
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from paperlib.experiments.catalog import EXPERIMENTS, shipped_units
from paperlib.site.build import BuildConfig, format_report, run_build
from paperlib.store import ResultStore, shipped_results_dir


def timed_build(out: Path, store: Path, **options) -> tuple[pd.DataFrame, dict, bool]:
    os.environ["PAPERLIB_RESULTS"] = str(store)
    start = time.perf_counter()
    report = run_build(BuildConfig(out=str(out), progress=False, **options))
    seconds = {**report.seconds, "wall": round(time.perf_counter() - start, 1)}
    if not report.ok:
        print(format_report(report), file=sys.stderr)
    return report.summary(), seconds, report.ok


def makespan(durations: list[float], workers: int) -> float:
    """Longest-processing-time-first schedule of independent runs on `workers` processes."""
    loads = [0.0] * workers
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + d)
    return max(loads)


def projection(quick: bool = False) -> pd.DataFrame:
    """Per notebook: runs, their recorded seconds summed, and the projected wall time on 1, 2 and 16 processes."""
    store = ResultStore(shipped_results_dir())
    rows, everything = [], []
    from paperlib.experiments.catalog import notebook_units

    for nb in EXPERIMENTS:
        secs = []
        for u in notebook_units(nb, quick=quick):
            rec = store.get(u.experiment, u.key)
            if rec is not None:
                secs.append(float(rec.provenance.get("seconds", 0.0)))
        everything += secs
        rows.append({"notebook": nb, "runs": len(secs), "cpu_min": round(sum(secs) / 60, 1),
                     "longest_run_s": round(max(secs, default=0), 1)})
    rows.append({"notebook": "all", "runs": len(everything), "cpu_min": round(sum(everything) / 60, 1),
                 "longest_run_s": round(max(everything, default=0), 1)})
    table = pd.DataFrame(rows)
    for n in (1, 2, 16):
        table[f"{n}_jobs_min"] = [round(makespan(
            [float(r.provenance.get("seconds", 0)) for u in notebook_units(nb, quick=quick)
             if (r := store.get(u.experiment, u.key)) is not None], n) / 60, 1) if nb != "all" else
            round(makespan(everything, n) / 60, 1) for nb in table["notebook"]]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks at once (default 2, as make run)")
    parser.add_argument("--quick", action="store_true", help="build in quick mode")
    parser.add_argument("--only", metavar="REGEX", help="notebooks whose file names match REGEX")
    parser.add_argument("--recompute", action="store_true", help="also time --rerun with 1 and 2 jobs (hours)")
    parser.add_argument("--out", help="folder for the builds (default: a temporary folder)")
    args = parser.parse_args(argv)

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="paperlib-bench-"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}")
    missing = [u for u in shipped_units() if ResultStore(shipped_results_dir()).get(u.experiment, u.key) is None]
    if missing:
        print(f"warning: {len(missing)} runs are not in the shipped store; the fresh build computes them")
    fresh, fresh_s, ok = timed_build(root / "build", root / "store", quick=args.quick, only=args.only, jobs=args.jobs)
    warm, warm_s, ok2 = timed_build(root / "build", root / "store", quick=args.quick, only=args.only, jobs=args.jobs)
    table = fresh[["notebook", "seconds", "status"]].rename(columns={"seconds": "fresh_s", "status": "fresh"})
    table = table.merge(warm[["notebook", "seconds", "status"]].rename(columns={"seconds": "warm_s", "status": "warm"}),
                        on="notebook")
    print(table.to_string(index=False))
    print("fresh build (s): " + ", ".join(f"{k} {v}" for k, v in fresh_s.items()))
    print("warm rebuild (s): " + ", ".join(f"{k} {v}" for k, v in warm_s.items()))
    print("\nfull recompute projected from the shipped runs' recorded seconds (one torch thread per run):")
    print(projection(quick=args.quick).to_string(index=False))
    if args.recompute:
        for jobs in (1, 2):
            _, secs, _ = timed_build(root / f"rerun{jobs}", root / f"store{jobs}", quick=args.quick, only=args.only,
                                     jobs=jobs, rerun=True)
            print(f"--rerun with --jobs {jobs}: " + ", ".join(f"{k} {v}" for k, v in secs.items()))
    print(f"\nreproduce: .venv/bin/python bench/build_time.py --jobs {args.jobs}"
          + (" --quick" if args.quick else "") + (f" --only '{args.only}'" if args.only else "")
          + (" --recompute" if args.recompute else ""))
    return 0 if ok and ok2 else 1


if __name__ == "__main__":
    sys.exit(main())
