"""BOHB's model half (Falkner, Klein & Hutter, ICML 2018): TPE-style proposals from kernel density estimates fitted
on the largest training budget (epochs) that has enough observations.

BOHB is this strategy plus the Hyperband pruner (``strategy: bohb`` with ``early_stopping: {name: hyperband}``;
the config refuses ``bohb`` without it). The pruner decides how long each candidate trains; this strategy decides
which candidates to try. It learns from every epoch of every trial, pruned ones included: a trial's per-epoch
history (``Result.history``, its validation ``score`` at each epoch) is an observation at each of those budgets.

* Budget: the largest epoch count with at least ``n_min + 2`` observations (``n_min``: the number of decisions
  plus one, as in the paper); below that everywhere, proposals are uniform samples.
* Model: the observations at that budget split into the best ``top_fraction`` (at least ``n_min``) and the rest
  (at least ``n_min``); one product of Aitchison-Aitken categorical kernels per group over the decision vector
  (bandwidth per decision by the normal reference rule, at least ``min_bandwidth``), ``l`` for the good, ``g``
  for the rest.
* Proposal: ``candidates`` draws from ``l`` with its bandwidths widened by ``bandwidth_factor``, keeping the one
  maximising ``l(x) / g(x)``; a ``random_fraction`` of proposals are uniform samples instead (the paper's
  guarantee of Hyperband's worst case).

Failed trials and epochs without a finite score teach nothing; a result without per-epoch history (a table
look-up, e.g. the ``nb201`` evaluator) is one observation of its score at budget 0, so without a pruner the
strategy is plain TPE. Seeded by the strategy's own RNG; resumable
(the observations are its state).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas.core.checks import check_int, check_number
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Status, Trial
from strategies.base import Strategy

__all__ = ["BOHB"]


class BOHB(Strategy):
    """Options: ``n_min`` (None: decisions + 1), ``top_fraction`` (0.15), ``random_fraction`` (1/3),
    ``candidates`` (64), ``bandwidth_factor`` (3), ``min_bandwidth`` (1e-3)."""

    name = "bohb"

    def __init__(self, *, n_min: int | None = None, top_fraction: float = 0.15, random_fraction: float = 1 / 3,
                 candidates: int = 64, bandwidth_factor: float = 3.0, min_bandwidth: float = 1e-3,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        option = f"strategy {self.name} option"
        self.sizes = [int(n) for n in self.space.decision_sizes()]
        default_min = len(self.sizes) + 1
        self.n_min = default_min if n_min is None else check_int(f"{option} n_min", n_min, minimum=1)
        self.top_fraction = check_number(f"{option} top_fraction", top_fraction, low=0.0, high=1.0)
        self.random_fraction = check_number(f"{option} random_fraction", random_fraction, low=0.0, high=1.0)
        self.candidates = check_int(f"{option} candidates", candidates, minimum=1)
        self.bandwidth_factor = check_number(f"{option} bandwidth_factor", bandwidth_factor, low=1.0)
        self.min_bandwidth = check_number(f"{option} min_bandwidth", min_bandwidth, low=1e-9, high=0.5)
        #: budget (epochs) -> [(decisions, score)] of every trial that reached it
        self.observations: dict[int, list[tuple[list[int], float]]] = {}

    # -- model -------------------------------------------------------------------------------------
    def budget(self) -> int | None:
        """The budget the model is fitted on: the largest with at least ``n_min + 2`` observations (None: none)."""
        enough = [b for b, obs in self.observations.items() if len(obs) >= self.n_min + 2]
        return max(enough) if enough else None

    def _bandwidths(self, X: np.ndarray) -> np.ndarray:
        """Per-decision Aitchison-Aitken bandwidths (the probability mass moved off the observed category):
        the normal reference rule on the category indices, clipped to ``[min_bandwidth, 1 - 1/n]``."""
        n = len(X)
        bw = 1.06 * X.std(axis=0) * n ** (-1 / 5)
        upper = np.array([1.0 - 1.0 / c for c in self.sizes])
        return np.clip(bw, self.min_bandwidth, np.maximum(upper, self.min_bandwidth))

    def _density(self, C: np.ndarray, X: np.ndarray, bw: np.ndarray) -> np.ndarray:
        """Log density of each row of ``C`` under the product-kernel KDE of the rows of ``X``."""
        sizes = np.asarray(self.sizes, dtype=float)
        same = C[:, None, :] == X[None, :, :]  # (candidates, points, decisions)
        other = np.where(sizes > 1, bw / np.maximum(sizes - 1, 1), 0.0)
        k = np.where(same, 1.0 - bw, other)
        log_k = np.log(np.clip(k, 1e-300, None)).sum(-1)
        top = log_k.max(1, keepdims=True)
        return (top[:, 0] + np.log(np.exp(log_k - top).mean(1)))

    def _model_pick(self, budget: int) -> list[int]:
        obs = self.observations[budget]
        scores = np.array([s for _, s in obs])
        order = np.argsort(-scores, kind="stable")
        n = len(obs)
        n_good = max(self.n_min, math.floor(self.top_fraction * n))
        n_bad = max(self.n_min, n - n_good)
        X = np.array([x for x, _ in obs], dtype=int)
        good, bad = X[order[:n_good]], X[order[n - n_bad:]]
        bw_good, bw_bad = self._bandwidths(good), self._bandwidths(bad)
        wide = np.minimum(bw_good * self.bandwidth_factor,
                          np.maximum([1.0 - 1.0 / c for c in self.sizes], self.min_bandwidth))
        C = good[self.rng.integers(len(good), size=self.candidates)].copy()
        for d, c in enumerate(self.sizes):
            if c < 2:
                continue
            move = self.rng.random(self.candidates) < wide[d]
            # a move goes to one of the other categories, uniformly (the Aitchison-Aitken kernel's off mass)
            shift = self.rng.integers(1, c, size=self.candidates)
            C[move, d] = (C[move, d] + shift[move]) % c
        ratio = self._density(C, good, bw_good) - self._density(C, bad, bw_bad)
        return [int(v) for v in C[int(np.argmax(ratio))]]

    # -- the contract ------------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Architecture]:
        out = []
        for _ in range(n):
            budget = self.budget()
            if budget is None or self.rng.random() < self.random_fraction:
                out.append(self.space.sample(self.rng))
            else:
                out.append(self.space.decode(self._model_pick(budget)))
        return out

    def _observe(self, trial: Trial, result: Result) -> None:
        if result.status not in (Status.COMPLETE, Status.PRUNED):
            return
        x = self.space.encode(trial.arch)
        if not result.history:  # no per-epoch record (a table look-up): the score is one observation at budget 0
            fit = self.fitness(result)
            if fit is not None and math.isfinite(fit[0]):
                self.observations.setdefault(0, []).append((x, float(fit[0])))
            return
        for h in result.history:
            score = h.get("score", h.get("val_acc"))
            epoch = h.get("epoch")
            if score is None or epoch is None or not math.isfinite(score):
                continue
            self.observations.setdefault(int(epoch), []).append((x, float(score)))

    def _state(self) -> dict[str, Any]:
        return {"observations": {str(b): [[x, s] for x, s in obs] for b, obs in self.observations.items()}}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.observations = {int(b): [([int(v) for v in x], float(s)) for x, s in obs]
                             for b, obs in state["observations"].items()}
