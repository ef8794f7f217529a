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
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pruning_runs import add_arguments, run_search, search_config
from _results import load_average, provenance, publish

RUNS = ("none", "asha", "hyperband", "bohb")


def run(directory: Path, args: argparse.Namespace, kind: str) -> dict[str, Any]:
    stopping = None if kind == "none" else {"name": "asha" if kind == "asha" else "hyperband",
                                            "grace_epochs": args.grace, "reduction_factor": args.eta}
    return run_search(directory, search_config(name=kind, task=args.task, limit=args.limit, channels=args.channels,
                                               epochs=args.epochs, trials=args.trials,
                                               strategy="bohb" if kind == "bohb" else "random",
                                               early_stopping=stopping))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, trials=16, epochs=6, eta=2)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=4)
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
