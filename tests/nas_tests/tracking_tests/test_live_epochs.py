"""Live per-epoch curves: epochs reach TensorBoard, MLflow and the Optuna study while a trial trains (read back
with their own libraries before the trial finishes), and exactly once across a killed run that is run again, a
retry in the same session and epochs dropped on the way."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from test_tensorboard_mlflow import scalars

from nas.runtime.config import parse_config
from nas.runtime.executors import LocalExecutor
from nas.runtime.experiment import Experiment
from nas.tracking import base
from nas.tracking.base import TrackedTrial, Trackers, TrialEpoch
from nas.tracking.mlflow import MlflowTracker
from nas.tracking.optuna_mirror import OptunaMirror
from nas.tracking.tensorboard import TensorBoardTracker, trial_dir
from nas.trials.trial import Status
from search_spaces import get_space

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory

SPACE = get_space("nb201")
ARCH = SPACE.decode([0, 1, 2, 3, 4, 0])
PARAMS = dict(zip(SPACE.decision_names(), ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
                                           "none"]))


def open_all(root: Path) -> list[Any]:
    return [TensorBoardTracker(root / "tb"),
            MlflowTracker(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="live"),
            OptunaMirror(storage=f"sqlite:///{root / 'study.db'}", study_name="live", space=SPACE)]


def epoch(trial_id: int, attempt: int, step: int, score: float) -> TrialEpoch:
    return TrialEpoch(trial_id=trial_id, attempt=attempt, epoch=step, metrics={"score": score, "loss": 1.0 / step},
                      params=PARAMS)


def finished(trial_id: int, scores: list[float]) -> TrackedTrial:
    history = [{"epoch": i + 1, "score": s, "loss": 1.0 / (i + 1)} for i, s in enumerate(scores)]
    return TrackedTrial(id=trial_id, n=1, arch=ARCH, hash=ARCH.canonical_hash(), seed=0, status=Status.COMPLETE,
                        score=scores[-1], history=history, params=PARAMS, best=scores[-1])


def read_back(root: Path, trial_id: int) -> tuple[list[tuple[int, float]], list[Any], list[optuna.trial.FrozenTrial]]:
    curve = scalars(trial_dir(root / "tb", trial_id)).get("epoch/score", [])
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    found = client.get_experiment_by_name("live")
    assert found is not None
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`nas.trial_id` = '{trial_id}'")
    study = optuna.load_study(study_name="live", storage=f"sqlite:///{root / 'study.db'}")
    return curve, runs, [t for t in study.trials if t.user_attrs.get("nas_trial_id") == trial_id]


def test_epochs_show_while_training_and_a_killed_run_is_replaced_on_resume(tmp_path: Path) -> None:
    trackers = open_all(tmp_path)
    for step, score in ((1, 10.0), (2, 20.0)):  # the first run of trial 7 trains two epochs, then dies
        for t in trackers:
            t.epoch(epoch(7, 1, step, score))
    curve, runs, mirrored = read_back(tmp_path, 7)  # visible while it trains
    assert curve == [(1, 10.0), (2, 20.0)]
    assert len(runs) == 1 and runs[0].info.status == "RUNNING" and runs[0].data.params["edge_0_1"] == "none"
    assert len(mirrored) == 1 and mirrored[0].state == optuna.trial.TrialState.RUNNING
    assert mirrored[0].intermediate_values == {1: 10.0, 2: 20.0} and mirrored[0].params == PARAMS
    for t in trackers:  # the search is killed: no close, the files stay as they are; a resume opens them again
        t.close()
    trackers = open_all(tmp_path)
    for step, score in ((1, 11.0), (2, 21.0), (3, 31.0)):  # run again from the start (attempt 1 of the session)
        for t in trackers:
            t.epoch(epoch(7, 1, step, score))
    for t in trackers:
        t.trial(finished(7, [11.0, 21.0, 31.0]))
        t.epoch(epoch(7, 1, 3, 99.0))  # a late epoch after the result: ignored
        t.close()
    curve, runs, mirrored = read_back(tmp_path, 7)
    assert curve == [(1, 11.0), (2, 21.0), (3, 31.0)]  # the finished run's curve only, each epoch once
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    history = sorted((m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, "epoch/score"))
    assert history == [(1, 11.0), (2, 21.0), (3, 31.0)]
    assert len(mirrored) == 1 and mirrored[0].state == optuna.trial.TrialState.COMPLETE
    assert mirrored[0].intermediate_values == {1: 11.0, 2: 21.0, 3: 31.0} and mirrored[0].values == [31.0]


def test_a_retry_restarts_the_curve_and_dropped_epochs_are_filled_in_once(tmp_path: Path) -> None:
    trackers = open_all(tmp_path)
    for t in trackers:
        t.epoch(epoch(3, 1, 1, 5.0))  # attempt 1: its worker dies after one epoch
        t.epoch(epoch(3, 2, 1, 6.0))  # attempt 2 in the same session
        t.epoch(epoch(3, 2, 3, 8.0))  # epoch 2 was dropped on the way
        t.trial(finished(3, [6.0, 7.0, 8.0]))
        t.baseline("lenet5", finished(-1, [50.0, 90.0]))  # a baseline: a run of its own, not a trial
        t.baseline("lenet5", finished(-1, [50.0, 90.0]))  # again (a resume): once
        t.close()
    curve, runs, mirrored = read_back(tmp_path, 3)
    assert sorted(curve) == [(1, 6.0), (2, 7.0), (3, 8.0)]  # the missed epoch written at the end, by its step
    assert len(runs) == 1
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    history = sorted((m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, "epoch/score"))
    assert history == [(1, 6.0), (2, 7.0), (3, 8.0)]
    assert len(mirrored) == 1 and mirrored[0].intermediate_values == {1: 6.0, 2: 7.0, 3: 8.0}
    found = client.get_experiment_by_name("live")
    assert found is not None
    (reference,) = client.search_runs([found.experiment_id], filter_string="tags.`nas.role` = 'baseline'")
    assert reference.data.tags["nas.baseline"] == "lenet5" and reference.data.metrics["score"] == 90.0
    assert reference.info.status == "FINISHED" and reference.data.tags["mlflow.parentRunId"]
    (parent,) = client.search_runs([found.experiment_id], filter_string="tags.`nas.role` = 'search'")
    assert [m.value for m in client.get_metric_history(parent.info.run_id, "score")] == [8.0]  # the trial only


def test_a_slow_tracker_never_holds_the_loop_and_drops_epochs_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    got: list[TrialEpoch] = []

    class Slow:
        name = "slow"

        def epoch(self, event: TrialEpoch) -> None:
            gate.wait(30)
            got.append(event)

        def trial(self, trial: TrackedTrial) -> None: ...

        def baseline(self, name: str, trial: TrackedTrial) -> None: ...

        def job_epoch(self, job: str, record: Any) -> None: ...

        def artifacts(self, files: Any) -> None: ...

        def close(self) -> None: ...

    monkeypatch.setattr(base, "MAX_PENDING_EPOCHS", 5)
    trackers = Trackers([Slow()], close_timeout=30)
    for step in range(1, 9):  # queued at once while the tracker is stuck on the first
        trackers.epoch(epoch(1, 1, step, float(step)))
    assert trackers.dropped_epochs == 3
    gate.set()
    trackers.close()
    assert [e.epoch for e in got] == [1, 2, 3, 4, 5]  # in order, the first five


def test_a_local_search_streams_each_epoch_before_its_trial_is_recorded(tmp_path: Path) -> None:
    cfg = parse_config({"name": "live", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                        "strategy": {"name": "random"},
                        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200},
                                      "train": {"epochs": 2, "batch_size": 32}},
                        "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1},
                        "tracking": {"optuna": True}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    seen: list[tuple[int, int, str]] = []  # (trial, epoch, the trial's status in the store when the epoch came)
    executor = LocalExecutor()
    original = executor.set_epoch_sink

    def observing(sink: Any) -> None:
        def observe(trial_id: int, attempt: int, step: int, metrics: dict[str, float]) -> None:
            stored = exp.store.get(trial_id)
            seen.append((trial_id, step, stored.status if stored else "?"))
            sink(trial_id, attempt, step, metrics)
        original(observe if sink is not None else None)

    executor.set_epoch_sink = observing  # type: ignore[method-assign]  # watch what the experiment hands on
    try:
        exp.run(executor=executor)
        trials = exp.store.trials()
    finally:
        exp.close()
    assert [(t, e) for t, e, _ in seen] == [(t.id, e) for t in trials for e in (1, 2)]
    assert all(status == "RUNNING" for _, _, status in seen)  # streamed while the trial was still running
    study = optuna.load_study(study_name="live", storage=f"sqlite:///{tmp_path / 'exp' / 'optuna.db'}")
    assert sorted(t.user_attrs["nas_trial_id"] for t in study.trials) == [t.id for t in trials]
    for mirrored in study.trials:
        assert mirrored.state == optuna.trial.TrialState.COMPLETE and len(mirrored.intermediate_values) == 2


class _Killed(BaseException):
    """Stands for the search being killed (as Ctrl-C would) in the middle of a trial's training."""


