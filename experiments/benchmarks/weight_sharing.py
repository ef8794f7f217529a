"""Weight sharing (single-path one-shot) on NAS-Bench-201 cells, CPU: how well inherited-weight accuracy ranks
cells, and what a search with it finds at the cost of one supernet training.

One experiment (``nas.runtime.experiment.Experiment``, local executor) searches the ``nb201`` space on a real task
with the ``weight_sharing`` evaluator: it trains one single-path supernet (uniformly sampled paths), scores
``--candidates`` candidates proposed by ``--strategy`` with inherited weights (batch-norm recalibrated), then
retrains the ``--retrain-top`` best from scratch with the search's training settings and ranks them by that. Then
``--cells`` uniformly drawn distinct cells are scored both ways with the experiment's own supernet: with inherited
weights, and trained from scratch with the same training settings (stand-alone, in a second process while the search
runs). Reported: Kendall's tau (with a 95% bootstrap interval over the cells; and Spearman's rho) of
inherited-weight accuracy against stand-alone accuracy and against NAS-Bench-201's CIFAR-10 accuracy (200-epoch
test), and the search's winner (after retraining) against the random cells at equal total CPU cost: its percentile
among the stand-alone random cells (ties half, as ``darts_nb201.py`` reports it) and the best of as many random
cells as the search's cost would have trained. Writes the section ``weight-sharing`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/weight_sharing.py [--task mnist] [--cells 40] [--no-write]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import bootstrap_interval, load_average, provenance, publish

from nas.evaluation.evaluators import NB201Evaluator, TrainEvaluator
from nas.graph.architecture import Architecture
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.trials.trial import Trial
from nas.weightsharing.evaluator import WeightSharingEvaluator
from search_spaces import get_space


def percentile(value: float, others: list[float]) -> float:
    below = sum(o < value for o in others)
    ties = sum(o == value for o in others)
    return 100.0 * (below + 0.5 * ties) / len(others)


def distinct_cells(space: Any, n: int, seed: int) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        arch = space.sample(rng)
        if arch.canonical_hash() not in seen:
            seen.add(arch.canonical_hash())
            out.append(arch)
    return out


def train_standalone(space_options: dict[str, Any], cells: int, task: str, task_options: dict[str, Any],
                     train: dict[str, Any], data_seed: int, part: int = 0,
                     parts: int = 1) -> dict[int, dict[str, float]]:
    """The random cells ``i`` (of ``cells``) with ``i % parts == part`` trained from scratch (the search's training
    settings and data seed); runs in a child process, next to the search, so that both fit the time box; CPU
    time is this process's."""
    torch.set_num_threads(1)
    space = get_space("nb201", **space_options)
    evaluator = TrainEvaluator(compiler=space.compiler(), task=task, task_options=task_options, train=train,
                               data_seed=data_seed, latency_runs=0)
    out = {}
    for i, arch in enumerate(distinct_cells(space, cells, seed=1)):
        if i % parts != part:
            continue
        c = time.process_time()
        alone = evaluator.evaluate(Trial(i, arch, 1000 + i))
        out[i] = {"val": alone.metrics.get("val_acc", float("nan")), "test": alone.metrics.get("test_acc"),
                  "cpu": time.process_time() - c}
        print("stand-alone", i, out[i], flush=True)
    return out


def ci(p: float, interval: tuple[float, float]) -> str:
    return f"p={p:.3g}; 95% bootstrap {interval[0]:.2f} to {interval[1]:.2f}"


