"""Fractional GPUs on a real GPU through Ray: two trial workers share one GPU (``gpus_per_trial: 0.5``), each trains
on CUDA with the task resident on the device, reports its peak memory, and gives back everything but the resident
task between trials. Needs CUDA (``gpu`` marker): skipped, saying so, elsewhere."""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Any

import numpy as np
import pytest
import torch

from nas.evaluation.evaluators import TrainEvaluator
from nas.runtime.executors import RayExecutor
from nas.trials.trial import Result, Trial
from search_spaces import get_space

for _key, _value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)

ray = pytest.importorskip("ray")
from _ray import quiet_ray  # noqa: E402  (after the skip: it imports ray)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", autouse=True)
def one_gpu_cluster():
    with quiet_ray(num_cpus=2, num_gpus=1):  # one GPU, so the two half-GPU workers must share it
        yield


class MemoryReportingEvaluator(TrainEvaluator):
    """Trains as ``train`` does, then reports the CUDA memory still allocated in its worker after the trial, the
    worker's pid and when the trial ran."""

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        start = time.time()
        result = super().evaluate(trial, on_epoch)
        result.metrics.update(allocated_after=float(torch.cuda.memory_allocated()), start=start, end=time.time(),
                              resident_bytes=float(self._data.get(self.task, torch.device("cuda"), 512).nbytes))
        result.info.update(pid=str(os.getpid()), gpu_ids=",".join(str(g) for g in ray.get_gpu_ids()))
        return result


def test_two_trials_share_a_gpu_and_release_their_memory_between_trials() -> None:
    space = get_space("nb201", C=8, N=1)
    evaluator = MemoryReportingEvaluator(compiler=space.compiler(), task="digits", train={"epochs": 2},
                                         latency_runs=0)
    executor = RayExecutor(workers=2, cpus_per_trial=0.5, gpus_per_trial=0.5, threads_per_trial=1)
    rng = np.random.default_rng(0)
    try:
        for i in range(2):
            executor.submit(evaluator, Trial(i, space.sample(rng), seed=i))
        done = []
        for i in range(2, 6):
            done.append(executor.next_done())
            executor.submit(evaluator, Trial(i, space.sample(rng), seed=i))
        done += [executor.next_done() for _ in range(2)]
    finally:
        executor.shutdown()
    results = [c.result for c in done]
    assert all(r.ok for r in results), [r.error for r in results]
    assert all(r.info["device"].startswith("cuda") for r in results)
    assert {r.info["gpu_ids"] for r in results} == {"0"}  # one GPU, shared
    by_worker: dict[str, list[Result]] = {}
    for r in results:
        by_worker.setdefault(r.info["pid"], []).append(r)
    assert len(by_worker) == 2  # two workers, both on the GPU
    for worker_results in by_worker.values():
        after = {r.metrics["allocated_after"] for r in worker_results}
        assert len(after) == 1  # every trial leaves the same: nothing accumulates across trials
        assert after.pop() >= worker_results[0].metrics["resident_bytes"]  # the task stays resident on the GPU
        assert all(r.metrics["peak_gpu_memory_mb"] * 2**20 > r.metrics["allocated_after"] for r in worker_results)
    intervals = sorted((r.metrics["start"], r.metrics["end"]) for r in results)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(intervals))  # the two workers trained at the same time
