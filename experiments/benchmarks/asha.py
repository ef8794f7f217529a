"""ASHA early stopping: the same random search (same proposals, same training seeds) with and without it.

Reports wall time, epochs trained, the best validation score found and where the no-ASHA winner ended up.
Writes the section ``asha`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/asha.py [--trials 24] [--epochs 8]
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


def run(directory: Path, trials: int, epochs: int, asha: dict[str, int] | None) -> dict[str, Any]:
    return run_search(directory, search_config(name="asha", task="mnist", limit=2000, channels=8, epochs=epochs,
                                               trials=trials, early_stopping=asha))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, trials=24, epochs=8, eta=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        full = run(Path(tmp) / "full", args.trials, args.epochs, None)
        asha = run(Path(tmp) / "asha", args.trials, args.epochs,
                   {"grace_epochs": args.grace, "reduction_factor": args.eta})
    winner, best = full["ranked"][0], asha["ranked"][0]
    survived = winner.id in asha["complete"]
    top3 = {t.id for t in full["ranked"][:3]}
    kept3 = sum(i in asha["complete"] for i in top3)
    body = f"""## ASHA early stopping (`asha.py`)

**What was measured.** The same random search (seed 0: identical proposals and training seeds) of {args.trials}
`nb201` cells (C=8, N=1) on `mnist` (2,000 samples), {args.epochs} epochs each (SGD lr 0.05 cosine, batch 64),
local executor, once without early stopping and once with ASHA (`early_stopping: {{grace_epochs: {args.grace},
reduction_factor: {args.eta}}}`): a trial stops at a rung (epochs {args.grace}, {args.grace * args.eta}, ...)
unless its validation accuracy is in the top 1/{args.eta} of the trials that reached that rung before it.

{provenance(load)}

**Figures.**

| run | wall time (s) | epochs trained | trials pruned | best validation accuracy | its trial |
|---|---:|---:|---:|---:|---:|
| no early stopping | {full['seconds']:.0f} | {full['epochs']} | {full['pruned']} | {winner.score:.2f} | {winner.id} |
| ASHA | {asha['seconds']:.0f} | {asha['epochs']} | {asha['pruned']} | {best.score:.2f} | {best.id} |

ASHA took **{asha['seconds'] / full['seconds']:.2f}x** the time and {asha['epochs'] / full['epochs']:.2f}x the
epochs. The no-early-stopping winner (trial {winner.id}) {'was trained to the end under ASHA too' if survived
else 'was pruned by ASHA'}; {kept3} of its top 3 were.
"""
    publish("asha", body, write=not args.no_write)


if __name__ == "__main__":
    main()
