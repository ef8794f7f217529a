"""Runner benchmarks: per-trial overhead of the loop + executor, checkpoint cost, parallel speed-up.

1. Overhead: searches whose evaluation is a NAS-Bench-201 table lookup (microseconds), so the wall time per
   trial is the loop's own cost (ask/tell, store writes, checkpoint, executor round trip). Local executor and
   Ray (2 workers; Ray start-up excluded, the actors' first start included).
2. Checkpoint cost: the time of one checkpoint write (strategy state + loop state, atomic) at the end of the
   overhead run, and its size.
3. Speed-up: the same 6 real training trials (random strategy, fixed seed: identical architectures) with 1 and
   with 2 Ray workers, one torch thread each, each trial training for at least 5 s.

    .venv/bin/python experiments/benchmarks/runner.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import load_average, provenance, publish

from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def _config(name: str, executor: str, workers: int, trials: int, evaluator: dict, space: dict) -> dict:
    return {"name": name, "seed": 0, "space": space, "strategy": {"name": "random" if "train" in str(evaluator)
                                                                    else "evolution"},
            "evaluator": evaluator, "budget": {"max_trials": trials},
            "execution": {"executor": executor, "workers": workers, "threads_per_trial": 1}}


def overhead(executor: str, workers: int, trials: int) -> dict[str, float]:
    cfg = parse_config(_config(f"overhead-{executor}", executor, workers, trials, {"name": "nb201"},
                               {"name": "nb201"}))
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment.create(cfg, Path(tmp) / "exp")
        ex = exp.make_executor()
        start = time.perf_counter()
        exp.run(executor=ex)
        seconds = time.perf_counter() - start
        ex.shutdown()
        t0 = time.perf_counter()
        for _ in range(20):
            exp.checkpoint()
        ckpt = (time.perf_counter() - t0) / 20
        size = (exp.directory / exp.CHECKPOINT).stat().st_size
        exp.close()
    return {"per_trial_ms": 1e3 * seconds / trials, "checkpoint_ms": 1e3 * ckpt, "checkpoint_kb": size / 1024}


def speedup(trials: int, epochs: int) -> dict[str, float]:
    out = {}
    for workers in (1, 2):
        cfg = parse_config(_config(f"speedup-{workers}", "ray", workers, trials,
                                   {"name": "train", "task": "mnist", "task_options": {"limit": 2000},
                                    "train": {"epochs": epochs, "batch_size": 64}},
                                   {"name": "nb201", "options": {"C": 8, "N": 1}}))
        with tempfile.TemporaryDirectory() as tmp:
            exp = Experiment.create(cfg, Path(tmp) / "exp")
            ex = exp.make_executor()
            start = time.perf_counter()
            ranked = exp.run(executor=ex)
            out[f"seconds_{workers}"] = time.perf_counter() - start
            out[f"train_s_{workers}"] = sum(t.metrics["train_seconds"] for t in ranked) / max(1, len(ranked))
            out[f"archs_{workers}"] = ",".join(t.hash[:6] for t in sorted(exp.store.trials(), key=lambda t: t.id))
            ex.shutdown()
            exp.close()
    out["speedup"] = out["seconds_1"] / out["seconds_2"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials of the overhead runs")
    parser.add_argument("--train-trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training trial (>= 5 s each)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load = load_average()
    local = overhead("local", 1, args.trials)
    ray2 = overhead("ray", 2, args.trials)
    sp = speedup(args.train_trials, args.epochs)
    same = sp["archs_1"] == sp["archs_2"]
    body = f"""## Runner: loop and executor overhead, checkpoint cost, parallel speed-up (`runner.py`)

**What was measured.** (1) Wall time per trial of searches whose evaluation is a NAS-Bench-201 lookup, so
the time is the loop's own: ask/tell (evolution with de-duplication), SQLite store writes, an atomic checkpoint
per ask (one per trial here), and the executor round trip. (2) One checkpoint write at the end of that
run. (3) {args.train_trials} real training trials (nb201 C=8 N=1 on `mnist` limited to 2,000 samples,
{args.epochs} epochs, one torch thread per worker) with 1 and with 2 Ray workers; the random strategy with
seed 0 proposes the same architectures in both runs ({'checked: identical' if same else 'NOT identical'}).
Ray start-up is excluded (the executor is created before the clock starts); actor start-up is included.

{provenance(load)}

**Figures.**

| measure | local executor | Ray, 2 workers |
|---|---:|---:|
| wall time per trial, {args.trials} trials (ms) | {local['per_trial_ms']:.1f} | {ray2['per_trial_ms']:.1f} |
| one checkpoint write (ms) | {local['checkpoint_ms']:.2f} | {ray2['checkpoint_ms']:.2f} |
| checkpoint size (KiB) | {local['checkpoint_kb']:.0f} | {ray2['checkpoint_kb']:.0f} |

| parallel speed-up | 1 worker | 2 workers |
|---|---:|---:|
| wall time for {args.train_trials} trials (s) | {sp['seconds_1']:.1f} | {sp['seconds_2']:.1f} |
| mean training time per trial (s) | {sp['train_s_1']:.1f} | {sp['train_s_2']:.1f} |
| **speed-up of 2 workers over 1** | | **{sp['speedup']:.2f}x** (goal >= 1.7x) |
"""
    publish("runner", body, write=not args.no_write)


if __name__ == "__main__":
    main()
