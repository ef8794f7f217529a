"""What the early-stopping benchmarks (``asha.py``, ``hyperband.py``, ``ssl_pruning.py``) share: their command-line
arguments, the random search on real training they run (an ``nb201`` cell space, the ``train`` evaluator with SGD
unless told otherwise, local executor, one thread, seed 0), what each run reports, and the four ways
(:data:`RUNS`) ``hyperband.py`` and ``ssl_pruning.py`` run it (:func:`run_four_ways`)."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _results import load_average

from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

__all__ = ["RUNS", "add_arguments", "run_four_ways", "run_search", "search_config"]

#: no early stopping, ASHA, random search with the Hyperband pruner, the ``bohb`` strategy with that pruner
RUNS = ("none", "asha", "hyperband", "bohb")


def add_arguments(parser: argparse.ArgumentParser, *, trials: int, epochs: int, eta: int) -> None:
    """``--trials``, ``--epochs``, ``--grace`` (first rung, epochs), ``--eta`` (reduction factor), ``--no-write``."""
    parser.add_argument("--trials", type=int, default=trials)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--grace", type=int, default=1)
    parser.add_argument("--eta", type=int, default=eta)
    parser.add_argument("--no-write", action="store_true")


def search_config(*, name: str, task: str, limit: int, channels: int, epochs: int, trials: int,
                  strategy: str = "random", early_stopping: dict[str, Any] | None = None,
                  evaluator: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment config: ``trials`` cells of ``nb201`` (C=``channels``, N=1) trained ``epochs`` epochs on
    ``limit`` samples of ``task`` (SGD lr 0.05 cosine, batch 64), proposed by ``strategy``, pruned by
    ``early_stopping`` (None: every trial trained to the end). ``evaluator`` overrides keys of the evaluator
    section (e.g. ``name: ssl``, its ``options`` and ``train``)."""
    data: dict[str, Any] = {
        "name": name, "seed": 0, "space": {"name": "nb201", "options": {"C": channels, "N": 1}}, "strategy": strategy,
        "evaluator": {"name": "train", "task": task, "task_options": {"limit": limit},
                      "train": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "optimizer": "sgd",
                                "schedule": "cosine"}},
        "budget": {"max_trials": trials}, "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}
    data["evaluator"].update(evaluator or {})
    if early_stopping is not None:
        data["early_stopping"] = early_stopping
    return data


def run_search(directory: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Run the experiment ``data`` describes in ``directory``: its wall ``seconds``, ``epochs`` trained over all
    trials, trials ``pruned``, the ``ranked`` trials, the ``complete`` ones (id -> score) and the epochs each
    trial ``trained`` (id -> epochs)."""
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
            "complete": {t.id: t.score for t in trials if t.status == "COMPLETE"},
            "trained": {t.id: len(t.history) for t in trials}}


def run_four_ways(description: str, *, trials: int, epochs: int, eta: int,
                  evaluator: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
                  ) -> tuple[argparse.Namespace, str, dict[str, dict[str, Any]]]:
    """Parse the command line (:func:`add_arguments` with these defaults, ``--task`` (digits), ``--limit`` (1000),
    ``--channels`` (4)), then run the search each of the :data:`RUNS` ways in a temporary folder on one torch
    thread, printing each run's wall time and epochs as it ends. ``evaluator(args)`` overrides keys of the evaluator
    section (see :func:`search_config`). Returns the arguments, the load average at the start and, per way, what
    :func:`run_search` reports."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser, trials=trials, epochs=epochs, eta=eta)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in RUNS:
            stopping = None if kind == "none" else {"name": "asha" if kind == "asha" else "hyperband",
                                                    "grace_epochs": args.grace, "reduction_factor": args.eta}
            data = search_config(name=kind, task=args.task, limit=args.limit, channels=args.channels,
                                 epochs=args.epochs, trials=args.trials,
                                 strategy="bohb" if kind == "bohb" else "random", early_stopping=stopping,
                                 evaluator=evaluator(args) if evaluator else None)
            out[kind] = run_search(Path(tmp) / kind, data)
            print(kind, f"{out[kind]['seconds']:.0f}s", out[kind]["epochs"], "epochs", flush=True)
    return args, load, out
