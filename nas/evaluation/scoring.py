"""Losses and split scores for classification and regression tasks: what the trainer minimises and measures.

Classification trains with cross-entropy (optionally class-weighted: ``train.class_weight: balanced`` weighs each
class by ``N / (classes * N_class)`` of the train split, for imbalanced data); regression with ``mse`` (default) or
``huber`` on the standardised targets. :func:`score_split` gives a split's mean loss, accuracy (classification) and
the chosen :class:`~nas.evaluation.metrics.Metric` (regression metrics in the targets' original units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.evaluation.device import autocast, to_device
from nas.evaluation.metrics import Metric
from nas.evaluation.tasks import Task

__all__ = ["LOSSES", "CLASS_WEIGHTS", "make_loss", "predict", "score_split", "SplitScore", "in_target_units"]

#: ``train.loss``: ``auto`` is cross-entropy for classification, ``mse`` for regression
LOSSES = ("auto", "cross_entropy", "mse", "huber")
#: ``train.class_weight``
CLASS_WEIGHTS = ("balanced",)


def make_loss(task: Task, *, loss: str = "auto", class_weight: str | None = None, label_smoothing: float = 0.0,
              device: torch.device | None = None) -> nn.Module:
    """The training loss for ``task`` (``loss`` and ``class_weight`` as checked by ``TrainConfig``)."""
    if task.regression:
        if loss in ("auto", "mse"):
            return nn.MSELoss()
        if loss == "huber":
            return nn.HuberLoss()
        raise ValueError(f"train.loss = {loss!r} does not apply to the regression task {task.name!r}; use mse or "
                         "huber")
    if loss not in ("auto", "cross_entropy"):
        raise ValueError(f"train.loss = {loss!r} does not apply to the classification task {task.name!r}; use "
                         "cross_entropy (or auto)")
    weight = None
    if class_weight == "balanced":
        counts = np.bincount(task.y_train, minlength=task.num_classes).astype(np.float64)
        weight = torch.as_tensor(len(task.y_train) / (task.num_classes * np.maximum(counts, 1)),
                                 dtype=torch.float32, device=device)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512, *, device: torch.device | None = None,
            precision: str = "fp32", channels_last: bool = False) -> torch.Tensor:
    """The model's outputs (float32, on ``device``, default ``x``'s) on ``x`` in eval mode, batch by batch under
    the autocast of ``precision`` (``x`` may stay in host memory: each batch is moved); the training mode is
    restored."""
    device = x.device if device is None else device
    was = model.training
    model.eval()
    outs = []
    for i in range(0, len(x), batch_size):
        xb = to_device(x[i:i + batch_size], device, channels_last=channels_last)
        with autocast(device, precision):
            outs.append(model(xb).float())
    model.train(was)
    return torch.cat(outs)


def in_target_units(task: Task, values: np.ndarray) -> np.ndarray:
    """Standardised regression targets or predictions ``(N, targets)`` back in original units."""
    return values * np.asarray(task.target_std) + np.asarray(task.target_mean)


@dataclass(frozen=True)
class SplitScore:
    """A split's mean loss (what the trainer minimises; unweighted), accuracy in % (NaN for regression) and
    the metric's value."""

    loss: float
    acc: float
    value: float


def score_split(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task, metric: Metric,
                batch_size: int = 512, loss: str = "auto", *, device: torch.device | None = None,
                precision: str = "fp32", channels_last: bool = False) -> SplitScore:
    """Loss, accuracy and ``metric`` of ``model`` on ``(x, y)`` of ``task`` (device use as :func:`predict`)."""
    out = predict(model, x, batch_size, device=device, precision=precision, channels_last=channels_last)
    y = y.to(out.device)
    if task.regression:
        fn = nn.HuberLoss() if loss == "huber" else nn.MSELoss()
        mean_loss = fn(out.reshape(y.shape), y).item()
        pred = in_target_units(task, out.reshape(len(out), -1).double().cpu().numpy())
        true = in_target_units(task, y.reshape(len(y), -1).double().cpu().numpy())
        return SplitScore(mean_loss, float("nan"), metric(true, pred))
    mean_loss = nn.functional.cross_entropy(out, y).item()
    proba = torch.softmax(out.double(), dim=1).cpu().numpy()
    labels = y.cpu().numpy()
    acc = 100.0 * float(np.mean(proba.argmax(1) == labels))
    return SplitScore(mean_loss, acc, acc if metric.name == "accuracy" else metric(labels, proba))
