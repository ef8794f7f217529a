"""Weight inheritance in evolution: the same regularized evolution (same seed, same first population) with and
without ``evaluator.inherit``, on a real task with real training.

Reports, per seed and on average, the best validation accuracy found and the test accuracy of that trial against the
cumulative training epochs of the search, and how many epochs the search with inheritance needed to reach the best
validation accuracy of the search without it. Writes the section ``inheritance`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/inheritance.py [--seeds 0 1] [--trials 20] [--epochs 4] [--inherit-epochs 1]
        [--task digits] [--limit 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def run(directory: Path, seed: int, args: argparse.Namespace, inherit: bool) -> dict[str, Any]:
    """One search; returns its trials' (epochs, val, test, copied) in completion order (id order: local executor)."""
    evaluator: dict[str, Any] = {
        "name": "train", "task": args.task, "task_options": {"limit": args.limit} if args.limit else {},
        "train": {"epochs": args.epochs, "batch_size": 64, "lr": 0.05, "optimizer": "sgd", "schedule": "cosine"},
        "options": {"latency_runs": 0}}
    if inherit:
        evaluator["inherit"] = {"epochs": args.inherit_epochs, "keep": args.population}
    data = {"name": "inheritance", "seed": seed, "space": {"name": "nb201", "options": {"C": 8, "N": 1}},
            "strategy": {"name": "evolution", "options": {"population": args.population, "sample_size": 3}},
            "evaluator": evaluator, "budget": {"max_trials": args.trials},
            "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}
    exp = Experiment.create(parse_config(data), directory)
    start = time.perf_counter()
    try:
        exp.run()
        seconds = time.perf_counter() - start
        trials = [t for t in exp.store.trials() if t.status == "COMPLETE"]
    finally:
        exp.close()
    rows = [{"id": t.id, "epochs": t.metrics["epochs"], "val": t.metrics["val_acc"], "test": t.metrics["test_acc"],
             "copied": t.metrics.get("tensors_copied", 0.0), "parent": t.parent} for t in trials]
    return {"seconds": seconds, "rows": rows}


def curve(rows: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(cumulative epochs, best validation so far, test accuracy of that trial) after each trial."""
    out, total, best = [], 0.0, None
    for r in rows:
        total += r["epochs"]
        if best is None or r["val"] > best["val"]:
            best = r
        out.append((total, best["val"], best["test"]))
    return out


def at(points: list[tuple[float, float, float]], epochs: float) -> tuple[float, float]:
    """Best validation and its test accuracy once ``epochs`` epochs were spent (the last trial within them)."""
    within = [p for p in points if p[0] <= epochs]
    return (within[-1][1], within[-1][2]) if within else (float("nan"), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--inherit-epochs", type=int, default=1)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--limit", type=int, default=0, help="samples of the task (0: all)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load, date, version = load_average(), utc_date(), code_version()
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            plain = run(Path(tmp) / f"plain{seed}", seed, args, inherit=False)
            print(f"seed {seed} without inheritance: {plain['seconds']:.0f} s", file=sys.stderr, flush=True)
            child = run(Path(tmp) / f"inherit{seed}", seed, args, inherit=True)
            per_seed.append((seed, plain, child))
            print(f"seed {seed}: {plain['seconds']:.0f} s without, {child['seconds']:.0f} s with", file=sys.stderr)
    lines = []
    halves = []
    reach = []
    for seed, plain, child in per_seed:
        pc, cc = curve(plain["rows"]), curve(child["rows"])
        total = pc[-1][0]
        target = pc[-1][1]
        hit = next((p[0] for p in cc if p[1] >= target), None)
        reach.append(None if hit is None else hit / total)
        for name, run_, points in (("without", plain, pc), ("with", child, cc)):
            half = at(points, total / 2)
            inherited = sum(r["copied"] > 0 for r in run_["rows"])
            lines.append(f"| {seed} | {name} | {points[-1][0]:.0f} | {half[0]:.2f} / {half[1]:.2f} | "
                         f"{points[-1][1]:.2f} / {points[-1][2]:.2f} | {inherited} | {run_['seconds']:.0f} |")
        halves.append((at(pc, total / 2)[0], at(cc, total / 2)[0], pc[-1][1], cc[-1][1], cc[-1][0] / total))
    hit_text = ", ".join("not reached" if r is None else f"{100 * r:.0f}%" for r in reach)
    mean = statistics.mean
    body = f"""## Weight inheritance in evolution (`inheritance.py`)

**What was measured.** Regularized evolution (population {args.population}, tournament 3, de-duplication on) of
{args.trials} `nb201` cells (C=8, N=1) on `{args.task}` ({f"{args.limit:,} samples" if args.limit else "all of it"}),
local executor, each seed run twice with
the same seed (so the same first population, trained identically): once training every candidate from scratch for
{args.epochs} epochs (SGD lr 0.05 cosine, batch 64), once with `evaluator.inherit: {{epochs: {args.inherit_epochs},
keep: {args.population}}}`: a mutated child starts from its parent's trained weights for every unchanged op and trains
{args.inherit_epochs} epoch(s). "Epochs" are the training epochs summed over the search's trials; accuracies are
the best validation accuracy found (%) / the test accuracy of that trial, at half of the epochs the search without
inheritance spent, and at the end. Real training throughout.

{provenance(load, threads=1, date=date, version=version)}

**Figures.**

| seed | inheritance | epochs | val / test, half the epochs | val / test, end | children inheriting | wall (s) |
|---:|---|---:|---:|---:|---:|---:|
{chr(10).join(lines)}

Mean over seeds: best validation accuracy at half the epochs {mean(h[0] for h in halves):.2f} without inheritance,
{mean(h[1] for h in halves):.2f} with it; at the end {mean(h[2] for h in halves):.2f} without,
{mean(h[3] for h in halves):.2f} with it (which spent {100 * mean(h[4] for h in halves):.0f}% of the epochs).
The search with inheritance reached the final best validation accuracy of the search without it after this
share of that search's epochs, per seed: {hit_text}.
"""
    publish("inheritance", body, write=not args.no_write)


if __name__ == "__main__":
    main()
