"""What tracking costs the driver per trial: the same search (evolution over NAS-Bench-201 table look-ups, the
local executor, so that the loop's own cost is visible rather than hidden behind training) run without tracking,
with each tracker alone (the Optuna study mirror, TensorBoard, MLflow) and with all three.

For each configuration: the seconds from the search's start to its last trial (the loop), divided by the trials,
and the start-up cost (opening the trackers: creating the Optuna study's tables, MLflow's database migrations).
The overhead per trial is the loop's time per trial minus the untracked run's. The machine's load average is
printed beside the figures: tracking writes to SQLite and to event files, which contend with the other processes
on a shared machine.

    .venv/bin/python experiments/benchmarks/tracking_overhead.py                # 200 trials per configuration
    .venv/bin/python experiments/benchmarks/tracking_overhead.py --trials 50
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from nas.runtime.config import parse_config
from nas.runtime.events import Event, SearchStarted, TrialFinished
from nas.runtime.experiment import Experiment

CONFIGS: dict[str, dict[str, Any]] = {
    "none": {},
    "optuna": {"optuna": True},
    "tensorboard": {"tensorboard": True},
    "mlflow": {"mlflow": True},
    "all three": {"optuna": True, "tensorboard": True, "mlflow": True},
}


def run(tracking: dict[str, Any], trials: int, folder: Path) -> tuple[float, float]:
    """(loop seconds, start-up seconds) of one search with ``tracking``."""
    cfg = parse_config({"name": "overhead", "seed": 0, "space": {"name": "nb201"},
                        "strategy": {"name": "evolution", "options": {"population": 16, "sample_size": 4}},
                        "evaluator": {"name": "nb201"}, "budget": {"max_trials": trials},
                        "execution": {"executor": "local", "workers": 1}, "tracking": tracking})
    exp = Experiment.create(cfg, folder)
    marks: dict[str, float] = {}

    def progress(event: Event) -> None:
        if isinstance(event, SearchStarted):
            marks["started"] = time.perf_counter()
        elif isinstance(event, TrialFinished) and event.n == 1:
            marks["first"] = time.perf_counter()
        elif isinstance(event, TrialFinished) and event.last:
            marks["last"] = time.perf_counter()

    start = time.perf_counter()
    try:
        exp.run(progress=progress)
    finally:
        exp.close()
    end = time.perf_counter()
    # the loop: first to last result (trials - 1 intervals); start-up: run() up to the search's start, and after the
    # last trial (closing the trackers, logging best.json)
    loop = (marks["last"] - marks["first"]) / (trials - 1)
    return loop, (marks["started"] - start) + (end - marks["last"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, tracking in CONFIGS.items():
            loop, startup = run(tracking, args.trials, Path(tmp) / name.replace(" ", "_"))
            rows.append((name, loop, startup))
            print(f"{name}: {1000 * loop:.1f} ms per trial, start-up and close {startup:.2f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    base = rows[0][1]
    print("\n| tracking | ms per trial | overhead per trial (ms) | start-up and close (s) |\n|---|---:|---:|---:|")
    for name, loop, startup in rows:
        print(f"| {name} | {1000 * loop:.1f} | {1000 * (loop - base):.1f} | {startup:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
