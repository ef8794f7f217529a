"""Validation metrics (nas.evaluation.metrics): values against scikit-learn's, directions, the registry
(``register_metric``), refusals (unknown name with a close match, a metric of the other problem)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from nas.core.errors import ConfigError
from nas.evaluation.metrics import METRICS, check_metric, get_metric, list_metrics, metric_keys, register_metric


@pytest.fixture
def proba() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    logits = rng.normal(size=(200, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def test_classification_metrics_match_scikit_learn(proba: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = proba
    assert get_metric("accuracy")(y, p) == pytest.approx(100 * skm.accuracy_score(y, p.argmax(1)))
    assert get_metric("f1_macro")(y, p) == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))
    assert get_metric("auroc")(y, p) == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    binary = (y == 1).astype(int)
    p2 = np.stack([1 - p[:, 1], p[:, 1]], axis=1)
    assert get_metric("auroc")(binary, p2) == pytest.approx(skm.roc_auc_score(binary, p[:, 1]))
    ties = np.array([[0.5, 0.5]] * 4 + [[0.2, 0.8]] * 2)  # tied scores are averaged like scikit-learn does
    labels = np.array([0, 1, 0, 1, 1, 0])
    assert get_metric("auroc")(labels, ties) == pytest.approx(skm.roc_auc_score(labels, ties[:, 1]))


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 2)) * [3.0, 100.0]
    pred = y + rng.normal(size=y.shape)
    assert get_metric("rmse")(y, pred) == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert get_metric("mae")(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred))
    assert get_metric("r2")(y, pred) == pytest.approx(skm.r2_score(y, pred))


def test_directions_and_scores() -> None:
    assert {m: get_metric(m).direction for m in ("accuracy", "f1_macro", "auroc", "r2")} == dict.fromkeys(
        ("accuracy", "f1_macro", "auroc", "r2"), "max")
    assert get_metric("rmse").direction == get_metric("mae").direction == "min"
    assert get_metric("rmse").score(2.5) == -2.5 and get_metric("r2").score(0.5) == 0.5
    assert metric_keys(get_metric("accuracy")) == ("val_acc", "test_acc")
    assert metric_keys(get_metric("rmse")) == ("val_rmse", "test_rmse")


def test_unknown_metric_and_the_wrong_problem_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"evaluator.metric = 'rsme' is unknown.*did you mean 'rmse'"):
        get_metric("rsme")
    with pytest.raises(ConfigError, match=r"'rmse' is a regression metric but task 'digits' is classification"):
        check_metric("rmse", "classification", "digits")
    with pytest.raises(ConfigError, match=r"'f1_macro' is a classification metric but task 'diabetes' is "
                                          r"regression; choose one of rmse, mae, r2"):
        check_metric("f1_macro", "regression", "diabetes")


def test_register_metric_with_its_direction() -> None:
    def worst_error(y: np.ndarray, pred: np.ndarray) -> float:
        return float(np.max(np.abs(y - pred)))

    register_metric("max_error_test", worst_error, direction="min", problem="regression")
    try:
        metric = check_metric("max_error_test", "regression", "diabetes")
        assert metric.direction == "min" and "max_error_test" in list_metrics()
        assert metric(np.array([[1.0], [2.0]]), np.array([[1.5], [0.0]])) == 2.0
        with pytest.raises(ValueError, match="direction = 'down'"):
            register_metric("bad_direction_test", worst_error, direction="down")
    finally:
        METRICS.unregister("max_error_test")