def test_a_search_killed_mid_trial_and_resumed_shows_each_curve_once(tmp_path: Path) -> None:
    """End to end: the search dies after the first epoch of its second trial has reached the trackers; `resume`
    runs that trial again from its first epoch; TensorBoard and the Optuna study then hold each trial's curve once,
    the curve of the run that finished."""
    cfg = parse_config({"name": "killed", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                        "strategy": {"name": "random"},
                        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200},
                                      "train": {"epochs": 2, "batch_size": 32}},
                        "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1},
                        "tracking": {"optuna": True, "tensorboard": True}})
    out = tmp_path / "exp"
    exp = Experiment.create(cfg, out)
    executor = LocalExecutor()
    original = executor.set_epoch_sink
    killed: list[int] = []

    def killing(sink: Any) -> None:
        def kill_once(trial_id: int, attempt: int, step: int, metrics: dict[str, float]) -> None:
            sink(trial_id, attempt, step, metrics)
            if trial_id == 1 and not killed:
                killed.append(step)
                raise _Killed
        original(kill_once if sink is not None else None)

    executor.set_epoch_sink = killing  # type: ignore[method-assign]  # the kill comes from inside training
    try:
        with pytest.raises(_Killed):
            exp.run(executor=executor)
    finally:
        exp.close()
    assert killed == [1]
    exp = Experiment.open(out)
    try:
        killed = exp.store.get(1)
        assert killed is not None and killed.status == "RUNNING"
        exp.run()
        trials = exp.store.trials()
    finally:
        exp.close()
    assert [t.status for t in trials] == ["COMPLETE", "COMPLETE"]
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{out / 'optuna.db'}")
    assert sorted(t.user_attrs["nas_trial_id"] for t in study.trials) == [0, 1]
    by_id = {t.user_attrs["nas_trial_id"]: t for t in study.trials}
    for t in trials:
        curve = scalars(trial_dir(out / "tensorboard", t.id))["epoch/score"]
        assert sorted(curve) == [(h["epoch"], pytest.approx(h["score"])) for h in t.history]  # once each
        assert by_id[t.id].state == optuna.trial.TrialState.COMPLETE
        assert by_id[t.id].intermediate_values == pytest.approx({h["epoch"]: h["score"] for h in t.history})
