"""The summary of an experiment as JSON data (``nas status --json``): one shape, built here for both the running
:class:`~nas.runtime.experiment.Experiment` and the read-only :class:`~nas.outputs.view.ExperimentView`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nas.storage.store import StoredBaseline, StoredTrial
from nas.trials.baselines import place
from nas.trials.ranking import Ranking

__all__ = ["summarise"]


def summarise(*, name: str, directory: Path, max_trials: int, done: int, counts: Mapping[str, int], elapsed: float,
              ranking: Ranking[StoredTrial], failed: Iterable[StoredTrial], job: dict[str, Any] | None,
              waiting: Any, top: int, baselines: Iterable[StoredBaseline] = (),
              evaluator_job: dict[str, Any] | None = None) -> dict[str, Any]:
    """Progress, the ``top`` best feasible trials, how many completed trials meet the constraints and the ``top``
    best that do not (with what they violate), ``ranking_note`` (why nothing is ranked, else None), failures
    grouped by reason, the strategy's job in brief (``supernet``), the evaluator's job in brief (``evaluator_job``:
    the weight-sharing evaluator's supernet training), the placement wait under way (``waiting``) and the
    ``baselines`` (reference models trained beside the search, each with ``place``: where its score would rank
    among the search's feasible trials, 1 = ahead of all; None when it has no score)."""
    metric = next((t.info for t in ranking.ranked if "metric" in t.info), None)
    metric_name = metric["metric"] if metric else None
    extra: tuple[str, ...] = () if metric_name in (None, "accuracy") else (f"val_{metric_name}",
                                                                           f"test_{metric_name}")
    scores = [t.score for t in ranking.ranked if t.score is not None]
    failures: dict[str, int] = {}
    for t in failed:
        failures[t.error or "?"] = failures.get(t.error or "?", 0) + 1
    return {
        "name": name, "directory": str(directory), "max_trials": max_trials, "done": done, "counts": dict(counts),
        "elapsed_seconds": round(elapsed, 1),
        "best": [{"id": t.id, "score": t.score, "val_acc": t.metrics.get("val_acc"),
                  "test_acc": t.metrics.get("test_acc"), "params": t.metrics.get("params"),
                  **{k: t.metrics.get(k) for k in extra}, "hash": t.hash[:12]} for t in ranking.ranked[:top]],
        "score_metric": None if metric is None else {"name": metric_name, "direction": metric.get("direction"),
                                                     "score": metric_name if metric.get("direction") == "max"
                                                     else f"-{metric_name}"},
        **ranking.counts(), "ranking_note": ranking.reason() or None,
        "infeasible_best": [{"id": t.id, "score": t.score, "params": t.metrics.get("params"), "violates": why}
                            for t, why in zip(ranking.infeasible[:top], ranking.violations)],
        "failures": failures,
        "supernet": job,
        "evaluator_job": evaluator_job,
        "waiting": waiting,
        "baselines": [{"name": b.name, "id": b.id, "status": b.status, "score": b.score,
                       "val_acc": b.metrics.get("val_acc"), "test_acc": b.metrics.get("test_acc"),
                       "params": b.metrics.get("params"), **{k: b.metrics.get(k) for k in extra},
                       **({"fid": b.metrics["fid"]} if "fid" in b.metrics else {}), "error": b.error,
                       "place": None if b.score is None else place(b.score, scores)} for b in baselines],
    }
