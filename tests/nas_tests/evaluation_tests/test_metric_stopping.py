"""Early stopping (``train.patience``), the best epoch and the ASHA pruner follow the chosen metric's score, not
accuracy: real training of ``mlp`` models on the built-in ``breast_cancer`` (``f1_macro``) and ``diabetes``
(``rmse``) tasks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.metrics import METRICS, get_metric, register_metric
from nas.evaluation.pruning import ASHA
from nas.evaluation.tasks import load_task
from nas.evaluation.training import TrainConfig, train
from nas.graph.architecture import Architecture
from nas.trials.trial import Status, Trial
from search_spaces import get_space

SPACE = get_space("mlp", max_depth=2, max_width=32)


def _arch(seed: int) -> Architecture:
    return SPACE.sample(np.random.default_rng(seed))


def _best_epoch(history: list[dict[str, float]]) -> int:
    """The epoch (1-based) the trainer keeps as the best: highest score, then lowest validation loss."""
    keys = [(h["score"], -h["val_loss"]) for h in history]
    return keys.index(max(keys)) + 1


def test_patience_and_the_best_epoch_follow_f1_macro() -> None:
    evaluator = TrainEvaluator(compiler=SPACE.compiler(), task="breast_cancer", metric="f1_macro", data_seed=0,
                               latency_runs=0, train={"epochs": 40, "batch_size": 32, "optimizer": "adam",
                                                      "lr": 0.01, "threads": 1, "patience": 3})
    result = evaluator.evaluate(Trial(0, _arch(0), seed=0))
    assert result.status is Status.COMPLETE, result.error
    history = result.history
    assert all(h["score"] == h["val_f1_macro"] for h in history)  # the score of every epoch is the metric
    best = _best_epoch(history)
    assert len(history) == best + 3 < 40  # stopped by patience: 3 epochs without a better f1_macro
    assert result.metrics["best_epoch"] == best and result.metrics["epochs"] == len(history)
    assert result.score == result.metrics["val_f1_macro"] == history[best - 1]["val_f1_macro"]


@pytest.fixture
def contrary_metric() -> Iterator[str]:
    """Accuracy, minimised: a metric whose best epoch is where accuracy is worst."""
    register_metric("test_accuracy_min", lambda y, p: 100.0 * float(np.mean(p.argmax(1) == y)), direction="min",
                    problem="classification")
    yield "test_accuracy_min"
    METRICS.unregister("test_accuracy_min")


def test_patience_stops_on_the_metric_while_accuracy_still_improves(contrary_metric: str) -> None:
    task = load_task("breast_cancer", seed=0)
    model = SPACE.compiler()(_arch(1), task.input_shape, task.num_classes)
    cfg = TrainConfig(epochs=30, batch_size=32, optimizer="sgd", lr=0.001, threads=1, patience=2)
    report = train(model, task, cfg, seed=0, metric=get_metric(contrary_metric))
    acc = [h["val_acc"] for h in report.history]
    assert report.stopped == "early_stopping"
    assert all(h["score"] == -h[f"val_{contrary_metric}"] for h in report.history)
    assert report.best_epoch == _best_epoch(report.history) and report.epochs_run == report.best_epoch + 2
    # by accuracy, the last epoch would be the best: training went on improving it, and stopped all the same
    assert acc[-1] > acc[report.best_epoch - 1] and report.epochs_run < 30
    assert report.val_value == min(acc)


class _RecordingASHA(ASHA):
    """ASHA that keeps what each trial reported to it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.reported: dict[int, list[tuple[int, float]]] = {}

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        self.reported.setdefault(trial_id, []).append((epoch, value))
        return super().report(trial_id, epoch, value)


def test_asha_ranks_regression_trials_by_minus_rmse() -> None:
    evaluator = TrainEvaluator(compiler=SPACE.compiler(), task="diabetes", metric="rmse", data_seed=0,
                               latency_runs=0, train={"epochs": 4, "batch_size": 32, "optimizer": "adam",
                                                      "lr": 0.01, "threads": 1})
    pruner = _RecordingASHA(grace_epochs=1, reduction_factor=2)
    evaluator.pruner = pruner
    results = [evaluator.evaluate(Trial(i, _arch(10 + i), seed=i)) for i in range(4)]
    assert all(r.status in (Status.COMPLETE, Status.PRUNED) for r in results), [r.error for r in results]
    for i, r in enumerate(results):
        # every epoch is reported with the score the trial is ranked by: -rmse in the targets' units
        assert pruner.reported[i] == [(int(h["epoch"]), -h["val_rmse"]) for h in r.history]
        assert all(math.isfinite(v) and v < 0 for _, v in pruner.reported[i])
    rung1 = [r.history[0]["val_rmse"] for r in results]
    for i, r in enumerate(results):  # ASHA keeps the lower rmse: the top half of those at the rung so far
        earlier = sorted(rung1[: i + 1])
        keep = earlier[max(1, (i + 1) // 2) - 1] >= rung1[i]
        assert (len(r.history) > 1) == keep, (i, rung1)
    assert any(r.status is Status.PRUNED for r in results)
