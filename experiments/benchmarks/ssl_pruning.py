"""Early stopping of a label-free search: ASHA, Hyperband and BOHB with the ``ssl`` evaluator.

The search of ``hyperband.py`` (random search over ``nb201`` cells on ``digits``, local executor, one thread, seed
0) with the ``ssl`` evaluator (pretext ``rotation``, Adam lr 0.01, batch 64; the labels are not used), four ways:
``none`` (every trial trained to the end), ``asha``, ``hyperband`` (random search with the Hyperband pruner) and
``bohb`` (the ``bohb`` strategy with the Hyperband pruner). The first three make the same proposals with the same
training seeds, so for each the best trial it completed can be looked up in the ``none`` run: its rank there and
whether the ``none`` winner survived. Reports wall time, epochs trained, trials pruned and the best pretext
validation accuracy found. Writes the section ``ssl_pruning`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/ssl_pruning.py [--trials 24] [--epochs 4] [--eta 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pruning_runs import RUNS, run_four_ways
from _results import provenance, publish

PRETEXT = "rotation"


def ssl_evaluator(args: argparse.Namespace) -> dict[str, Any]:
    """The evaluator section's ``ssl`` keys: pretext :data:`PRETEXT`, Adam lr 0.01, batch 64."""
    return {"name": "ssl", "options": {"pretext": PRETEXT},
            "train": {"epochs": args.epochs, "batch_size": 64, "optimizer": "adam", "lr": 0.01}}


def main() -> None:
    args, load, out = run_four_ways(__doc__.splitlines()[0], trials=24, epochs=4, eta=2, evaluator=ssl_evaluator)
    full = out["none"]
    order = [t.id for t in full["ranked"]]
    winner = full["ranked"][0]
    rows = []
    for kind in RUNS:
        r = out[kind]
        best = r["ranked"][0]
        rank = "n/a (own proposals)" if kind == "bohb" else f"{order.index(best.id) + 1} of {len(order)}"
        survived = ("n/a" if kind == "bohb" else "-" if kind == "none" else "yes" if winner.id in r["complete"]
                    else f"no, pruned after {r['trained'][winner.id]} of {args.epochs} epochs")
        rows.append(f"| {kind} | {r['seconds']:.0f} | {r['epochs']} | {r['epochs'] / full['epochs']:.2f}x | "
                    f"{r['pruned']} | {best.score:.2f} | {best.id} | {rank} | {survived} |")
    table = "\n".join(rows)
    header = (f"| run | wall time (s) | epochs trained | vs none | trials pruned | best {PRETEXT}_acc % | its trial "
              f"| its rank in none | none's winner (trial {winner.id}) trained to the end? |")
    body = f"""## Early stopping of a label-free search: ASHA, Hyperband and BOHB with `ssl` (`ssl_pruning.py`)

**What was measured.** {args.trials} trials of `nb201` cells (C={args.channels}, N=1) on `{args.task}`
({args.limit} samples; its labels unused), scored by the `ssl` evaluator (pretext `{PRETEXT}`: validation accuracy
of predicting which of 4 rotations was applied), {args.epochs} epochs each (Adam lr 0.01, batch 64), local executor,
seed 0, four ways: no early stopping (random search), ASHA (`early_stopping: {{grace_epochs: {args.grace},
reduction_factor: {args.eta}}}`), Hyperband (`{{name: hyperband, ...}}`, same options) and BOHB (`strategy: bohb`
with that Hyperband pruner). The first three make identical proposals with identical training seeds; "its rank in
none" is where the best trial a pruned run completed stands among all trials trained to the end.

{provenance(load, threads=1)}

**Figures.**

{header}
|---|---:|---:|---:|---:|---:|---:|---|---|
{table}

Epochs trained are the cost to compare (wall times are under the load above). A budget this small shows that
early stopping works on the pretext's per-epoch score and what it saves, not a ranking of the methods. ASHA's
rungs sit at {args.grace}, {args.grace * args.eta}, {args.grace * args.eta ** 2}, ... epochs, so with
{args.epochs} epochs a trial below the cut at the last rung is recorded PRUNED even when that rung is its last
epoch (Hyperband's brackets never stop at the last epoch).
"""
    publish("ssl_pruning", body, write=not args.no_write)


if __name__ == "__main__":
    main()
