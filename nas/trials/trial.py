"""Trials and their results: the data that flows between strategies, evaluators, the loop and the store.

A failed or pruned candidate is data (optuna's ``TrialState``): a :class:`Result` with a status and a
reason, never an exception that escapes to the caller.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from nas.graph.architecture import Architecture

__all__ = ["Status", "Trial", "Result"]


class Status(str, enum.Enum):
    """How an evaluation ended."""

    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"


@dataclass(frozen=True)
class Trial:
    """One candidate to evaluate: an id, the architecture and the seed its evaluation must use."""

    id: int
    arch: Architecture
    seed: int = 0


@dataclass
class Result:
    """The outcome of evaluating a trial.

    Attributes:
        status: COMPLETE, FAILED or PRUNED.
        score: the ranking score, higher is better: validation accuracy for trained or tabular
            evaluations, the proxy value for zero-cost proxies. ``None`` when failed.
        metrics: numbers measured, e.g. ``val_acc``, ``val_loss``, ``test_acc`` (reported, never used
            to rank), ``params``, ``flops``, ``latency_ms``, ``train_seconds``, ``epochs``.
        info: text facts, e.g. which signal the score is (``"200-epoch validation"``).
        history: per-epoch metrics of a training run.
        error: one-line reason of a failure or pruning.
        traceback: the full traceback of a failure that raised.
    """

    status: Status
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.COMPLETE

    @classmethod
    def failed(cls, reason: str, traceback: str | None = None, **kwargs: Any) -> Result:
        return cls(Status.FAILED, error=reason, traceback=traceback, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers become ``None``)."""

        def clean(x: float) -> float | None:
            return x if isinstance(x, (int, float)) and math.isfinite(x) else None

        return {
            "status": self.status.value,
            "score": None if self.score is None else clean(self.score),
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "info": dict(self.info),
            "history": [{k: clean(v) for k, v in h.items()} for h in self.history],
            "error": self.error,
            "traceback": self.traceback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(
            status=Status(data["status"]),
            score=data.get("score"),
            metrics={k: (math.nan if v is None else v) for k, v in data.get("metrics", {}).items()},
            info=dict(data.get("info", {})),
            history=[{k: (math.nan if v is None else v) for k, v in h.items()} for h in data.get("history", [])],
            error=data.get("error"),
            traceback=data.get("traceback"),
        )
