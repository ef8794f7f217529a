"""Transfer learning: a model searched on ``mnist``, fine-tuned on ``digits`` in each mode, against the same
architecture trained from scratch on ``digits`` with the same budget.

A short evolution search of ``nb201`` cells on ``mnist`` (28x28) picks an architecture; its best trial is exported
(trained again as in the search: that is the source's weights). ``nas finetune`` then carries it to ``digits``
(8x8, the same ten digits drawn differently) in the modes ``features`` (frozen body, new head), ``partial`` (the stem
and the first ``--freeze`` cells frozen) and ``full`` (everything learns; the body at ``--body-lr-scale`` of the
head's rate), and the same architecture is trained from scratch on ``digits`` with the same training config, epochs
and seed. Each is run on a small and on the whole ``digits`` training split. Reports validation and test accuracy and
the training time. Writes the section ``transfer`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/transfer.py [--trials 4] [--search-epochs 3] [--mnist 1500]
        [--epochs 5] [--limits 300,1797] [--freeze 2] [--body-lr-scale 0.1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish

from nas.evaluation.metrics import get_metric
from nas.evaluation.scoring import score_split
from nas.evaluation.tasks import load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.graph.compiler import build_model
from nas.outputs.export import export_experiment
from nas.outputs.finetune import finetune
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

TRAIN = {"batch_size": 32, "lr": 0.05, "optimizer": "sgd", "schedule": "cosine"}
#: the digits task at MNIST's size: this module's :func:`digits28` as a task function
DIGITS28 = "transfer:digits28"


def digits28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits at MNIST's input size: each 8x8 image scaled 3x (24x24) and padded to 28x28, as MNIST
    centres a 20x20 digit in 28x28 (a task function: ``task: "transfer:digits28"``)."""
    x, y = load_digits(return_X_y=True)
    images = np.kron(x.reshape(-1, 8, 8), np.ones((3, 3)))
    return np.pad(images, ((0, 0), (2, 2), (2, 2)))[:, None].astype(np.float32), y


def task_of(size: int, limit: int) -> tuple[str, dict[str, Any]]:
    """The digits task at ``size`` (8: as shipped; 28: :func:`digits28`) and its options."""
    if size == 8:
        return "digits", {"limit": limit}
    return DIGITS28, {"limit": limit, "module_dir": str(Path(__file__).resolve().parent)}


def search(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "transfer-source", "seed": 0, "space": {"name": "nb201", "options": {"C": args.C, "N": 1}},
        "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
        "evaluator": {"name": "train", "task": "mnist", "task_options": {"limit": args.mnist},
                      "train": {**TRAIN, "epochs": args.search_epochs}, "options": {"latency_runs": 0}},
        "budget": {"max_trials": args.trials},
        "execution": {"executor": "local", "workers": 1, "threads_per_trial": args.threads}}
    start = time.perf_counter()
    exp = Experiment.create(parse_config(data), directory)
    try:
        exp.run(progress=lambda event: print(event, file=sys.stderr, flush=True))
        best = exp.ranked()[0]
    finally:
        exp.close()
    searched = time.perf_counter() - start
    report = export_experiment(directory, top=1, formats="json,weights")
    return {"best": best, "search_seconds": searched, "export_seconds": report.seconds,
            "export": report.out, "source_test": report.manifest["models"][0]["metrics"]["test_acc"]}


