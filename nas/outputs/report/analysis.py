"""What the search learned: how often each op appears among the best trials, and which of the space's decisions
matter (functional ANOVA, Optuna's fANOVA evaluator, over the space's categorical decisions)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nas.graph.architecture import Architecture
from nas.trials.protocols import Space

__all__ = ["OpFrequency", "op_frequency", "Importance", "decision_importance", "best_fraction_count"]

#: Share of the completed trials counted as "the best" for op frequencies (at least one trial).
BEST_FRACTION = 0.25


def best_fraction_count(n_completed: int, fraction: float = BEST_FRACTION) -> int:
    """How many of ``n_completed`` ranked trials are "the best": ``ceil(fraction * n)``, at least 1 (0 if none)."""
    return min(n_completed, max(1, math.ceil(fraction * n_completed))) if n_completed else 0


@dataclass(frozen=True)
class OpFrequency:
    """Per op (labelled ``op``, or ``cell/op`` when the architectures have several cells): its share of the
    edges among the best trials and among all completed trials, most frequent among the best first."""

    labels: list[str]
    best: list[float]
    overall: list[float]
    n_best: int
    n_all: int


def _op_counts(archs: Sequence[Architecture]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for arch in archs:
        cells = arch.cells
        for name, cell in cells.items():
            for op in cell.ops():
                counts[f"{name}/{op}" if len(cells) > 1 else op] += 1
    return counts


def op_frequency(ranked: Sequence[Architecture], n_best: int) -> OpFrequency:
    """Op shares among the first ``n_best`` of ``ranked`` (best first) and among all of them. Shares are per
    cell when labels are ``cell/op``: the shares of one cell's ops sum to 1 within each group."""
    best, overall = _op_counts(ranked[:n_best]), _op_counts(ranked)

    def shares(counts: Counter[str]) -> dict[str, float]:
        totals: Counter[str] = Counter()
        for label, n in counts.items():
            totals[label.split("/")[0] if "/" in label else ""] += n
        return {label: n / totals[label.split("/")[0] if "/" in label else ""] for label, n in counts.items()}

    b, o = shares(best), shares(overall)
    labels = sorted(o, key=lambda k: (-b.get(k, 0.0), -o[k], k))
    return OpFrequency(labels, [b.get(k, 0.0) for k in labels], [o[k] for k in labels], min(n_best, len(ranked)),
                       len(ranked))


@dataclass(frozen=True)
class Importance:
    """Decision importances (sum to 1) by decision name, largest first; ``method`` says how they were computed,
    ``reason`` why there are none."""

    names: list[str]
    values: list[float]
    method: str
    n_trials: int
    reason: str | None = None


def decision_importance(space: Space, archs: Sequence[Architecture], scores: Sequence[float],
                        seed: int = 0) -> Importance:
    """fANOVA importance of the space's decisions (``space.encode``) for ``scores`` (higher is better).

    Builds an in-memory Optuna study holding one finished trial per architecture, each decision a
    ``CategoricalDistribution`` over its index range, and runs ``FanovaImportanceEvaluator(seed=seed)``.
    Architectures that are not members of ``space`` are left out. With fewer than 3 usable trials, or when
    every decision kept one value, the result has no values and says why in ``reason``.
    """
    method = "fANOVA (optuna.importance.FanovaImportanceEvaluator) over the space's decisions"
    names, sizes = space.decision_names(), space.decision_sizes()
    rows = []
    for arch, score in zip(archs, scores):
        if score is None or not math.isfinite(score) or not space.contains(arch):
            continue
        rows.append((space.encode(arch), float(score)))
    if len(rows) < 3:
        return Importance([], [], method, len(rows), f"needs at least 3 completed trials in the space, has {len(rows)}")
    varying = [i for i in range(len(names)) if sizes[i] > 1 and len({r[0][i] for r in rows}) > 1]
    if not varying:
        return Importance([], [], method, len(rows), "every decision took a single value in these trials")
    if len({score for _, score in rows}) == 1:  # fANOVA has no variance to attribute (optuna raises)
        return Importance([], [], method, len(rows), "every trial has the same score")
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.importance import FanovaImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {
        names[i]: CategoricalDistribution(list(range(sizes[i]))) for i in varying}
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={names[i]: d[i] for i in varying},
                                                distributions=distributions, value=score) for d, score in rows])
    values = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return Importance([k for k, _ in ordered], [float(v) for _, v in ordered], method, len(rows))
