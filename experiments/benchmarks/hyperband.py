"""Hyperband and BOHB beside ASHA on real training: the same search space, task and training seeds, four ways.

``none`` (random search, every trial trained to the end), ``asha``, ``hyperband`` (random search with the
Hyperband pruner) and ``bohb`` (the ``bohb`` strategy with the Hyperband pruner). The first three make the same
proposals (random search, seed 0), so whether the no-early-stopping winner survived is meaningful for them; BOHB
proposes its own candidates (its first ones are the same random draws until its model has enough observations).
Reports wall time, epochs trained, trials pruned, the best validation score found and its test score.
Writes the section ``hyperband`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/hyperband.py [--trials 16] [--epochs 6] [--eta 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish

from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

RUNS = ("none", "asha", "hyperband", "bohb")


def run(directory: Path, args: argparse.Namespace, kind: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": kind, "seed": 0, "space": {"name": "nb201", "options": {"C": args.channels, "N": 1}},
        "strategy": "bohb" if kind == "bohb" else "random",
        "evaluator": {"name": "train", "task": args.task, "task_options": {"limit": args.limit},
                      "train": {"epochs": args.epochs, "batch_size": 64, "lr": 0.05, "optimizer": "sgd",
                                "schedule": "cosine"}},
        "budget": {"max_trials": args.trials}, "execution": {"executor": "local", "workers": 1,
                                                              "threads_per_trial": 1}}
    if kind != "none":
        data["early_stopping"] = {"name": "asha" if kind == "asha" else "hyperband", "grace_epochs": args.grace,
                                  "reduction_factor": args.eta}
    exp = Experiment.create(parse_config(data), directory)
    start = time.perf_counter()
    try:
        exp.run()
        seconds = time.perf_counter() - start
        trials = exp.store.trials()
        ranked = exp.ranked()
    finally:
        exp.close()
    return {"seconds": seconds, "epochs": sum(len(t.history) for t in trials),
            "pruned": sum(t.status == "PRUNED" for t in trials), "ranked": ranked,
            "complete": {t.id for t in trials if t.status == "COMPLETE"},
            "archs": {t.id: t.arch for t in trials}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--grace", type=int, default=1)
    parser.add_argument("--eta", type=int, default=2)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in RUNS:
            out[kind] = run(Path(tmp) / kind, args, kind)
            print(kind, f"{out[kind]['seconds']:.0f}s", out[kind]["epochs"], "epochs", flush=True)
    full = out["none"]
    winner = full["ranked"][0]
    rows = []
    for kind in RUNS:
        r = out[kind]
        best = r["ranked"][0]
        test = best.metrics.get("test_acc", float("nan"))
        survived = ("n/a (own proposals)" if kind == "bohb" else "-" if kind == "none"
                    else "yes" if winner.id in r["complete"] else "no, pruned")
        rows.append(f"| {kind} | {r['seconds']:.0f} | {r['seconds'] / full['seconds']:.2f}x | {r['epochs']} | "
                    f"{r['pruned']} | {best.score:.2f} | {test:.2f} | {best.id} | {survived} |")
    table = "\n".join(rows)
    header = ("| run | wall time (s) | vs none | epochs trained | trials pruned | best validation accuracy | "
              f"its test accuracy | its trial | no-stopping winner (trial {winner.id}) trained to the end? |")
    body = f"""## Hyperband and BOHB beside ASHA, real training (`hyperband.py`)

**What was measured.** {args.trials} trials of `nb201` cells (C={args.channels}, N=1) on `{args.task}`
({args.limit} samples), {args.epochs} epochs each (SGD lr 0.05 cosine, batch 64), local executor, seed 0, four
ways: no early stopping (random search), ASHA (`early_stopping: {{grace_epochs: {args.grace}, reduction_factor:
{args.eta}}}`), Hyperband (`early_stopping: {{name: hyperband, grace_epochs: {args.grace}, reduction_factor:
{args.eta}}}`, brackets with first rungs at {args.grace}, {args.grace * args.eta}, ... epochs) and BOHB
(`strategy: bohb` with that Hyperband pruner). The first three make identical proposals with identical training
seeds; BOHB proposes its own once its density model has enough observations at some budget.

{provenance(load, threads=1)}

**Figures.**

{header}
|---|---:|---:|---:|---:|---:|---:|---:|---|
{table}

Wall times are under the load shown above (several other jobs on 2 cores), so compare epochs trained as the
cost; a budget this small (a few brackets) shows the mechanics and costs, not a ranking of the methods.
"""
    publish("hyperband", body, write=not args.no_write)


if __name__ == "__main__":
    main()
