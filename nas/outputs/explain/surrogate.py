"""SHAP for the search itself: which decisions, and which op of each, mattered for the score.

A gradient-boosted tree ensemble (scikit-learn ``GradientBoostingRegressor``) is fitted on the completed trials:
the inputs are the one-hot encoding of every decision that varied (one column per decision and choice, named
``decision=choice``), the target the trial's score. ``shap.TreeExplainer`` gives exact SHAP values of that model
per trial and column (Lundberg et al. 2020). Two summaries are reported:

* per decision: the mean over trials of ``|sum of its columns' SHAP values|``, how far that decision moves the
  predicted score away from the average, in score units;
* per choice: the mean SHAP value of its column over the trials that made the choice, the estimated effect on the
  score of taking that op there (positive: better than the average trial).

How far to trust it: the surrogate's fit is measured out of sample, by k-fold cross-validation (``k = min(5,
n // 3)``, shuffled with ``seed``), as the R^2 and the Spearman correlation of the out-of-fold predictions with the
scores. With fewer than :data:`MIN_TRIALS` usable trials nothing is fitted and ``reason`` says so.

Choices are named by what they put into the architecture (:func:`choice_labels`): the op an edge gets, the inputs
a node takes, the value of a hyperparameter, falling back to the choice's index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from nas.core.requires import require
from nas.graph.architecture import Architecture
from nas.trials.protocols import Space

__all__ = ["MIN_TRIALS", "SearchShap", "choice_labels", "search_shap", "shap_figure"]

#: fewer completed trials than this: the surrogate is not fitted
MIN_TRIALS = 10
#: spaces with more choices than this in total are labelled by index (decoding each would take too long)
MAX_LABELLED_CHOICES = 4000


@dataclass(frozen=True)
class SearchShap:
    """The surrogate's SHAP summaries (see the module docstring), largest first, and its cross-validated fit."""

    decisions: list[str]
    decision_impact: list[float]
    choices: list[str]
    choice_effect: list[float]
    choice_count: list[int]
    r2: float
    spearman: float
    folds: int
    n_trials: int
    model: str
    reason: str | None = None


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(data, (list, tuple)):
        out = {}
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}/{i}"))
        return out
    return {prefix: data}


def choice_labels(space: Space) -> list[list[str]]:
    """A name per choice of each decision: decode the first member (all decisions 0) with that one decision
    changed, and name the choice by the architecture's values that differ between the decision's choices (the op
    of an edge, a node's input, a hyperparameter), joined with ``/``; the index where nothing differs or the space
    is too large to decode every choice. Names are unique within a decision."""
    sizes = space.decision_sizes()
    if sum(sizes) > MAX_LABELLED_CHOICES:
        return [[str(v) for v in range(n)] for n in sizes]
    base = [0] * len(sizes)
    labels = []
    for i, n in enumerate(sizes):
        flats: list[dict[str, Any] | None] = []
        for v in range(n):
            decisions = list(base)
            decisions[i] = v
            try:
                flats.append(_flatten(space.decode(decisions).to_dict()))
            except Exception:  # a choice the space cannot decode from this base: named by its index
                flats.append(None)
        found = [f for f in flats if f is not None]
        keys = sorted({k for f in found for k in f} if found else set())
        differing = [k for k in keys if len({repr(f.get(k)) for f in found}) > 1]
        names = []
        for v, f in enumerate(flats):
            text = "/".join(str(f.get(k)) for k in differing) if f is not None and differing else ""
            names.append(text[:40] or str(v))
        if len(set(names)) < len(names):
            names = [f"{name}#{v}" for v, name in enumerate(names)]
        labels.append(names)
    return labels


def _empty(reason: str, n: int) -> SearchShap:
    return SearchShap([], [], [], [], [], math.nan, math.nan, 0, n, "", reason)


