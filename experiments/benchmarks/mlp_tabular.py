"""The ``mlp`` space searched on a tabular task against the best fixed MLP of a small grid, at equal training.

Data: the built-in ``breast_cancer`` task (scikit-learn's breast cancer set: 569 samples, 30 features, 2 classes;
stratified 70/15/15 split from the seed, standardised with the training split). Grid: depth 1 or 2, width 32
or 128, ReLU, no dropout, no normalisation (4 models, members of the ``mlp`` space). Search: evolution over the
``mlp`` space (defaults) for ``--trials`` trials. Both train with the same config; the best of each is chosen by
validation accuracy, and its test accuracy is reported. Writes the section ``mlp_tabular`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/mlp_tabular.py [--trials 16] [--epochs 20]
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

from nas.evaluation.evaluators import TrainEvaluator
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.trials.trial import Trial
from search_spaces import get_space

GRID = [(depth, width) for depth in (1, 2) for width in (32, 128)]


def _row(name: str, r: Any) -> str:
    """A table row of a result or stored trial: validation and test accuracy, parameters."""
    return f"| {name} | {r.score:.2f} | {r.metrics['test_acc']:.2f} | {r.metrics['params']:,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    train: dict[str, Any] = {"epochs": args.epochs, "batch_size": 32, "optimizer": "adam", "lr": 0.001,
                             "schedule": "cosine", "weight_decay": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        space = get_space("mlp")
        evaluator = TrainEvaluator(compiler=space.compiler(), task="breast_cancer", train=train, data_seed=0,
                                   latency_runs=0)
        names = space.decision_names()
        grid_rows = []
        start = time.perf_counter()
        for i, (depth, width) in enumerate(GRID):
            values = {"depth": depth, "activation": "relu", "dropout": 0.0, "norm": "none",
                      **{f"width_{k}": width for k in range(1, 5)}}
            options = {d.name: d.options for d in space.decisions}  # type: ignore[attr-defined]  # a PythonSpace
            arch = space.decode([list(options[n]).index(values[n]) for n in names])
            result = evaluator.evaluate(Trial(i, arch, seed=i))
            grid_rows.append((f"depth {depth}, width {width}", result))
        grid_seconds = time.perf_counter() - start
        n_val = len(evaluator.task.y_val)
        config = parse_config({
            "name": "mlp_tabular", "seed": 0, "space": {"name": "mlp"}, "strategy": {"name": "evolution"},
            "evaluator": {"name": "train", "task": "breast_cancer", "train": train, "options": {"latency_runs": 0}},
            "budget": {"max_trials": args.trials}, "execution": {"executor": "local", "workers": 1,
                                                                 "threads_per_trial": 1}})
        exp = Experiment.create(config, Path(tmp) / "search")
        start = time.perf_counter()
        try:
            exp.run()
            ranked = exp.ranked()
            failed = len(exp.store.trials("FAILED"))
        finally:
            exp.close()
        search_seconds = time.perf_counter() - start
    label, grid_best = max(grid_rows, key=lambda row: row[1].score or -1.0)
    best = ranked[0]
    chosen = {k: v for k, v in best.arch.macro["decisions"].items() if k not in best.arch.macro.get("inactive", [])}
    rows = "\n".join(_row(f"grid: {name}", r) for name, r in grid_rows)
    body = f"""## The `mlp` space on tabular data versus a fixed grid (`mlp_tabular.py`)

**What was measured.** The built-in task `breast_cancer` (scikit-learn's breast cancer data: 569 samples, 30
features, 2 classes; stratified 70/15/15 split, seed 0, standardised with the training split). Every model
trains {args.epochs} epochs (Adam lr 0.001, cosine, batch 32) and is chosen by validation accuracy; test accuracy
is reported, never used to choose. Grid: the 4 MLPs of depth 1 or 2 and width 32 or 128 (ReLU, no dropout or
normalisation), members of the `mlp` space, trained once each. Search: evolution over the `mlp` space
(defaults: depth 1-4, widths 32-256, activation, dropout, normalisation) for {args.trials} trials on the local
executor ({failed} failed).

{provenance(load)}

**Figures.**

| model | validation accuracy | test accuracy | parameters |
|---|---:|---:|---:|
{rows}
{_row(f"**best of the grid** ({label})", grid_best)}
{_row(f"**best of the search** (trial {best.id})", best)}

The search's best: `{' '.join(f'{k}={v}' for k, v in chosen.items())}`. Wall time: grid {grid_seconds:.0f} s,
search {search_seconds:.0f} s. With {n_val} validation samples one sample is {100 / n_val:.1f} points: differences
of a point or two are within noise.
"""
    publish("mlp_tabular", body, write=not args.no_write)


if __name__ == "__main__":
    main()
