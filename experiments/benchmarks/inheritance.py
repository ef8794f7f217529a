"""Weight inheritance in evolution: the same regularized evolution (same seed, same first population) with and
without ``evaluator.inherit``, on a real task with real training, for several inheritance settings.

Per seed it runs the search without inheritance (every candidate trained ``--epochs`` from scratch), the same search
training every candidate ``--short-epochs`` from scratch (the cheap baseline inheritance must beat), and one search per
``--variant EPOCHS:LR_SCALE:SCHEDULE[:TRIALS]`` (``evaluator.inherit: {epochs, lr_scale, schedule}``; TRIALS: a
budget of its own, e.g. to spend as many epochs as the reference). It reports the best
validation accuracy found and the test accuracy of that trial against the cumulative training epochs of the search
(a curve, averaged over seeds), and after what share of the plain search's epochs each setting reached the plain
search's final best validation accuracy. Runs go to ``--jobs`` processes. Writes the section ``inheritance`` of
RESULTS.md.

    .venv/bin/python experiments/benchmarks/inheritance.py [--seeds 0 1 2] [--trials 20] [--epochs 4]
        [--short-epochs 2] [--variant 1:1:cosine 1:0.2:constant 2:0.3:cosine] [--task digits] [--limit 0] [--jobs 3]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def run(seed: int, args: argparse.Namespace, setting: dict[str, Any]) -> dict[str, Any]:
    """One search with ``setting`` (``epochs``; ``inherit``: the ``evaluator.inherit`` mapping or None); returns
    its trials' (epochs, val, test, copied) in completion order (id order: local executor)."""
    torch.set_num_threads(1)
    evaluator: dict[str, Any] = {
        "name": "train", "task": args.task, "task_options": {"limit": args.limit} if args.limit else {},
        "train": {"epochs": setting["epochs"], "batch_size": 64, "lr": 0.05, "optimizer": "sgd",
                  "schedule": "cosine"},
        "options": {"latency_runs": 0}}
    if setting["inherit"] is not None:
        evaluator["inherit"] = {**setting["inherit"], "keep": args.population}
    data = {"name": "inheritance", "seed": seed, "space": {"name": "nb201", "options": {"C": 8, "N": 1}},
            "strategy": {"name": "evolution", "options": {"population": args.population, "sample_size": 3}},
            "evaluator": evaluator, "budget": {"max_trials": setting.get("trials", args.trials)},
            "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment.create(parse_config(data), Path(tmp) / "exp")
        start = time.perf_counter()
        try:
            exp.run()
            seconds = time.perf_counter() - start
            trials = [t for t in exp.store.trials() if t.status == "COMPLETE"]
        finally:
            exp.close()
    rows = [{"id": t.id, "epochs": t.metrics["epochs"], "val": t.metrics["val_acc"], "test": t.metrics["test_acc"],
             "copied": t.metrics.get("tensors_copied", 0.0), "parent": t.parent} for t in trials]
    print(f"seed {seed} {setting['label']}: {seconds:.0f} s", file=sys.stderr, flush=True)
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


def settings(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plain search, the short from-scratch one, then one per ``--variant``."""
    out: list[dict[str, Any]] = [{"label": f"scratch, {args.epochs} epochs", "epochs": args.epochs, "inherit": None}]
    if args.short_epochs:
        out.append({"label": f"scratch, {args.short_epochs} epochs", "epochs": args.short_epochs, "inherit": None})
    for text in args.variant:
        epochs, scale, schedule, *trials = text.split(":")
        setting = {"label": f"inherit {epochs} ep, lr x{float(scale):g}, {schedule}", "epochs": args.epochs,
                   "inherit": {"epochs": int(epochs), "lr_scale": float(scale), "schedule": schedule}}
        if trials:
            setting.update(trials=int(trials[0]), label=f"{setting['label']}, {trials[0]} trials")
        out.append(setting)
    return out


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.mean(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--short-epochs", type=int, default=2, help="0: no short from-scratch baseline")
    parser.add_argument("--variant", nargs="+", default=["1:1:cosine", "1:0.2:constant", "2:0.3:cosine"],
                        help="EPOCHS:LR_SCALE:SCHEDULE[:TRIALS] of evaluator.inherit, one search each (TRIALS: "
                             "its own budget, default --trials)")
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--limit", type=int, default=0, help="samples of the task (0: all)")
    parser.add_argument("--jobs", type=int, default=3, help="searches run at once (processes)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load, date, version = load_average(), utc_date(), code_version()
    todo = settings(args)
    keys = [(seed, k) for seed in args.seeds for k in range(len(todo))]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {key: pool.submit(run, key[0], args, todo[key[1]]) for key in keys}
        runs = {key: f.result() for key, f in futures.items()}
    plain_total = {seed: curve(runs[(seed, 0)]["rows"])[-1][0] for seed in args.seeds}
    fractions = (0.25, 0.5, 0.75, 1.0)
    lines, seed_lines = [], []
    for k, setting in enumerate(todo):
        points = {seed: curve(runs[(seed, k)]["rows"]) for seed in args.seeds}
        cells = []
        for f in fractions:
            vals = [at(points[s], f * plain_total[s]) for s in args.seeds]
            cells.append(f"{_mean([v[0] for v in vals]):.2f} / {_mean([v[1] for v in vals]):.2f}")
        share = _mean([points[s][-1][0] / plain_total[s] for s in args.seeds])
        reach = []
        for s in args.seeds:
            target = curve(runs[(s, 0)]["rows"])[-1][1]
            hit = next((p[0] for p in points[s] if p[1] >= target), None)
            reach.append("-" if hit is None else f"{100 * hit / plain_total[s]:.0f}%")
        inheriting = _mean([sum(r["copied"] > 0 for r in runs[(s, k)]["rows"]) for s in args.seeds])
        wall = _mean([runs[(s, k)]["seconds"] for s in args.seeds])
        lines.append(f"| {setting['label']} | {' | '.join(cells)} | {100 * share:.0f}% | {', '.join(reach)} | "
                     f"{inheriting:.1f} | {wall:.0f} |")
        for s in args.seeds:
            end = points[s][-1]
            seed_lines.append(f"| {s} | {setting['label']} | {end[0]:.0f} | {end[1]:.2f} / {end[2]:.2f} |")
    pct = " | ".join(f"{int(100 * f)}% of the epochs" for f in fractions)
    variants = ", ".join(f"`{t}`" for t in args.variant)
    body = f"""## Weight inheritance in evolution (`inheritance.py`)

**What was measured.** Regularized evolution (population {args.population}, tournament 3, de-duplication on) of
{args.trials} `nb201` cells (C=8, N=1) on `{args.task}` ({f"{args.limit:,} samples" if args.limit else "all of it"}),
local executor, seeds {", ".join(map(str, args.seeds))}. Every search of a seed starts from the same first population
(same seed). Settings: every candidate trained from scratch for {args.epochs} epochs (SGD lr 0.05 cosine, batch 64:
the reference), every candidate trained from scratch for {args.short_epochs} epochs (the cheap baseline), and
`evaluator.inherit` as `epochs:lr_scale:schedule` = {variants}: a mutated child starts from its parent's trained
weights (all unchanged ops, batch-norm statistics included; the optimizer state is not inherited) and trains that many
epochs at `lr_scale` x 0.05 with that schedule; its parent's weights already carry the training of the whole lineage.
"Epochs" are the training epochs summed over the search's trials (a parent's epochs counted once, in its own trial).
The curve gives, averaged over seeds, the best validation accuracy found (%) / the test accuracy of that trial once
25/50/75/100% of the epochs the reference search spent were spent. Real training throughout.

{provenance(load, threads=1, date=date, version=version)}
Searches ran {args.jobs} at a time, one torch thread each.

**Figures (mean over seeds).**

| setting | {pct} | epochs spent | reference's best val reached at | children inheriting | wall (s) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(lines)}

Per seed, at the end of each search:

| seed | setting | epochs | best val / its test |
|---:|---|---:|---:|
{chr(10).join(seed_lines)}
"""
    publish("inheritance", body, write=not args.no_write)


if __name__ == "__main__":
    main()