def search_shap(space: Space, archs: Sequence[Architecture], scores: Sequence[float | None],
                seed: int = 0) -> SearchShap:
    """Fit the surrogate on the members of ``space`` among ``archs`` with a finite score and summarise its SHAP
    values (module docstring). Needs scikit-learn and shap (:class:`~nas.core.errors.ConfigError` naming the
    ``explain`` extra when shap is missing)."""
    names, sizes = space.decision_names(), space.decision_sizes()
    rows, targets = [], []
    for arch, score in zip(archs, scores):
        if score is None or not math.isfinite(score) or not space.contains(arch):
            continue
        rows.append(space.encode(arch))
        targets.append(float(score))
    n = len(rows)
    if n < MIN_TRIALS:
        return _empty(f"needs at least {MIN_TRIALS} completed trials in the space to fit a surrogate, has {n}", n)
    decisions = np.asarray(rows)
    varying = [i for i in range(len(names)) if sizes[i] > 1 and len(set(decisions[:, i])) > 1]
    if not varying:
        return _empty("every decision took a single value in these trials", n)
    if float(np.ptp(targets)) == 0.0:
        return _empty("every trial has the same score", n)
    labels = choice_labels(space)
    columns: list[tuple[int, int]] = [(i, v) for i in varying for v in sorted(set(decisions[:, i]))]
    x = np.stack([(decisions[:, i] == v).astype(np.float64) for i, v in columns], axis=1)
    y = np.asarray(targets)
    shap = require("shap", "the search's SHAP panel", "explain")
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import KFold, cross_val_predict

    def surrogate() -> GradientBoostingRegressor:
        return GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8,
                                         min_samples_leaf=2, random_state=seed)

    folds = min(5, n // 3)
    predicted = cross_val_predict(surrogate(), x, y, cv=KFold(folds, shuffle=True, random_state=seed))
    r2 = float(1.0 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2))
    rho = float(spearmanr(predicted, y).statistic) if np.ptp(predicted) > 0 else 0.0
    model = surrogate().fit(x, y)
    values = np.asarray(shap.TreeExplainer(model).shap_values(x))  # (n, columns)
    impact = []
    for i in varying:
        mine = [k for k, (d, _) in enumerate(columns) if d == i]
        impact.append((names[i], float(np.mean(np.abs(values[:, mine].sum(axis=1))))))
    impact.sort(key=lambda kv: (-kv[1], kv[0]))
    effects = []
    for k, (i, v) in enumerate(columns):
        chosen = x[:, k] == 1
        effects.append((f"{names[i]}={labels[i][v]}", float(values[chosen, k].mean()), int(chosen.sum())))
    effects.sort(key=lambda e: (-abs(e[1]), e[0]))
    return SearchShap([d for d, _ in impact], [v for _, v in impact], [c for c, _, _ in effects],
                      [e for _, e, _ in effects], [m for _, _, m in effects], r2, rho if math.isfinite(rho) else 0.0,
                      folds, n, f"GradientBoostingRegressor (150 trees of depth 3) on the one-hot of {len(varying)} "
                      f"varying decisions ({len(columns)} columns)")


def shap_figure(result: SearchShap, top: int = 12) -> Figure:
    """Left: the decisions' impact (mean |SHAP|); right: the ``top`` choices with the largest effect, signed."""
    shown_d = min(top, len(result.decisions))
    shown_c = min(top, len(result.choices))
    rows = max(shown_d, shown_c)
    fig = Figure(figsize=(10.5, 1.1 + 0.27 * rows), dpi=100)
    left, right = fig.subplots(1, 2)
    y = np.arange(shown_d)[::-1]
    left.barh(y, result.decision_impact[:shown_d], color="#4c72b0", alpha=0.85)
    left.set_yticks(y, result.decisions[:shown_d], fontsize=8)
    left.set_xlabel("mean |SHAP| (score units)")
    left.set_title("impact per decision", fontsize=10)
    y = np.arange(shown_c)[::-1]
    effects = result.choice_effect[:shown_c]
    right.barh(y, effects, color=["#55a868" if e >= 0 else "#c44e52" for e in effects], alpha=0.85)
    right.set_yticks(y, result.choices[:shown_c], fontsize=8)
    right.axvline(0.0, color="#555", linewidth=0.8)
    right.set_xlabel("mean SHAP when chosen (score units)")
    right.set_title("effect per choice", fontsize=10)
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
