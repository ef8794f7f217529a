"""Trials per GPU-hour at 1, 2 and 4 trials per GPU, and the speed-up of mixed precision (run it on a GPU node).

Part 1, packing. ``--trials`` trials of one fixed training workload (a NAS-Bench-201 cell, ``--C`` channels and
``--N`` cells per stage, trained ``--epochs`` epochs on ``--task``, each trial with its own seed) run through the
search's own :class:`~nas.runtime.executors.RayExecutor` on every GPU of the node with ``gpus_per_trial`` = 1/k for
each k of ``--per-gpu`` (default 1, 2 and 4 trial workers per GPU). A warm-up round (one trial per worker: process
start, CUDA context, the task placed on the device) runs first and is not timed. Reported: trials per GPU-hour =
trials / (wall-clock hours of the timed trials x GPUs), its gain over one trial per GPU, the median time of one trial
and the median peak GPU memory of a trial (``peak_gpu_memory_mb``).

Part 2, precision. The same model is trained in this process on the first GPU, ``--repeats`` times (after one
untimed warm-up run) in each of fp32, bf16 (when the GPU supports it) and fp16 (with the gradient scaler), each
with the contiguous and the channels_last memory format. Reported: the median seconds per epoch, the speed-up over
fp32 contiguous, and the validation accuracy reached.

On a machine where torch sees no CUDA device it says so plainly and exits 0, measuring nothing and leaving
RESULTS.md alone.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/gpu.py [--task mnist] [--trials 24] [--epochs 3] [--per-gpu 1 2 4]
        [--repeats 3] [--precision fp32] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from _results import DEFAULT_RESULTS, load_average, provenance, publish

from nas.evaluation.device import PRECISIONS
from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.tasks import Task, load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.runtime.executors import RayExecutor
from nas.trials.trial import Result, Trial
from search_spaces import get_space

SECTION = "gpu"
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
COMMAND = ".venv/bin/python experiments/benchmarks/gpu.py"
NO_GPU = ("No GPU: torch sees no CUDA device here (torch.cuda.is_available() is False), so this benchmark, which "
          "measures trials per GPU-hour and the mixed-precision speed-up, has nothing to measure. Run it on a GPU "
          "node. Nothing was measured and RESULTS.md was not changed.")


@dataclass
class Packing:
    per_gpu: int
    workers: int
    trials: int
    seconds: float
    trial_seconds: float  # median
    peak_mb: float  # median
    failed: int

    def per_gpu_hour(self, gpus: int) -> float:
        return self.trials / (self.seconds / 3600.0 * gpus)


@dataclass
class PrecisionRun:
    precision: str
    memory_format: str
    epoch_seconds: float  # median over repeats
    val_acc: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--task", default="mnist", help="task the trials train on")
    parser.add_argument("--C", type=int, default=16, help="channels of the NAS-Bench-201 network")
    parser.add_argument("--N", type=int, default=5, help="cells per stage of the NAS-Bench-201 network")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of a trial")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--trials", type=int, default=24, help="timed trials per packing (after the warm-up)")
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4], help="trial workers per GPU")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="precision of the packing trials")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per precision and memory format")
    parser.add_argument("--no-precision", action="store_true", help="skip part 2")
    parser.add_argument("--no-packing", action="store_true", help="skip part 1")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help="the results file to update")
    parser.set_defaults(device="cuda")  # the tests run the measuring functions on the CPU, at a tiny size
    return parser.parse_args(argv)


def train_config(args: argparse.Namespace, **changes: object) -> TrainConfig:
    return TrainConfig.from_dict({"epochs": args.epochs, "batch_size": args.batch_size, "schedule": "cosine",
                                  "device": args.device, **changes})


def run_packing(args: argparse.Namespace, per_gpu: int, gpus: int) -> Packing:
    """``args.trials`` timed trials with ``per_gpu`` workers on each of ``gpus`` GPUs (after a warm-up round)."""
    space = get_space("nb201", C=args.C, N=args.N)
    arch = space.from_string(CELL)
    cfg = train_config(args, precision=args.precision).to_dict()
    cfg["device"] = "auto"  # each worker sees the GPU Ray gave it
    evaluator = TrainEvaluator(compiler=space.compiler(), task=args.task, train=cfg, data_seed=0, latency_runs=0)
    workers = per_gpu * gpus
    cpus = max(0.1, min(1.0, (os.cpu_count() or 1) / workers))
    executor = RayExecutor(workers=workers, cpus_per_trial=cpus, gpus_per_trial=1.0 / per_gpu, threads_per_trial=1)
    try:
        slots = executor.capacity
        results: list[Result] = []
        for i in range(slots):  # warm-up: every worker starts, builds its CUDA context and places the task
            executor.submit(evaluator, Trial(10_000 + i, arch, seed=10_000 + i))
        for _ in range(slots):
            executor.next_done()
        start = time.perf_counter()
        submitted = 0
        while submitted < min(slots, args.trials):
            executor.submit(evaluator, Trial(submitted, arch, seed=submitted))
            submitted += 1
        while len(results) < args.trials:
            results.append(executor.next_done().result)
            if submitted < args.trials:
                executor.submit(evaluator, Trial(submitted, arch, seed=submitted))
                submitted += 1
        seconds = time.perf_counter() - start
    finally:
        executor.shutdown()
    ok = [r for r in results if r.ok]
    return Packing(per_gpu=per_gpu, workers=slots, trials=len(ok), seconds=seconds,
                   trial_seconds=statistics.median(r.metrics["train_seconds"] for r in ok) if ok else float("nan"),
                   peak_mb=statistics.median(r.metrics.get("peak_gpu_memory_mb", float("nan")) for r in ok)
                   if ok else float("nan"), failed=len(results) - len(ok))


def run_precision(args: argparse.Namespace, task: Task, precision: str, memory_format: str) -> PrecisionRun:
    space = get_space("nb201", C=args.C, N=args.N)
    arch = space.from_string(CELL)
    cfg = train_config(args, precision=precision, memory_format=memory_format)
    times, accs = [], []
    device = torch.device(args.device)
    for repeat in range(args.repeats + 1):
        with seeded(repeat, device):
            model = space.build_model(arch, task.input_shape, task.num_classes)
        report = train(model, task, cfg, seed=repeat)  # synchronised: each epoch ends reading its loss
        if repeat:  # the first run warms up (cuDNN's algorithm search, allocator)
            times.append(report.seconds / report.epochs_run)
            accs.append(report.val_acc)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return PrecisionRun(precision, memory_format, statistics.median(times), statistics.median(accs))


def report(args: argparse.Namespace, gpus: int, names: str, packings: list[Packing], precisions: list[PrecisionRun],
           load_start: str) -> str:
    lines = ["## Trials per GPU-hour and mixed precision (`gpu.py`)", "",
             f"{gpus} GPU(s): {names}. Workload: NAS-Bench-201 cell `{CELL}` with C={args.C}, N={args.N}, "
             f"{args.epochs} epochs on `{args.task}`, batch size {args.batch_size}.", ""]
    if packings:
        base = next((p for p in packings if p.per_gpu == 1), packings[0]).per_gpu_hour(gpus)
        lines += [f"Packing ({args.precision}, {args.trials} timed trials per row, after a warm-up round):", "",
                  "| trials per GPU | workers | trials per GPU-hour | vs 1 per GPU | median trial (s) | "
                  "median peak memory (MiB) | failed |", "|---|---|---|---|---|---|---|"]
        for p in packings:
            lines.append(f"| {p.per_gpu} | {p.workers} | {p.per_gpu_hour(gpus):.0f} | "
                         f"{p.per_gpu_hour(gpus) / base:.2f}x | {p.trial_seconds:.1f} | {p.peak_mb:.0f} | {p.failed} |")
        lines.append("")
    if precisions:
        fp32 = next(r for r in precisions if r.precision == "fp32" and r.memory_format == "contiguous")
        lines += [f"Precision (one process on GPU 0, median of {args.repeats} runs after a warm-up):", "",
                  "| precision | memory format | s per epoch | speed-up vs fp32 | val acc (%) |",
                  "|---|---|---|---|---|"]
        for r in precisions:
            lines.append(f"| {r.precision} | {r.memory_format} | {r.epoch_seconds:.3f} | "
                         f"{fp32.epoch_seconds / r.epoch_seconds:.2f}x | {r.val_acc:.2f} |")
        lines.append("")
    lines.append(provenance(load_start))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    load_start = load_average()
    gpus = torch.cuda.device_count()
    packings = [] if args.no_packing else [run_packing(args, k, gpus) for k in args.per_gpu]
    precisions: list[PrecisionRun] = []
    if not args.no_precision:
        task = load_task(args.task, seed=0)
        kinds = ["fp32", *(["bf16"] if torch.cuda.is_bf16_supported() else []), "fp16"]
        for precision in kinds:
            for memory_format in ("contiguous", "channels_last"):
                precisions.append(run_precision(args, task, precision, memory_format))
    names = ", ".join(sorted({torch.cuda.get_device_name(i) for i in range(gpus)}))
    publish(SECTION, report(args, gpus, names, packings, precisions, load_start), write=not args.no_write,
            results=Path(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
