"""Speed of the split-MNIST protocol for one strategy (EWC): iterations per second and seconds per 5-task run.

Protocol of van de Ven & Tolias: MLP 784-400-400, Adam lr 1e-3, 2000 iterations per task,
batch 128, 5 tasks; EWC with the exact Fisher on 1024 samples after each task. Budget: 90 s
on 2 CPU cores (the paper's reference code: about 6 minutes per method on a desktop CPU).

    .venv/bin/python bench/continual_speed.py                      # mnist-5k, offline
    .venv/bin/python bench/continual_speed.py --dataset mnist      # the full 60k (downloads once)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist-5k")
    ap.add_argument("--steps", type=int, default=2000, help="iterations per task (paper: 2000)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the budget is for 2 cores; 1 is faster on a busy machine)")
    ap.add_argument("--scenario", default="task", choices=["task", "domain", "class"])
    ap.add_argument("--budget", type=float, default=90.0, help="seconds allowed for the whole run")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from paperlib.experiments.continual.streams import StreamConfig, run_stream, split_tasks
    from paperlib.experiments.datasets import load_dataset
    from paperlib.experiments.continual.strategies import EWC

    data = load_dataset(args.dataset)
    tasks = split_tasks(data)
    config = StreamConfig(hidden=(400, 400), steps_per_task=args.steps, batch_size=128, lr=1e-3, optimizer="adam")
    start, cpu_start = time.perf_counter(), time.process_time()
    result = run_stream(tasks, EWC(strength=1e6, n_samples=1024), scenario=args.scenario, config=config, seed=0, progress=True)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # what the run costs without other jobs on the cores
    iters = args.steps * len(tasks)
    out = {
        "dataset": args.dataset, "scenario": args.scenario, "threads": args.threads, "iterations": iters,
        "seconds": round(seconds, 2), "iterations_per_second": round(iters / seconds, 1),
        "cpu_seconds": round(cpu_seconds, 2),
        "average_accuracy": round(result.summary()["average_accuracy"], 4), "budget_seconds": args.budget,
        "within_budget": seconds <= args.budget, "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "python": platform.python_version(),
        "command": " ".join([".venv/bin/python", "bench/continual_speed.py", *sys.argv[1:]]),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"EWC split-MNIST protocol on {args.dataset} ({args.scenario}-IL), {args.threads} thread(s): "
              f"{iters} iterations in {seconds:.1f} s = {iters / seconds:.1f} it/s; "
              f"CPU time {cpu_seconds:.1f} s; average accuracy {out['average_accuracy']:.2%}; budget {args.budget:.0f} s: "
              f"{'met' if out['within_budget'] else 'MISSED'} (1-min load average {out['load_average_1min']} on {out['cpu_count']} cores)")
        print("reproduce:", out["command"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
