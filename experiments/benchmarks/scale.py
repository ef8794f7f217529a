"""The loop at scale, by simulation: the driver's own cost per trial and the workers' idle share, at 1, 64 and
256 workers, over 10,000 trials through the real loop, store, checkpoint and Ray executor.

The evaluator sleeps for a duration drawn (seeded, lognormal) per trial, so the workers do no work and the
driver's own cost is all that is measured. Each search is an :class:`~nas.runtime.experiment.Experiment`
(evolution with de-duplication on the DARTS space, the search's SQLite store, a checkpoint per ask, the log
and progress events) run by :class:`~nas.runtime.executors.RayExecutor` on a local Ray cluster started with
``--cluster-cpus`` logical CPUs. Logical workers are cheap: every executor worker is a slot of a threaded actor
(``max_concurrency`` = ``--slots-per-actor``), so 256 workers are 4 actor processes, not 256. The driver sees
exactly what it sees with one process per worker: one actor handle, one ``evaluate`` call, one object ref per
trial, and the same ``ray.wait`` / ``ray.get`` over them.

The mean duration scales with the worker count (``--seconds-per-trial`` x workers), so every run offers the
driver the same load (one result per ``--seconds-per-trial`` on average) and takes about the same time.

    .venv/bin/python experiments/benchmarks/scale.py                       # 1, 64, 256 workers (a few minutes)
    .venv/bin/python experiments/benchmarks/scale.py --workers 64 --trials 2000 --no-write
    .venv/bin/python experiments/benchmarks/scale.py --workers 256 --trials 3000 --profile prof.out --no-write
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

import nas.runtime.experiment as experiment_module
from nas.evaluation.evaluators import EpochCallback, Evaluator, register_evaluator
from nas.runtime.config import parse_config
from nas.runtime.events import Event, TrialFinished
from nas.runtime.executors import RayExecutor, _worker_class
from nas.runtime.experiment import Experiment
from nas.trials.trial import Result, Status, Trial

SECTION = "scale"
PARTS = ("ask", "tell", "store", "checkpoint", "progress", "executor")


class SleepEvaluator(Evaluator):
    """Sleeps for a lognormal duration (mean ``mean`` seconds, log-spread ``sigma``) drawn from the trial's seed
    and ``seed``; its score is drawn too. Reports the seconds slept (metric ``slept``)."""

    name: ClassVar[str] = "sleep"
    metrics: ClassVar[frozenset[str] | None] = frozenset({"slept"})

    def __init__(self, *, mean: float = 1.0, sigma: float = 0.5, seed: int = 0, **_: Any) -> None:
        self.mean, self.sigma, self.seed = mean, sigma, seed

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        rng = np.random.default_rng([self.seed, trial.seed & 0xFFFFFFFF])
        duration = float(rng.lognormal(math.log(self.mean) - self.sigma ** 2 / 2, self.sigma))
        t0 = time.perf_counter()
        time.sleep(duration)
        return Result(Status.COMPLETE, score=float(rng.random()), metrics={"slept": time.perf_counter() - t0})


register_evaluator(SleepEvaluator)


class SlotExecutor(RayExecutor):
    """The Ray executor whose workers are slots of threaded actors: ``slots`` workers per actor process. Only
    where a worker runs differs; the driver's calls per trial are those of :class:`RayExecutor`."""

    def __init__(self, *, slots: int, **kwargs: Any) -> None:
        self.slots = slots
        self._current: tuple[Any, int] | None = None  # the actor taking new slots, slots given so far
        super().__init__(**kwargs)

    def _new_worker(self) -> None:
        from nas.runtime.executors import _Worker

        if self._current is None or self._current[1] >= self.slots:
            actors = _worker_class().options(num_cpus=self.cpus * self.slots, max_concurrency=self.slots)
            self._current = (actors.remote(self.threads), 0)
        handle, given = self._current
        self._current = (handle, given + 1)
        self._starting[handle.where.remote()] = _Worker(handle)