def scratch(best: Any, task_name: str, options: dict[str, Any], cfg: TrainConfig, seed: int) -> dict[str, float]:
    """The source's architecture trained from scratch on digits, as the fine-tuning trains (config, seed)."""
    task = load_task(task_name, seed=seed, **options)
    metric = get_metric("accuracy")
    with seeded(seed):
        model = build_model(best.arch, task.input_shape, task.num_classes)
        report = train(model, task, cfg, seed=seed, metric=metric)
    test = score_split(model, torch.as_tensor(task.x_test), torch.as_tensor(task.y_test), task, metric)
    return {"val_acc": report.val_acc, "test_acc": test.acc, "train_seconds": report.seconds,
            "train_samples": len(task.y_train), "val_samples": len(task.y_val)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--search-epochs", type=int, default=3)
    parser.add_argument("--mnist", type=int, default=1500, help="MNIST samples of the search (split 70/15/15)")
    parser.add_argument("--C", type=int, default=8, help="nb201 stem channels")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of every digits run")
    parser.add_argument("--limits", default="300,1797", help="digits samples (split 70/15/15), comma-separated")
    parser.add_argument("--sizes", default="8,28", help="digits input sizes: 8 (as shipped), 28 (scaled to MNIST's)")
    parser.add_argument("--freeze", type=int, default=2, help="partial: cells frozen after the stem")
    parser.add_argument("--body-lr-scale", type=float, default=0.1, help="full: the body's share of the lr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = load_average()
    started = time.perf_counter()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        src = search(Path(tmp) / "source", args)
        best = src["best"]
        cfg = TrainConfig(**TRAIN, epochs=args.epochs, threads=args.threads)
        cases = [(size, limit) for size in (int(x) for x in args.sizes.split(","))
                 for limit in (int(x) for x in args.limits.split(","))]
        for size, limit in cases:
            task_name, options = task_of(size, limit)
            runs: list[tuple[str, dict[str, Any]]] = []
            for mode, extra in (("features", {}), ("partial", {"freeze": args.freeze}),
                                ("full", {"body_lr_scale": args.body_lr_scale})):
                report = finetune(src["export"], task=task_name, task_options=options, mode=mode,
                                  epochs=args.epochs, out=Path(tmp) / f"ft-{size}-{limit}-{mode}", seed=args.seed,
                                  train_settings={**TRAIN, "threads": args.threads}, formats="json,weights",
                                  **extra)
                p = report.provenance
                assert report.ok, p["export"]
                label = {"features": "fine-tuned, `features` (frozen body, new head)",
                         "partial": f"fine-tuned, `partial` (stem + {args.freeze} cells frozen)",
                         "full": f"fine-tuned, `full` (body lr x{args.body_lr_scale:g})"}[mode]
                runs.append((label, {**p["scores"], "frozen": len(p["frozen_parameters"]),
                                     "copied": len(p["copied"]) + len(p["adapted"])}))
            base = scratch(best, task_name, options, cfg, args.seed)
            runs.append(("from scratch, same architecture and budget", base | {"frozen": 0, "copied": 0}))
            for label, s in runs:
                rows.append(f"| {size}x{size} | {limit} ({base['train_samples']} train, {base['val_samples']} val) | "
                            f"{label} | {s['val_acc']:.2f} | {s['test_acc']:.2f} | {s['train_seconds']:.1f} | "
                            f"{s['copied']} | {s['frozen']} |")
    cell = "; ".join(f"{s}>{d}:{op}" for s, d, op in best.arch.cell("cell").edges if op != "none")
    body = f"""## Transfer learning: searched on MNIST, fine-tuned on digits, against from scratch (`transfer.py`)

**What was measured.** Source: an evolution search (population 4, sample 2) of {args.trials} `nb201` cells
(C={args.C}, N=1) on `mnist` ({args.mnist} samples, 28x28, split 70/15/15 with seed 0), {args.search_epochs} epochs per
trial, SGD lr 0.05 cosine, batch 32; its best trial (trial {best.id}, validation {best.score:.2f}, cell `{cell}`)
exported with `nas export` (trained again as in the search: test accuracy {src['source_test']:.2f} on MNIST). Each
row then trains on scikit-learn's `digits` (the same ten digits drawn differently; stratified split 70/15/15 with seed
{args.seed}, `limit` samples), either as shipped (8x8) or scaled 3x and padded to MNIST's 28x28 (the task function
`digits28` of the script), for {args.epochs} epochs with the same training config and seed: `nas finetune EXPORT
--task T --mode M` in the three modes (the head is new; every other tensor fits either input, the cells' pooling
being global), and the same architecture compiled fresh and trained from scratch. Validation picks the epoch
(restore best); test accuracy is reported only. "Training s" is the trainer's time for the {args.epochs} epochs
(export and verification excluded); "copied" counts the tensors taken from the source, "frozen" the parameter tensors
not trained. One seed, small validation splits (one sample is 100/val points): differences of a few points are
noise. Search {src['search_seconds']:.0f} s, source export {src['export_seconds']:.0f} s, total wall time
{time.perf_counter() - started:.0f} s.

{provenance(load, threads=args.threads)}

**Figures.**

| digits input | samples | model | validation accuracy | test accuracy | training s | copied | frozen |
|---|---|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
"""
    publish("transfer", body, write=not args.no_write)


if __name__ == "__main__":
    main()