def run(args: argparse.Namespace) -> str:
    space_options = {"C": args.channels, "N": 1}
    task_options: dict[str, Any] = {"val_fraction": 0.3, "test_fraction": 0.2}
    if args.limit:
        task_options["limit"] = args.limit
    train = {"epochs": args.train_epochs, "batch_size": 64, "lr": 0.05, "optimizer": "sgd", "schedule": "cosine",
             "threads": 1}
    options = {"supernet_epochs": args.supernet_epochs, "supernet_batch_size": 64, "supernet_lr": 0.05,
               "supernet_none_weight": args.none_weight, "bn_recalibration_batches": args.bn_batches,
               "retrain_top": args.retrain_top}
    cfg = {"name": "weight-sharing-bench", "seed": 0, "space": {"name": "nb201", "options": space_options},
           "strategy": {"name": args.strategy},
           "evaluator": {"name": "weight_sharing", "task": args.task, "task_options": task_options, "train": train,
                         "options": options},
           "budget": {"max_trials": args.candidates}, "execution": {"executor": "local", "workers": 1}}
    table = NB201Evaluator()
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment.create(parse_config(cfg), Path(tmp) / "exp")
        evaluator = exp.evaluator
        assert isinstance(evaluator, WeightSharingEvaluator)
        parts = args.standalone_processes
        pool = multiprocessing.get_context("spawn").Pool(parts)
        pending = [pool.apply_async(train_standalone, (space_options, args.cells, args.task, task_options, train,
                                                       evaluator.data_seed, part, parts)) for part in range(parts)]
        c0, w0 = time.process_time(), time.perf_counter()
        exp.run()
        search_cpu, search_wall = time.process_time() - c0, time.perf_counter() - w0
        assert evaluator.shared is not None
        shared = evaluator.shared
        retrained = [t for t in exp.store.retrained() if t.status == "COMPLETE"]
        winner = exp.ranked()[0]
        trials = exp.store.trials("COMPLETE")
        eval_seconds = float(np.mean([t.metrics["eval_seconds"] for t in trials]))
        retrain_seconds = sum(t.metrics["train_seconds"] for t in retrained)
        exp.close()
    space = get_space("nb201", **space_options)
    cells = distinct_cells(space, args.cells, seed=1)
    inherited = [evaluator.evaluate(Trial(i, arch, 1000 + i)).metrics.get("val_acc", float("nan"))
                 for i, arch in enumerate(cells)]
    alone = {i: row for job in pending for i, row in job.get().items()}
    pool.close()
    pool.join()
    rows = [{"inherited": inherited[i], **alone[i], "nb201": float(table.lookup(arch).cifar10_test200)}
            for i, arch in enumerate(cells)]
    inh = np.array([r["inherited"] for r in rows])
    val = np.array([r["val"] for r in rows])
    nb = np.array([r["nb201"] for r in rows])
    cell_cpu = float(np.mean([r["cpu"] for r in rows]))
    tau_sa, p_sa = kendalltau(inh, val)
    rho_sa = spearmanr(inh, val)[0]
    tau_nb, p_nb = kendalltau(inh, nb)
    rho_nb = spearmanr(inh, nb)[0]
    tau_ref = kendalltau(val, nb)[0]
    ci_sa = bootstrap_interval(inh, val, kendalltau, np.random.default_rng(0))
    ci_nb = bootstrap_interval(inh, nb, kendalltau, np.random.default_rng(0))
    # random search at the search's total CPU cost: as many stand-alone cells as that cost trains
    n_equal = max(1, int(search_cpu // cell_cpu))
    rng = np.random.default_rng(0)
    draws = [float(np.max(rng.choice(val, size=min(n_equal, len(val)), replace=False))) for _ in range(2000)]
    win_val = float(winner.score or float("nan"))
    beats = float(np.mean([win_val > d for d in draws]) + 0.5 * np.mean([win_val == d for d in draws]))
    wins = [f"| {t.id} | `{space.to_string(t.arch)}` | {t.metrics.get('inherited_val_acc', float('nan')):.2f} | "
            f"{t.metrics['val_acc']:.2f} | {t.metrics['test_acc']:.2f} | "
            f"{float(table.lookup(t.arch).cifar10_test200):.2f} |" for t in sorted(retrained, key=lambda t: t.id)]
    supernet_cpu = shared.cpu_seconds
    win_nb = float(table.lookup(winner.arch).cifar10_test200)
    subset = f"first {args.limit} samples, " if args.limit else ""
    return f"""## Weight sharing on NAS-Bench-201 cells: inherited against stand-alone accuracy (`weight_sharing.py`)

**What was measured.** One experiment searched the `nb201` space (C={args.channels}, N=1) on `{args.task}`
({subset}split train/val/test 50/30/20%) with the `weight_sharing` evaluator and the `{args.strategy}` strategy: one
single-path supernet trained {args.supernet_epochs} epochs (one sampled op
per edge and step, the `none` op with sampling weight {args.none_weight} against 1 for the others, SGD lr 0.05
cosine, momentum 0.9, batch 64), then {args.candidates} candidates scored with inherited weights (batch-norm
statistics recalibrated on {args.bn_batches} training batches of 64, cumulative average in training mode, then
scored in evaluation mode), then the {args.retrain_top} best retrained from scratch with the search's training
settings ({args.train_epochs} epochs, SGD lr 0.05 cosine, batch 64) and ranked by that. Then {args.cells} distinct
uniformly drawn cells were scored both ways with that supernet: inherited-weight validation accuracy, and
stand-alone validation accuracy after training from scratch with the same settings (one seed each; these trained in
{args.standalone_processes} more process(es) next to the search).
NB201 is the cell's CIFAR-10 200-epoch test accuracy from the shipped
NAS-Bench-201 table. CPU times are per process (1 torch thread each, local executor).

{provenance(args.load, threads=1)}

**Figures.**

| rank correlation over {args.cells} cells | Kendall tau | Spearman rho |
|---|---:|---:|
| inherited-weight val acc vs stand-alone val acc ({args.task}) | **{tau_sa:.3f}** ({ci(p_sa, ci_sa)}) | {rho_sa:.3f} |
| inherited-weight val acc vs NAS-Bench-201 CIFAR-10 test acc | **{tau_nb:.3f}** ({ci(p_nb, ci_nb)}) | {rho_nb:.3f} |
| (reference) stand-alone val acc vs NAS-Bench-201 CIFAR-10 test acc | {tau_ref:.3f} | |

Random cells trained stand-alone: mean val {np.mean(val):.2f}, median {np.median(val):.2f}, best {np.max(val):.2f};
inherited-weight val acc of the same cells: mean {np.nanmean(inh):.2f}, best {np.nanmax(inh):.2f}.

| cost (CPU-s) | |
|---|---:|
| supernet training ({args.supernet_epochs} epochs) | {supernet_cpu:.0f} |
| one inherited-weight evaluation (mean eval_seconds, wall) | {eval_seconds:.2f} |
| retraining the top {args.retrain_top} | {retrain_seconds:.0f} (train_seconds, wall) |
| the whole search (experiment, process CPU) | {search_cpu:.0f} ({search_wall:.0f} s wall) |
| one stand-alone cell (mean) | {cell_cpu:.1f} |

The retrained winners (search trial id, inherited-weight val acc, stand-alone val / test acc, NB201 CIFAR-10):

| trial | cell | inherited val % | stand-alone val % | stand-alone test % | NB201 CIFAR-10 test |
|---|---|---:|---:|---:|---:|
{chr(10).join(wins)}

**Winner against random cells.** The search's winner (stand-alone val {win_val:.2f}) is at the
**{percentile(win_val, list(val)):.0f}th percentile** of the {args.cells} random cells. At equal total CPU cost
({search_cpu:.0f} CPU-s) random search would have trained about {n_equal} cells; the winner beats (ties half)
the best of {min(n_equal, len(val))} random cells drawn from the {args.cells} in {100 * beats:.0f}% of 2000 draws.
On NAS-Bench-201's CIFAR-10 table the winner ({win_nb:.2f}) is at the {percentile(win_nb, list(nb)):.0f}th percentile
of the same random cells.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist", help="an image task")
    parser.add_argument("--limit", type=int, default=3000, help="use the task's first LIMIT samples (0: all)")
    parser.add_argument("--none-weight", type=float, default=1.0,
                        help="sampling weight of the none op in the supernet training (1: uniform)")
    parser.add_argument("--channels", type=int, default=4, help="nb201 C of the supernet and the cells")
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--supernet-epochs", type=int, default=30)
    parser.add_argument("--bn-batches", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=100, help="candidates the search scores")
    parser.add_argument("--retrain-top", type=int, default=3)
    parser.add_argument("--cells", type=int, default=40, help="random cells scored both ways")
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--standalone-processes", type=int, default=1,
                        help="processes that train the random cells next to the search")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.load = load_average()
    publish("weight-sharing", run(args), write=not args.no_write)


if __name__ == "__main__":
    main()
