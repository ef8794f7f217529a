"""Trials and their results: the data that flows between strategies, evaluators, the loop and the store.

A failed or pruned candidate is data (optuna's ``TrialState``): a :class:`Result` with a status and a
reason, never an exception that escapes to the caller.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from nas.graph.architecture import Architecture

__all__ = ["Status", "Trial", "Result", "ParentWeights", "WeightSource"]


class Status(str, enum.Enum):
    """How an evaluation ended."""

    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"


class WeightSource(Protocol):
    """Where a parent's serialized weights are read from on the worker (the bytes themselves in-process, a Ray
    object reference on a cluster); it must pickle, and ``load`` never touches the experiment's folder."""

    def load(self) -> bytes: ...


@dataclass(frozen=True)
class ParentWeights:
    """The trained weights a child trial starts from (weight inheritance): the parent trial's id, the sha256 of
    the serialized weights (checked again on the worker) and where to read them. ``source`` None: the parent's
    weights could not be had (``note`` says why) and the child trains from scratch."""

    parent: int
    sha256: str = ""
    source: WeightSource | None = None
    note: str = ""


@dataclass(frozen=True)
class Trial:
    """One candidate to evaluate: an id, the architecture and the seed its evaluation must use.

    ``parent`` is the id of the trial whose architecture this one was derived from (evolution's mutation), None
    for a proposal without one (random sampling, rl, optuna); it is stored with the trial. ``inherit`` is set by
    the runtime just before the trial is submitted when the evaluator inherits weights: the parent's weights, or
    why there are none. It is transport, not identity: it takes no part in equality and is never stored."""

    id: int
    arch: Architecture
    seed: int = 0
    parent: int | None = None
    inherit: ParentWeights | None = field(default=None, compare=False, repr=False)


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
        weights: the trained model's weights serialized (weight inheritance only: the runtime keeps them in the
            experiment's weight store and drops them from the result); never part of :meth:`to_dict`.
    """

    status: Status
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    weights: bytes | None = field(default=None, repr=False, compare=False)

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
