"""Validation metrics: the score a search ranks by (``evaluator.metric``), with its direction.

========== ============== ========= =========================================================================
name       problem        direction what
========== ============== ========= =========================================================================
accuracy   classification max       % of samples whose most probable class is the label (the default)
f1_macro   classification max       F1 per class, averaged unweighted over the classes (in [0, 1])
auroc      classification max       area under the ROC curve: binary, or one-vs-rest averaged over classes
rmse       regression     min       root mean squared error, in the targets' original units
mae        regression     min       mean absolute error, in original units
r2         regression     max       coefficient of determination (1 is perfect, 0 predicts the mean)
========== ============== ========= =========================================================================

A metric function is ``fn(y_true, output) -> float``: for classification ``y_true`` holds int class indices
``(N,)`` and ``output`` class probabilities ``(N, classes)``; for regression both are float arrays
``(N, targets)`` in original units. More: :func:`register_metric`, or an installed package's entry point in the
group ``nasgraph.metrics`` naming a :class:`Metric`.

The search always ranks by a *score to maximise*: a metric to minimise is negated (``score = -rmse``), so that
ranking, objectives, strategies and pruning treat every metric alike; results carry the metric itself as
``val_<name>`` and ``test_<name>`` (the test value is only reported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nas.core.errors import ConfigError, did_you_mean
from nas.core.registry import Registry

__all__ = ["Metric", "METRICS", "register_metric", "get_metric", "check_metric", "list_metrics", "metric_for",
           "metric_keys"]

MetricFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """A named validation metric: ``fn(y_true, output) -> float`` (see the module docstring), its ``direction``
    (``"max"`` or ``"min"``) and the ``problem`` it applies to (``"classification"``, ``"regression"``, or None
    for both)."""

    name: str
    fn: MetricFn
    direction: str = "max"
    problem: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"metric {self.name!r}: fn = {self.fn!r} must be a function fn(y_true, output) -> float")
        if self.direction not in ("max", "min"):
            raise ValueError(f"metric {self.name!r}: direction = {self.direction!r} must be 'max' or 'min'")
        if self.problem not in ("classification", "regression", None):
            raise ValueError(f"metric {self.name!r}: problem = {self.problem!r} must be 'classification', "
                             "'regression' or None (both)")

    def __call__(self, y_true: np.ndarray, output: np.ndarray) -> float:
        return float(self.fn(y_true, output))

    def score(self, value: float) -> float:
        """``value`` oriented to be maximised: itself, or negated for a metric to minimise."""
        return value if self.direction == "max" else -value

    def describe(self) -> str:
        """``rmse (minimised; score = -rmse)`` or ``accuracy (maximised)``."""
        return (f"{self.name} (maximised)" if self.direction == "max"
                else f"{self.name} (minimised; score = -{self.name})")


def _check(name: str, obj: object) -> Metric:
    if not isinstance(obj, Metric):
        raise TypeError(f"expected a nas.evaluation.metrics.Metric, got {obj!r}")
    return obj


#: every metric by name: the built-ins, those registered with :func:`register_metric`, and installed plugins
METRICS: Registry[Metric] = Registry("metric", group="nasgraph.metrics", check=_check)


def register_metric(name: str, fn: MetricFn, *, direction: str = "max", problem: str | None = None) -> MetricFn:
    """Register ``fn(y_true, output) -> float`` as metric ``name`` (``evaluator.metric: name``), maximised or
    minimised per ``direction``, for ``problem`` (``"classification"``, ``"regression"`` or None: both).
    Returns ``fn``. Names are unique."""
    METRICS.register(name, Metric(name, fn, direction, problem))
    return fn


def list_metrics() -> list[str]:
    return METRICS.names()


def get_metric(name: str) -> Metric:
    """The metric ``name``; :class:`ConfigError` with the close match when it is unknown."""
    if not isinstance(name, str) or name not in METRICS:
        raise ConfigError(f"evaluator.metric = {name!r} is unknown" + did_you_mean(str(name), list_metrics())
                          + f"; known: {', '.join(list_metrics())} (or register_metric)")
    return METRICS.get(name)


def check_metric(name: str, problem: str, task: str) -> Metric:
    """The metric ``name``, refused when it does not apply to ``problem`` (a regression metric on a classification
    task and the reverse)."""
    metric = get_metric(name)
    if metric.problem is not None and metric.problem != problem:
        fits = [m for m in list_metrics() if METRICS.get(m).problem in (problem, None)]
        fix = ("set evaluator.task_options.kind: regression if y holds targets" if problem == "classification"
               else "")
        raise ConfigError(f"evaluator.metric = {name!r} is a {metric.problem} metric but task {task!r} is "
                          f"{problem}; choose one of {', '.join(fits)}" + (f", or {fix}" if fix else ""))
    return metric


def metric_keys(metric: Metric) -> tuple[str, str]:
    """The result metrics holding ``metric``'s validation and test values: ``val_acc``/``test_acc`` for accuracy,
    ``val_<name>``/``test_<name>`` otherwise."""
    return ("val_acc", "test_acc") if metric.name == "accuracy" else (f"val_{metric.name}", f"test_{metric.name}")


def metric_for(problem: str, name: str | None) -> str:
    """The metric name to use: ``name``, or the default for ``problem`` (accuracy, or rmse for regression)."""
    return name if name is not None else ("rmse" if problem == "regression" else "accuracy")


# -- built-ins -----------------------------------------------------------------------------------------------
def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    return 100.0 * float(np.mean(proba.argmax(1) == y_true))


def f1_macro(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Unweighted mean over the classes (all of ``proba``'s columns seen in labels or predictions) of per-class
    F1; a class never predicted nor present scores nothing, one with no true positive scores 0."""
    pred = proba.argmax(1)
    scores = []
    for c in np.union1d(np.unique(y_true), np.unique(pred)):
        tp = np.sum((pred == c) & (y_true == c))
        fp = np.sum((pred == c) & (y_true != c))
        fn = np.sum((pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2
            start = end
    return ranks


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary: AUC of the second class's probability; more classes: one-vs-rest AUC averaged over the classes
    present (with both positives and negatives) in ``y_true``. NaN when no class can be scored."""
    if proba.shape[1] == 2:
        return _binary_auc(y_true == 1, proba[:, 1])
    aucs = [_binary_auc(y_true == c, proba[:, c]) for c in range(proba.shape[1])]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def rmse(y_true: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y_true) ** 2)))


def mae(y_true: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y_true)))


def r2(y_true: np.ndarray, pred: np.ndarray) -> float:
    """``1 - SS_res / SS_tot`` per target, averaged over targets (a constant target scores 0 unless predicted
    exactly)."""
    ss_res = np.sum((y_true - pred) ** 2, axis=0)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    per = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(per))


for _name, _fn, _direction, _problem in (
        ("accuracy", accuracy, "max", "classification"), ("f1_macro", f1_macro, "max", "classification"),
        ("auroc", auroc, "max", "classification"), ("rmse", rmse, "min", "regression"),
        ("mae", mae, "min", "regression"), ("r2", r2, "max", "regression")):
    register_metric(_name, _fn, direction=_direction, problem=_problem)
