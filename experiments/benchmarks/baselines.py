"""The search's best against classic baselines on ``mnist``, at equal training settings (accuracy and parameters).

One experiment: an evolution search of ``nb201`` cells with ``baselines: [...]`` in its config, so the references
are trained by the same trainer, on the same split, with the same settings and seed as every trial. Reports the
search's best (validation and test accuracy, parameters) beside each baseline and the place each baseline would
take in the search's ranking. Writes the section ``baselines`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/baselines.py [--trials 16] [--epochs 4] [--limit 2000]
        [--baselines lenet5,resnet18,vgg11]
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
from nas.trials.baselines import place


def run(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "baselines", "seed": 0, "space": {"name": "nb201", "options": {"C": args.C, "N": 1}},
        "strategy": {"name": "evolution", "options": {"population": 8, "sample_size": 3}},
        "evaluator": {"name": "train", "task": "mnist", "task_options": {"limit": args.limit},
                      "train": {"epochs": args.epochs, "batch_size": 64, "lr": 0.05, "optimizer": "sgd",
                                "schedule": "cosine"}},
        "budget": {"max_trials": args.trials}, "baselines": args.baselines.split(","),
        "execution": {"executor": "local", "workers": 1, "threads_per_trial": args.threads}}
    exp = Experiment.create(parse_config(data), directory)
    start = time.perf_counter()
    try:
        exp.run(progress=lambda event: print(event, file=sys.stderr, flush=True))
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "ranked": exp.ranked(), "baselines": exp.baselines(), "config": data}
    finally:
        exp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--limit", type=int, default=2000, help="MNIST samples used (split 70/15/15)")
    parser.add_argument("--C", type=int, default=8, help="nb201 stem channels")
    parser.add_argument("--baselines", default="lenet5,resnet18,vgg11")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        out = run(Path(tmp) / "exp", args)
    ranked, baselines = out["ranked"], out["baselines"]
    scores = [t.score for t in ranked]

    def fmt(x: Any, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    rows = []

    def row(label: str, score: float, metrics: dict[str, Any], where: str) -> str:
        return (f"| {label} | {score:.2f} | {fmt(metrics.get('test_acc'), '.2f')} "
                f"| {fmt(metrics.get('params'), ',.0f')} | {fmt(metrics.get('train_seconds'), '.1f')} | {where} |")

    if ranked:
        rows.append(row(f"search's best (trial {ranked[0].id})", ranked[0].score, ranked[0].metrics, "1"))
    for b in baselines:
        if b.score is None:
            rows.append(f"| baseline `{b.name}` | {b.status}: {b.error} | | | | |")
            continue
        rows.append(row(f"baseline `{b.name}`", b.score, b.metrics, f"{place(b.score, scores)} of {len(scores) + 1}"))
    table = "\n".join(rows)
    body = f"""## Search's best against classic baselines on MNIST (`baselines.py`)

**What was measured.** One experiment: an evolution search (population 8, sample 3) of {args.trials} `nb201`
cells (C={args.C}, N=1) on `mnist` ({args.limit} samples, 28x28, split 70/15/15 with seed 0), with
`baselines: [{args.baselines.replace(',', ', ')}]` in its config, so every baseline is trained by the same trainer
with the same settings as every trial: {args.epochs} epochs, SGD lr 0.05 with a cosine schedule, batch 64, seed 0,
local executor, {args.threads} torch thread(s). Baselines are the plain-PyTorch reference models of
`nas.graph.zoo` in their small-input variants (28x28 < 64: 3x3 stem, no stem max-pool; LeNet-5 pads C1). The
search is ranked by validation accuracy; test accuracy is reported only. "Place" is where the model's validation
accuracy would rank among the search's {len(scores)} completed trials. Total wall time {out['seconds']:.0f} s.

{provenance(load, threads=args.threads)}

**Figures.**

| model | validation accuracy | test accuracy | parameters | training s | place |
|---|---:|---:|---:|---:|---:|
{table}

{sum(s <= 100.0 / 10 + 1.0 for s in scores)} of the search's {len(scores)} trials ended at chance level (at most 11%
validation accuracy on 10 classes).
"""
    publish("baselines", body, write=not args.no_write)


if __name__ == "__main__":
    main()
