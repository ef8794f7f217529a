"""Scoring a representation on a small labeled split: k-NN (default) or a linear (ridge) probe.

k-NN is the default because it trains nothing: it scores the representation as it is, with no probe
hyperparameters to tune per candidate, one matrix product per split, and the same answer on every run (Wu et al.,
2018; DINO). The linear probe (``method: linear``) is ridge regression on one-hot labels, solved in closed form,
equally deterministic; it credits linearly separable features that k-NN's cosine neighbourhoods may miss."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.core.checks import check_choice, check_int, check_number
from nas.core.errors import ConfigError, did_you_mean

__all__ = ["ProbeSettings", "labeled_subset", "knn_accuracy", "linear_accuracy", "METHODS"]

METHODS = ("knn", "linear")
_FIELD = "evaluator.options.probe"
_KEYS = ("labels", "method", "k")


@dataclass(frozen=True)
class ProbeSettings:
    """``labels``: the fraction of the train and of the validation split whose labels the probe may use (each
    stratified, at least one sample per class); ``method``: ``knn`` or ``linear``; ``k``: neighbours of k-NN."""

    labels: float = 0.1
    method: str = "knn"
    k: int = 20

    @classmethod
    def from_dict(cls, data: Any) -> ProbeSettings:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{_FIELD} = {data!r}: give a mapping such as {{labels: 0.1}} (or leave it out to "
                              "score by the pretext)")
        for key in data:
            if key not in _KEYS:
                raise ConfigError(f"{_FIELD}.{key}: unknown probe option" + did_you_mean(str(key), _KEYS)
                                  + "; allowed: labels, method, k")
        settings = cls(**dict(data))
        fraction = check_number(f"{_FIELD}.labels", settings.labels, low=0.0, high=1.0, finite=True)
        if fraction <= 0:
            raise ConfigError(f"{_FIELD}.labels = {settings.labels!r}: must be a fraction in (0, 1], e.g. 0.1 for 10% "
                              "of the labels")
        check_choice(f"{_FIELD}.method", settings.method, METHODS)
        check_int(f"{_FIELD}.k", settings.k, minimum=1)
        return settings

    def describe(self) -> str:
        what = f"{self.k}-NN" if self.method == "knn" else "linear (ridge) probe"
        return f"{what} accuracy with {self.labels:g} of the labels"


def labeled_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified subset holding ``fraction`` of each class's samples (at least one)."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[: max(1, round(fraction * np.sum(y == c)))] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def knn_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, val_f: torch.Tensor, val_y: torch.Tensor,
                 num_classes: int, k: int = 20, temperature: float = 0.07) -> float:
    """Accuracy (%) of a weighted k-NN vote on cosine similarity (weights ``exp(sim / temperature)``, Wu et al.)."""
    a, b = F.normalize(train_f, dim=1), F.normalize(val_f, dim=1)
    sim = b @ a.T
    k = min(k, len(train_f))
    top, idx = sim.topk(k, dim=1)
    votes = torch.zeros(len(val_f), num_classes)
    votes.scatter_add_(1, train_y[idx], (top / temperature).exp())
    return 100.0 * float((votes.argmax(1) == val_y).float().mean())


def linear_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, val_f: torch.Tensor, val_y: torch.Tensor,
                    num_classes: int, ridge: float = 1.0) -> float:
    """Accuracy (%) of ridge regression on one-hot labels (features standardised on the probe's train part)."""
    mean, std = train_f.mean(0), train_f.std(0) + 1e-6
    a = torch.cat([(train_f - mean) / std, torch.ones(len(train_f), 1)], 1).double()
    b = torch.cat([(val_f - mean) / std, torch.ones(len(val_f), 1)], 1).double()
    targets = F.one_hot(train_y, num_classes).double()
    w = torch.linalg.solve(a.T @ a + ridge * torch.eye(a.shape[1], dtype=a.dtype), a.T @ targets)
    return 100.0 * float(((b @ w).argmax(1) == val_y).float().mean())