@dataclass
class Window:
    end: int
    wall: float
    cpu: float
    parts: dict[str, float]
    wait: float
    slept: float

    def per_trial_ms(self, n: int) -> dict[str, float]:
        return {k: 1e3 * v / n for k, v in self.parts.items()}


@dataclass
class Run:
    workers: int
    mean: float
    windows: list[Window] = field(default_factory=list)
    wall: float = 0.0
    slept: float = 0.0
    trials: int = 0
    actors: int = 0
    checkpoint_kb: float = 0.0  # the largest at a window's end (trials in flight included)

    @property
    def own_ms(self) -> float:
        """The driver's own cost per trial over the run, in ms (all parts)."""
        return 1e3 * sum(sum(w.parts.values()) for w in self.windows) / max(1, self.trials)

    @property
    def idle(self) -> float:
        """The share of worker time spent without a trial (waiting for the driver, ramp-up and tail included)."""
        return 1.0 - self.slept / (self.workers * self.wall)


def _timed(spent: dict[str, float], part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - t0
    return wrapper


def run_one(workers: int, trials: int, *, seconds_per_trial: float, sigma: float, slots: int, window: int,
            directory: Path, seed: int) -> Run:
    """One search of ``trials`` trials on ``workers`` simulated workers, measured per window of ``window``."""
    import ray

    mean = seconds_per_trial * workers
    cfg = parse_config({"name": f"scale-{workers}", "seed": seed, "space": {"name": "darts"},
                        "strategy": {"name": "evolution", "dedup": True},
                        "evaluator": {"name": "sleep", "options": {"mean": mean, "sigma": sigma, "seed": seed}},
                        "budget": {"max_trials": trials},
                        "execution": {"executor": "ray", "workers": workers, "cpus_per_trial": 1}})
    exp = Experiment.create(cfg, directory)
    spent = dict.fromkeys((*PARTS, "wait"), 0.0)
    exp.strategy.ask = _timed(spent, "ask", exp.strategy.ask)  # type: ignore[method-assign]  # timing wrapper
    exp.strategy.tell = _timed(spent, "tell", exp.strategy.tell)  # type: ignore[method-assign]  # timing wrapper
    exp.store.submitted = _timed(spent, "store", exp.store.submitted)  # type: ignore[method-assign]  # timing wrapper
    exp.store.finished = _timed(spent, "store", exp.store.finished)  # type: ignore[method-assign]  # timing wrapper
    checkpoint = exp.checkpoint
    exp.checkpoint = _timed(spent, "checkpoint", checkpoint)  # type: ignore[method-assign]  # timing wrapper
    executor = SlotExecutor(slots=min(slots, workers), workers=workers, cpus_per_trial=1.0)
    executor.submit = _timed(spent, "executor", executor.submit)  # type: ignore[method-assign]  # timing wrapper
    executor.next_done = _timed(spent, "executor", executor.next_done)  # type: ignore[method-assign]  # timing wrapper
    real_wait = ray.wait

    def wait(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_wait(*args, **kwargs)
        finally:
            dt = time.perf_counter() - t0
            spent["wait"] += dt
            spent["executor"] -= dt  # inside next_done: the blocking wait is not the driver's own cost

    real_loop = experiment_module.run_loop

    def run_loop(*args: Any, on_submit: Any = None, on_record: Any = None, **kwargs: Any) -> Any:
        # on_submit = store writes + checkpoint; on_record = store write + progress (events, log): time them and
        # take out the store and checkpoint parts, timed on their own
        def submit(trials: list[Trial]) -> None:
            before = spent["store"] + spent["checkpoint"]
            t0 = time.perf_counter()
            on_submit(trials)
            spent["progress"] += time.perf_counter() - t0 - (spent["store"] + spent["checkpoint"] - before)

        def record(rec: Any) -> None:
            before = spent["store"] + spent["checkpoint"]
            t0 = time.perf_counter()
            on_record(rec)
            spent["progress"] += time.perf_counter() - t0 - (spent["store"] + spent["checkpoint"] - before)
            slept[0] += rec.result.metrics.get("slept", 0.0)

        return real_loop(*args, on_submit=submit, on_record=record, **kwargs)

    slept = [0.0]
    out = Run(workers=workers, mean=mean)
    last = {"t": 0.0, "cpu": 0.0, "slept": 0.0, **spent}

    def progress(event: Event) -> None:
        if not isinstance(event, TrialFinished) or event.n % window:
            return
        now, cpu = time.perf_counter(), time.process_time()
        out.windows.append(Window(event.n, now - last["t"], cpu - last["cpu"],
                                  {k: spent[k] - last[k] for k in PARTS}, spent["wait"] - last["wait"],
                                  slept[0] - last["slept"]))
        last.update(t=now, cpu=cpu, slept=slept[0], **spent)
        out.checkpoint_kb = max(out.checkpoint_kb, (directory / Experiment.CHECKPOINT).stat().st_size / 1024)
        w = out.windows[-1]
        print(f"  {workers} workers: {event.n} trials, wall {1e3 * w.wall / window:.2f} ms/trial, own "
              f"{1e3 * sum(w.parts.values()) / window:.2f} ms/trial", file=sys.stderr, flush=True)

    ray.wait = wait
    experiment_module.run_loop = run_loop  # type: ignore[assignment]  # the timed loop
    try:
        start = time.perf_counter()
        last.update(t=start, cpu=time.process_time())
        exp.run(executor=executor, progress=progress)
        out.wall = time.perf_counter() - start
    finally:
        ray.wait = real_wait
        experiment_module.run_loop = real_loop  # type: ignore[assignment]  # the timed loop
        out.actors = len({id(w.handle) for w in executor._placed_workers()})
        executor.shutdown()
    out.slept, out.trials = slept[0], trials
    exp.close()
    return out


def _table(run: Run, window: int) -> str:
    rows = []
    for w in run.windows:
        ms = w.per_trial_ms(window)
        rows.append(f"| {w.end - window:,}-{w.end:,} | {1e3 * w.wall / window:.2f} | {1e3 * w.cpu / window:.2f} | "
                    + " | ".join(f"{ms[p]:.2f}" for p in PARTS)
                    + f" | **{sum(ms.values()):.2f}** | {1 - w.slept / (run.workers * w.wall):.0%} |")
    head = ("| trials | wall (ms/trial) | driver CPU (ms/trial) | " + " | ".join(PARTS)
            + " | **own (ms/trial)** | workers idle |\n|---|" + "---:|" * (len(PARTS) + 4))
    return head + "\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--seconds-per-trial", type=float, default=0.006,
                        help="offered load: the mean duration is this times the workers")
    parser.add_argument("--sigma", type=float, default=0.5, help="log-spread of the durations")
    parser.add_argument("--slots-per-actor", type=int, default=64)
    parser.add_argument("--cluster-cpus", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", help="write a cProfile of the driver to this file")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    load, date, version = load_average(), utc_date(), code_version()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="nas-scale-") as tmp:
        ray.init(num_cpus=args.cluster_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=200 * 2 ** 20, _temp_dir=str(Path(tmp) / "ray"))
        profiler = cProfile.Profile() if args.profile else None
        try:
            for workers in args.workers:
                if profiler is not None:
                    profiler.enable()
                runs.append(run_one(workers, args.trials, seconds_per_trial=args.seconds_per_trial, sigma=args.sigma,
                                    slots=args.slots_per_actor, window=args.window,
                                    directory=Path(tmp) / f"w{workers}", seed=args.seed))
                if profiler is not None:
                    profiler.disable()
        finally:
            ray.shutdown()
        if profiler is not None:
            profiler.dump_stats(args.profile)
    tables = "\n\n".join(
        f"**{r.workers} worker(s)** ({r.actors} actor process(es)), mean trial {r.mean:.3g} s: wall "
        f"{r.wall:.0f} s, workers idle {r.idle:.0%} of the run, driver's own cost {r.own_ms:.2f} ms/trial, "
        f"checkpoint up to {r.checkpoint_kb:.0f} KB (at the windows' ends).\n\n{_table(r, args.window)}" for r in runs)
    def steady(r: Run) -> str:
        own = [1e3 * sum(w.parts.values()) / args.window for w in r.windows[1:] or r.windows]
        return f"{min(own):.2f}-{max(own):.2f}"

    summary = "\n".join(f"| {r.workers} | {r.own_ms:.2f} | {steady(r)} | {r.idle:.0%} | "
                        f"{1e3 * r.wall / r.trials:.2f} | {1e3 / r.own_ms:,.0f} |" for r in runs)
    many = [r for r in runs if r.workers > 1] or runs
    worst = max(r.own_ms for r in many)
    bottleneck = (
        f"**Where the driver becomes the bottleneck.** With many workers the driver serves one result per "
        f"{worst:.1f} ms (its own cost, the worst of the runs with more than one worker), about {1e3 / worst:,.0f} "
        "results a second; workers sit idle waiting for it once workers / mean trial time exceeds that: at "
        f"about {1e3 / worst:,.0f} workers for 1 s trials, {60e3 / worst:,.0f} for 1 min trials, "
        f"{600e3 / worst:,.0f} for 10 min trials. With one worker every result gets its own ask and checkpoint "
        "(nothing else is in by then), so the cost per trial is higher there, and the worker waits that long "
        "between trials. The driver's cost per trial does not grow with the trials done (the windows below are "
        "flat), nor with the workers; only the checkpoint's size does (it holds every trial in flight).")
    body = f"""## The loop at scale, by simulation: 1 to 256 workers, 10,000 trials (`scale.py`)

**What was measured.** {args.trials:,} trials per search through `Experiment` (evolution with de-duplication
on the DARTS space, the SQLite store, a checkpoint per ask, the log and progress events) and `RayExecutor`, on a
local Ray cluster of {args.cluster_cpus} logical CPUs. The evaluator sleeps for a lognormal duration (log-spread
{args.sigma}) drawn from the trial's seed; the mean is {args.seconds_per_trial * 1e3:g} ms x the workers, so every
run offers the driver one result per {args.seconds_per_trial * 1e3:g} ms on average. The driver's own cost per
trial is the time spent in ask, tell, the store's writes, the checkpoint, the progress (events, log line) and
the executor (submit, and collecting a result without the blocking `ray.wait`), timed with `time.perf_counter`
around each; "driver CPU" is the driver process's CPU time (Ray's own threads in it included); "workers idle" is
one minus the seconds slept over workers x wall time.

**How the workers were simulated.** Each executor worker is one slot of a threaded Ray actor
(`max_concurrency` = {args.slots_per_actor}; the actor reserves that many logical CPUs), so 256 workers are 4 actor
processes. The driver does per trial exactly what it does with one actor process per worker (one `evaluate`
call on a worker's handle, one object ref, the same `ray.wait` / `ray.get`), and what the workers do (sleep) does
not compete with it for the CPU beyond Ray's own RPC threads, so the driver-side cost is the real one; what is not
simulated is the start-up of hundreds of worker processes.

{provenance(load, date=date, version=version)}

**Figures.**

| workers | own (ms/trial) | windows after the first | workers idle | wall (ms/trial) | workers busy, 1 s trials |
|---:|---:|---:|---:|---:|---:|
{summary}

{bottleneck}

{tables}
"""
    publish(SECTION, body, write=not args.no_write)


if __name__ == "__main__":
    main()
