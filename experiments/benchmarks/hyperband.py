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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pruning_runs import RUNS, run_four_ways
from _results import provenance, publish


def main() -> None:
    args, load, out = run_four_ways(__doc__.splitlines()[0], trials=16, epochs=6, eta=2)
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
