"""Tracking on Ray: trials train in Ray workers, their per-epoch history comes back with each result, and the driver
writes it into TensorBoard and the Optuna study (nothing is written from a worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import ray
from test_tensorboard_mlflow import scalars

from nas.runtime.config import build_evaluator, build_space, parse_config
from nas.runtime.executors import RayExecutor
from nas.runtime.experiment import Experiment
from nas.tracking.tensorboard import trial_dir
from nas.trials.trial import Trial

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory

EPOCHS = 2


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


def test_curves_of_trials_trained_on_ray_workers_reach_tensorboard_and_optuna(tmp_path: Path) -> None:
    cfg = parse_config({"name": "ray-tracked", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                        "strategy": {"name": "random"},
                        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200},
                                      "train": {"epochs": EPOCHS, "batch_size": 32}},
                        "budget": {"max_trials": 2},
                        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1, "threads_per_trial": 1},
                        "tracking": {"optuna": True, "tensorboard": True}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    try:
        exp.run()
        trials = exp.store.trials()
    finally:
        exp.close()
    assert len(trials) == 2 and all(t.worker for t in trials)  # trained in Ray workers
    study = optuna.load_study(study_name="ray-tracked", storage=f"sqlite:///{tmp_path / 'exp' / 'optuna.db'}")
    by_id = {t.user_attrs["nas_trial_id"]: t for t in study.trials}
    for t in trials:
        curve = scalars(trial_dir(tmp_path / "exp" / "tensorboard", t.id))["epoch/score"]
        assert [step for step, _ in curve] == list(range(1, EPOCHS + 1))
        assert [v for _, v in curve] == pytest.approx([h["score"] for h in t.history])
        assert by_id[t.id].intermediate_values == pytest.approx({h["epoch"]: h["score"] for h in t.history})


def test_ray_workers_post_every_epoch_in_order_before_the_result() -> None:
    """The live path on Ray: each worker posts its epochs to the mailbox actor as it trains; the driver has handed
    all of a trial's epochs, in order, to the sink by the time ``next_done`` returns that trial."""
    cfg = parse_config({"name": "live-ray", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                        "strategy": {"name": "random"},
                        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200},
                                      "train": {"epochs": 3, "batch_size": 32}},
                        "budget": {"max_trials": 2}, "execution": {"executor": "ray", "workers": 2}})
    space = build_space(cfg)
    evaluator = build_evaluator(cfg, space)
    executor = RayExecutor(workers=2, cpus_per_trial=1, threads_per_trial=1, poll_seconds=0.5)
    got: list[tuple[int, int, int, float]] = []
    executor.set_epoch_sink(lambda trial_id, attempt, epoch, m: got.append((trial_id, attempt, epoch, m["score"])))
    rng = np.random.default_rng(0)
    try:
        for i in range(2):
            executor.submit(evaluator, Trial(id=i, arch=space.sample(rng), seed=i))
        for _ in range(2):
            done = executor.next_done()
            assert done.result.ok and len(done.result.history) == 3
            mine = [(attempt, epoch, score) for trial_id, attempt, epoch, score in got if trial_id == done.trial.id]
            assert mine == [(1, h["epoch"], pytest.approx(h["score"])) for h in done.result.history]
    finally:
        executor.shutdown()
