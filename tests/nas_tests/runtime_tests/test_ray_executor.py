"""The Ray executor (nas.runtime.executors.RayExecutor) on one local Ray cluster for the module, declaring two logical
GPUs: fractional GPUs pack trials (4 at once on 2 GPUs at 0.5 each), the trainer falls back to the CPU when
CUDA is absent, a real search runs end to end through Experiment, and a trial whose worker process dies is
retried ``max_retries`` times, then recorded FAILED with the reason while the search completes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nas.evaluation.evaluators import Evaluator, NB201Evaluator, TrainEvaluator
from nas.evaluation.training import resolve_device
from nas.runtime.config import parse_config
from nas.runtime.executors import RayExecutor
from nas.runtime.experiment import Experiment
from nas.runtime.loop import run_loop
from nas.trials.trial import Result, Status, Trial
from search_spaces import get_space
from strategies import get_strategy

for _key, _value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before Ray is imported and started

ray = pytest.importorskip("ray")
from _ray import quiet_ray  # noqa: E402  (after the skip: it imports ray)

# Ray workers cannot import this test module (pytest put its directory on the driver's sys.path only), so the
# evaluators below travel by value inside the pickled evaluator.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = {"name": "nb201", "options": {"C": 4, "N": 1}}
DIGITS = {"name": "train", "task": "digits", "task_options": {"limit": 300}, "train": {"epochs": 1}}


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    with quiet_ray(num_cpus=2, num_gpus=2):
        yield


class SleepEvaluator(Evaluator):
    """Sleeps, and reports when it ran and which GPUs Ray gave its worker."""

    name = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        start = time.time()
        time.sleep(self.seconds)
        end = time.time()
        gpus = [str(g) for g in ray.get_gpu_ids()]
        return Result(Status.COMPLETE, score=float(trial.id), metrics={"start": start, "end": end},
                      info={"gpu_ids": json.dumps(gpus), "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                            "pid": str(os.getpid())})


class DyingEvaluator(NB201Evaluator):
    """NAS-Bench-201 lookups, except that the worker process evaluating trial ``die_on`` exits at once
    (after noting the attempt in ``log``)."""

    def __init__(self, die_on: int, log: str) -> None:
        super().__init__()
        self.die_on = die_on
        self.log = log

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        if trial.id == self.die_on:
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()}\n")
            os._exit(1)
        return super().evaluate(trial, on_epoch)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def test_fractional_gpus_pack_four_trials_on_two_gpus() -> None:
    resources = ray.cluster_resources()
    if resources.get("GPU", 0) < 2 or resources.get("CPU", 0) < 2:  # a cluster started elsewhere: would wait forever
        pytest.skip(f"needs 2 CPUs and 2 (logical) GPUs, the cluster has {resources}")
    space = get_space("nb201")
    executor = RayExecutor(workers=4, cpus_per_trial=0.5, gpus_per_trial=0.5)
    try:
        evaluator = SleepEvaluator(1.0)
        rng = np.random.default_rng(0)
        for i in range(4):  # warm the four actors up (process start, torch import)
            executor.submit(evaluator, Trial(100 + i, space.sample(rng)))
        for _ in range(4):
            assert executor.next_done().result.ok
        strategy = get_strategy("random", space=space, seed=0)
        records = run_loop(strategy, evaluator, executor, max_trials=8)
    finally:
        executor.shutdown()
    assert len(records) == 8 and all(r.result.ok for r in records)
    overlap = _max_overlap([(r.result.metrics["start"], r.result.metrics["end"]) for r in records])
    assert 3 <= overlap <= 4, overlap
    gpu_ids = [json.loads(r.result.info["gpu_ids"]) for r in records]
    assert all(len(ids) == 1 for ids in gpu_ids), gpu_ids  # each worker sees one (shared) GPU
    assert {ids[0] for ids in gpu_ids} <= {"0", "1"}
    assert all(r.result.info["cuda_visible"] == ids[0] for r, ids in zip(records, gpu_ids))
    pids = {r.result.info["pid"] for r in records}
    assert len(pids) == 4  # actors are reused: no more workers than slots
    per_gpu: dict[str, set[str]] = {}
    for r, ids in zip(records, gpu_ids):
        per_gpu.setdefault(ids[0], set()).add(r.result.info["pid"])
    assert all(len(p) <= 2 for p in per_gpu.values())  # 0.5 GPU each: at most two workers per GPU
    assert all(r.worker.endswith(f":gpu{ids[0]}") for r, ids in zip(records, gpu_ids))


def test_trainer_falls_back_to_cpu_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert resolve_device("auto") == torch.device("cpu")
    space = get_space("nb201", C=4, N=1)
    evaluator = TrainEvaluator(compiler=space.compiler(), task="digits", task_options={"limit": 300},
                               train={"epochs": 1}, latency_runs=0)
    trial = Trial(0, space.sample(np.random.default_rng(1)), seed=5)
    executor = RayExecutor(workers=1, cpus_per_trial=1, gpus_per_trial=0.5, threads_per_trial=1)
    try:
        executor.submit(evaluator, trial)
        with pytest.raises(RuntimeError, match="all 1 workers are busy"):  # capacity is enforced
            executor.submit(evaluator, Trial(1, trial.arch, seed=6))
        completion = executor.next_done()
    finally:
        executor.shutdown()
    done, result = completion.trial, completion.result
    assert done == trial
    assert result.status is Status.COMPLETE, result.error
    assert result.info["device"] == "cpu"
    assert completion.worker.rsplit(":", 1)[1] in ("gpu0", "gpu1")  # Ray did give the worker a (logical) GPU
    assert 0.0 <= result.score <= 100.0 and result.metrics["epochs"] == 1.0


def test_search_end_to_end_on_ray(tmp_path: Path) -> None:
    cfg = parse_config({"name": "ray-e2e", "seed": 0, "space": TINY, "strategy": {"name": "random"},
                        "evaluator": DIGITS, "budget": {"max_trials": 6},
                        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1, "gpus_per_trial": 0.5,
                                      "threads_per_trial": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    try:
        ranked = exp.run()
        trials = exp.store.trials()
        assert len(trials) == 6 and exp.done() == 6
        assert all(t.status == "COMPLETE" or (t.status == "FAILED" and t.error) for t in trials)
        assert [t.id for t in ranked] == [t.id for t in sorted(ranked, key=lambda t: (-t.score, t.id))]
        complete = [t for t in trials if t.status == "COMPLETE"]
        assert complete and all(t.info["device"] == "cpu" for t in complete)
        workers = {t.worker.split(":gpu")[0] for t in complete}
        assert 1 <= len(workers) <= 2 and all(":gpu" in t.worker for t in complete)
        assert (tmp_path / "exp" / "best.json").is_file()
    finally:
        exp.close()
    assert ray.is_initialized()  # the executor leaves a cluster it did not start alone


def test_baselines_train_on_ray_workers_beside_the_search(tmp_path: Path) -> None:
    """The zoo's plain-PyTorch references are built from their builder path inside the Ray workers."""
    cfg = parse_config({"name": "ray-baselines", "seed": 0, "space": TINY, "strategy": {"name": "random"},
                        "evaluator": DIGITS, "budget": {"max_trials": 2}, "baselines": ["lenet5", "vgg11"],
                        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1, "threads_per_trial": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    try:
        exp.run()
        baselines = exp.baselines()
        assert [(b.name, b.status) for b in baselines] == [("lenet5", "COMPLETE"), ("vgg11", "COMPLETE")]
        assert all(b.worker and b.metrics["params"] > 0 for b in baselines)
        assert exp.done() == 2 and sorted(t.id for t in exp.store.trials()) == [0, 1]
    finally:
        exp.close()


def test_dead_worker_is_retried_then_recorded_failed(tmp_path: Path) -> None:
    cfg = parse_config({"name": "ray-dies", "seed": 0, "space": {"name": "nb201"},
                        "strategy": {"name": "random", "dedup": False}, "evaluator": {"name": "nb201"},
                        "budget": {"max_trials": 6},
                        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1, "max_retries": 1}})
    log = tmp_path / "deaths.txt"
    exp = Experiment.create(cfg, tmp_path / "exp")
    exp.evaluator = DyingEvaluator(die_on=2, log=str(log))
    try:
        exp.run()
        trials = {t.id: t for t in exp.store.trials()}
    finally:
        exp.close()
    assert sorted(trials) == list(range(6))
    dead = trials[2]
    assert dead.status == "FAILED" and dead.error.startswith("worker died") and "after 2 attempts" in dead.error
    assert dead.attempts == 2 and all(trials[i].attempts == 1 for i in trials if i != 2)  # retries are counted
    assert all(trials[i].status == "COMPLETE" for i in trials if i != 2)
    deaths = log.read_text().split()
    assert len(deaths) == 1 + cfg.execution.max_retries and len(set(deaths)) == len(deaths)  # fresh workers


class RaisingEvaluator(NB201Evaluator):
    """NAS-Bench-201 lookups, except that evaluating trial ``raise_on`` raises (as a buggy evaluator would)."""

    def __init__(self, raise_on: int) -> None:
        super().__init__()
        self.raise_on = raise_on

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        if trial.id == self.raise_on:
            raise RuntimeError(f"boom in trial {trial.id}")
        return super().evaluate(trial, on_epoch)


def test_a_trial_that_raises_is_recorded_failed_and_the_search_completes(tmp_path: Path) -> None:
    cfg = parse_config({"name": "ray-raises", "seed": 0, "space": {"name": "nb201"},
                        "strategy": {"name": "random", "dedup": False}, "evaluator": {"name": "nb201"},
                        "budget": {"max_trials": 5},
                        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    exp.evaluator = RaisingEvaluator(raise_on=1)
    try:
        exp.run()
        trials = {t.id: t for t in exp.store.trials()}
    finally:
        exp.close()
    assert sorted(trials) == list(range(5))
    assert trials[1].status == "FAILED" and "boom in trial 1" in trials[1].error
    assert all(trials[i].status == "COMPLETE" for i in trials if i != 1)
