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
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pruning_runs import add_arguments, run_search, search_config
from _results import load_average, provenance, publish

RUNS = ("none", "asha", "hyperband", "bohb")
PRETEXT = "rotation"


def run(directory: Path, args: argparse.Namespace, kind: str) -> dict[str, Any]:
    stopping = None if kind == "none" else {"name": "asha" if kind == "asha" else "hyperband",
                                            "grace_epochs": args.grace, "reduction_factor": args.eta}
    evaluator = {"name": "ssl", "options": {"pretext": PRETEXT},
                 "train": {"epochs": args.epochs, "batch_size": 64, "optimizer": "adam", "lr": 0.01}}
    return run_search(directory, search_config(name=kind, task=args.task, limit=args.limit, channels=args.channels,
                                               epochs=args.epochs, trials=args.trials,
                                               strategy="bohb" if kind == "bohb" else "random",
                                               early_stopping=stopping, evaluator=evaluator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, trials=24, epochs=4, eta=2)
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
