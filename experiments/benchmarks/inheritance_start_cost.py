"""The cost of ``evaluator.inherit.measure_start``: one validation pass (what scoring a child before training
adds) against one training epoch of a child (which ends with its own validation pass), in CPU seconds of one
torch thread, for a few ``nb201`` cells on a task and split.

    .venv/bin/python experiments/benchmarks/inheritance_start_cost.py [--task mnist] [--limit 1200]
        [--val-fraction 0.15] [--test-fraction 0.15] [--cells 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nas.evaluation.metrics import check_metric, metric_for
from nas.evaluation.scoring import score_split
from nas.evaluation.tasks import load_task
from nas.evaluation.training import TrainConfig, train
from search_spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--limit", type=int, default=1200)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--cells", type=int, default=3, help="nb201 cells (C=8, N=1) sampled with seeds 0, 1, ...")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = load_task(args.task, seed=0, limit=args.limit, val_fraction=args.val_fraction,
                     test_fraction=args.test_fraction)
    space = get_space("nb201", C=8, N=1)
    metric = check_metric(metric_for(task.problem, None), task.problem, args.task)
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 64, "lr": 0.01, "threads": 1})
    x_val, y_val = torch.as_tensor(task.x_val), torch.as_tensor(task.y_val)
    shares = []
    for seed in range(args.cells):
        model = space.compiler()(space.sample(np.random.default_rng(seed)), task.input_shape, task.num_classes)
        start = time.process_time()
        train(model, task, cfg, seed=0, metric=metric)
        epoch = time.process_time() - start
        start = time.process_time()
        score_split(model, x_val, y_val, task, metric, cfg.eval_batch_size, cfg.loss)
        shares.append((time.process_time() - start) / epoch)
    print(f"{args.task}, {len(task.x_train):,} / {len(task.x_val):,} / {len(task.x_test):,} samples: one validation "
          f"pass = {', '.join(f'{100 * s:.0f}%' for s in shares)} of a one-epoch child (CPU time, 1 thread)")


if __name__ == "__main__":
    main()
