"""Your own data and problem: tasks from a Python function (``module:function``), tabular tasks, regression
(targets standardised on the train split, plain shuffled splits, rmse/mae/r2 in original units), class-weighted
training, and the evaluator's metric as the score."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.metrics import get_metric
from nas.evaluation.scoring import make_loss
from nas.evaluation.tasks import load_task, task_problem
from nas.evaluation.training import TrainConfig, train
from nas.graph.architecture import Architecture, Cell
from nas.trials.trial import Status, Trial

MODULE = textwrap.dedent('''
    import numpy as np

    def blobs(n=120, features=4, seed=0):
        rng = np.random.default_rng(seed)
        y = np.arange(n) % 3
        x = rng.normal(size=(n, features)) + 2.0 * y[:, None]
        return x * 100.0 + 7.0, np.array(["a", "b", "c"])[y]

    def images_last(n=60):
        rng = np.random.default_rng(1)
        return rng.normal(size=(n, 8, 6, 3)), np.arange(n) % 2

    def waves(n=200, targets=1):
        rng = np.random.default_rng(2)
        freq = rng.uniform(0.5, 3.0, size=(n, targets))
        t = np.linspace(0, 6, 30)
        x = np.sin(freq[:, :1] * t[None, :])[:, :, None] + rng.normal(0, 0.05, (n, 30, 1))
        return x, 10.0 * freq[:, 0] if targets == 1 else freq

    def not_a_pair():
        return np.zeros((10, 3))

    def mismatched():
        return np.zeros((10, 3)), np.arange(9)

    def five_dims():
        return np.zeros((10, 1, 2, 2, 2)), np.arange(10) % 2

    def with_nan():
        x = np.zeros((30, 3)); x[4, 1] = np.nan
        return x, np.arange(30) % 2

    def raises():
        raise RuntimeError("the database is down")
''')


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    (tmp_path / "my_data_mod.py").write_text(MODULE)
    return str(tmp_path)


def test_a_function_task_from_the_config_folder_is_split_and_standardised_like_npz(data_dir: str) -> None:
    task = load_task("my_data_mod:blobs", seed=3, module_dir=data_dir, n=150, features=5)
    assert task.kind == "tabular" and task.input_shape == (5,) and task.classes == ("a", "b", "c")
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 150
    assert set(np.unique(task.y_val)) == {0, 1, 2}  # stratified
    np.testing.assert_allclose(task.x_train.mean(axis=0), 0, atol=1e-4)  # train-split statistics
    np.testing.assert_allclose(task.x_train.std(axis=0), 1, atol=1e-3)
    assert len(task.mean) == 5 and 150 < np.mean(task.mean) < 260  # raw scale (about 207) kept for export
    same = load_task("my_data_mod:blobs", seed=3, module_dir=data_dir, n=150, features=5)
    np.testing.assert_array_equal(same.x_val, task.x_val)


def test_a_function_task_on_sys_path(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(data_dir)
    assert load_task("my_data_mod:blobs", seed=0).num_classes == 3


def test_channels_last_applies_to_function_images(data_dir: str) -> None:
    with pytest.raises(ConfigError, match="looks channels-last"):
        load_task("my_data_mod:images_last", module_dir=data_dir)
    task = load_task("my_data_mod:images_last", module_dir=data_dir, channels_last=True)
    assert task.kind == "image" and task.input_shape == (3, 8, 6)


@pytest.mark.parametrize("spec, options, message", [
    ("no_such_mod_xyz:load", {}, r"module 'no_such_mod_xyz' cannot be imported"),
    ("my_data_mod:blob", {}, r"has no function 'blob'.*did you mean 'blobs'"),
    # x alone is unlabeled data: refused where labels are needed (the ssl evaluator takes it)
    ("my_data_mod:not_a_pair", {}, r"holds unlabeled data \(its function returned no y\).*add the labels"),
    ("my_data_mod:mismatched", {}, r"y of shape \(9,\) for x of shape \(10, 3\)"),
    ("my_data_mod:five_dims", {}, r"x of shape \(10, 1, 2, 2, 2\).*\(N, F\) tabular rows"),
    ("my_data_mod:with_nan", {}, r"x holds 1 NaN .* \(the first in sample 4\)"),
    ("my_data_mod:raises", {}, r"the function raised RuntimeError: the database is down"),
    ("my_data_mod:blobs", {"featurs": 3}, r"cannot take \{'featurs': 3\}.*did you mean 'features'"),
    ("my_data_mod:waves", {}, r"y holds fractional values .* set task option kind: regression"),
    ("my data:load", {}, r"'package.module:function'"),
])
def test_function_task_errors_name_the_problem(data_dir: str, spec: str, options: dict[str, Any],
                                               message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_task(spec, module_dir=data_dir, **options)


def test_diabetes_is_a_regression_task_in_standardised_units() -> None:
    assert task_problem("diabetes") == "regression" and task_problem("digits") == "classification"
    task = load_task("diabetes", seed=0)
    assert task.regression and task.kind == "tabular" and task.num_classes == 1 and task.classes == ("target",)
    assert task.y_train.dtype == np.float32 and task.y_train.shape == (len(task.x_train), 1)
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 442
    np.testing.assert_allclose(task.y_train.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(task.y_train.std(), 1, atol=1e-4)
    assert 140 < task.target_mean[0] < 165 and 70 < task.target_std[0] < 85  # diabetes targets: 25..346
    other = load_task("diabetes", seed=1)
    assert not np.array_equal(other.y_val, task.y_val)  # the split follows the seed


def test_regression_function_task_with_several_targets(data_dir: str) -> None:
    task = load_task("my_data_mod:waves", kind="regression", module_dir=data_dir, targets=2)
    assert task.kind == "sequence" and task.num_classes == 2 and task.classes == ("target_0", "target_1")
    with pytest.raises(ConfigError, match=r"kind = 'regresion'.*did you mean 'regression'"):
        load_task("my_data_mod:waves", kind="regresion", module_dir=data_dir)


def test_regression_targets_must_be_finite_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.npz"
    y = np.linspace(0, 1, 40)
    y[3] = np.inf
    np.savez(path, x=np.zeros((40, 3)), y=y)
    with pytest.raises(ConfigError, match=r"y holds 1 NaN or infinite target"):
        load_task("npz", path=str(path), kind="regression")
    np.savez(path, x=np.zeros((40, 3)), y=np.array(["a", "b"] * 20))
    with pytest.raises(ConfigError, match=r"regression targets must be real numbers"):
        load_task("npz", path=str(path), kind="regression")


@dataclass(frozen=True)
class TinyMLP:
    """A plain model compiler for tabular tests: hidden width from the architecture's macro ``width``."""

    name: str = "tiny_mlp_test"
    input_kind: str = "tabular"

    def __call__(self, arch: Architecture, input_shape: Any, num_classes: int) -> nn.Module:
        return _MLP(int(np.prod(input_shape)), int(arch.macro["width"]), num_classes)


class _MLP(nn.Module):
    def __init__(self, features: int, width: int, outputs: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(features, width), nn.ReLU())
        self.classifier = nn.Linear(width, outputs)  # the trainer's dropout goes before it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def _arch(width: int) -> Architecture:
    return Architecture(space="tiny_mlp_test", cells={"body": Cell(family="mlp", inputs=1, nodes=2,
                                                                  edges=((0, 1, "linear"),), output=(1,))},
                        macro={"width": width})


def test_regression_trains_on_diabetes_and_scores_in_original_units() -> None:
    task = load_task("diabetes", seed=0)
    cfg = TrainConfig(epochs=30, batch_size=32, optimizer="adam", lr=0.01, weight_decay=0.0, threads=1)
    torch.manual_seed(0)
    model = TinyMLP()(_arch(32), task.input_shape, task.num_classes)
    report = train(model, task, cfg, seed=0, metric=get_metric("rmse"))
    y_val = task.y_val[:, 0] * task.target_std[0] + task.target_mean[0]
    baseline = float(np.sqrt(np.mean((y_val - task.target_mean[0]) ** 2)))  # predicting the train mean
    assert report.metric == "rmse" and report.val_value < 0.85 * baseline
    assert "val_acc" not in report.history[0] and report.history[0]["score"] == -report.history[0]["val_rmse"]
    assert math.isnan(report.val_acc)


def test_balanced_class_weight_weighs_rare_classes_up() -> None:
    task = load_task("breast_cancer", seed=0)
    loss = make_loss(task, class_weight="balanced")
    counts = np.bincount(task.y_train)
    assert isinstance(loss, nn.CrossEntropyLoss) and loss.weight is not None
    np.testing.assert_allclose(loss.weight.numpy(), len(task.y_train) / (2 * counts), rtol=1e-6)
    assert make_loss(task).weight is None
    with pytest.raises(ConfigError, match=r"train.class_weight"):
        TrainConfig(class_weight="inverse")
    with pytest.raises(ValueError, match=r"train.loss = 'mse' does not apply to the classification task"):
        make_loss(task, loss="mse")


def test_the_evaluator_scores_by_its_metric_with_direction() -> None:
    ev = TrainEvaluator(compiler=TinyMLP(), task="diabetes", latency_runs=0,
                        train={"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "threads": 1})
    assert ev.metric.name == "rmse"  # the regression default
    assert {"val_rmse", "test_rmse"} <= ev.metric_names() and "val_acc" not in ev.metric_names()
    result = ev.evaluate(Trial(id=0, arch=_arch(16), seed=0))
    assert result.status is Status.COMPLETE, result.error
    assert result.score == -result.metrics["val_rmse"] and result.metrics["test_rmse"] > 0
    assert result.info["metric"] == "rmse" and result.info["direction"] == "min"
    f1 = TrainEvaluator(compiler=TinyMLP(), task="wine", metric="f1_macro", latency_runs=0,
                        train={"epochs": 2, "threads": 1, "class_weight": "balanced"})
    res = f1.evaluate(Trial(id=1, arch=_arch(8), seed=0))
    assert res.status is Status.COMPLETE and res.score == res.metrics["val_f1_macro"] <= 1.0
    with pytest.raises(ConfigError, match=r"'rmse' is a regression metric but task 'wine' is classification"):
        TrainEvaluator(compiler=TinyMLP(), task="wine", metric="rmse")
    with pytest.raises(ConfigError, match=r"'accuracy' is a classification metric but task 'diabetes'"):
        TrainEvaluator(compiler=TinyMLP(), task="diabetes", metric="accuracy")
