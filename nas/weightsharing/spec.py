"""The single-path supernet training described as data (no torch): what the ``weight_sharing`` evaluator asks
the experiment to run before its first trial, its settings, and its outcome.

:class:`SposTraining` is a job description in the sense of :class:`nas.trials.protocols.JobSpec`; its runner is
:func:`nas.weightsharing.job.run_spos_training`. :class:`SharedWeights` is the outcome: the trained supernet's
weights (a state dict of CPU tensors; they travel to the workers inside the evaluator, through Ray's object store)
and, for the store and ``nas status``, the per-epoch records and the cost (``to_dict`` leaves the weights out).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError
from nas.oneshot.spec import SupernetJob

__all__ = ["SposConfig", "SposTraining", "SharedWeights", "training_summary", "trained_summary"]


@dataclass(frozen=True, kw_only=True)
class SposConfig:
    """How the supernet is trained: ``epochs`` over the task's training split with SGD (``lr`` cosine-annealed to
    0, ``momentum``, ``weight_decay``, gradients clipped to ``grad_clip``), one sampled path per step of
    ``batch_size`` examples: on every edge an op drawn at random, each op with probability proportional to 1 except
    the zero ops (NB201's ``none``), whose weight is ``none_weight`` (1: uniform, as SPOS; 0: a zero op is never
    trained, so the path always carries a signal); ``device`` ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    grad_clip: float = 5.0
    none_weight: float = 1.0
    device: str = "auto"

    def check(self, where: str) -> None:
        """:class:`ConfigError` naming ``where.supernet_<field>``, the value and the fix."""
        check_int(f"{where}.supernet_epochs", self.epochs, minimum=1)
        check_int(f"{where}.supernet_batch_size", self.batch_size, minimum=1)
        for name, (low, high) in {"lr": (0.0, math.inf), "momentum": (0.0, 1.0), "weight_decay": (0.0, math.inf),
                                  "grad_clip": (0.0, math.inf), "none_weight": (0.0, 1.0)}.items():
            check_number(f"{where}.supernet_{name}", getattr(self, name), low=low, high=high)
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"{where}.supernet_device = {self.device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SposTraining(SupernetJob[SposConfig]):
    """One supernet training: a :class:`nas.oneshot.spec.SupernetJob` with :class:`SposConfig` settings (its
    fields, files and history as there)."""

    #: the kind of job: names it in progress lines, and its runner in :mod:`nas.runtime.jobs`
    name: ClassVar[str] = "weight_sharing"

    @property
    def label(self) -> str:
        return "single-path supernet"

    @property
    def epochs(self) -> int:
        return self.config.epochs

    def describe_epoch(self, record: dict[str, Any]) -> str:
        return f"train loss {record['train_loss']:.3f} | sampled-path train acc {record['train_acc']:.1f}"

    def failure_hint(self, message: str) -> str:
        if "out of memory" in message.lower():
            return " (out of memory: lower evaluator.options.supernet_batch_size)"
        return ""


@dataclass(frozen=True, kw_only=True)
class SharedWeights:
    """A trained single-path supernet: ``weights`` (the supernet network's state dict, CPU tensors), ``sites``
    (the module path of every mixed op in that network -> ``[slot, row]``), ``slots`` (slot -> its candidate op
    names, or macro values), ``edges`` (cell slot -> the ``(src, dst)`` of each row), ``macro`` (macro slot ->
    the macro setting it chooses), the per-epoch ``history`` and the cost."""

    weights: dict[str, Any]
    sites: dict[str, list[Any]]
    slots: dict[str, list[Any]]
    edges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    macro: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON data for the store (the weights stay in the job's checkpoint)."""
        return {"kind": "weight_sharing", "slots": self.slots, "history": self.history,
                "epochs_run": self.epochs_run, "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds}

    def describe(self) -> str:
        last = self.history[-1] if self.history else {}
        acc = f", sampled-path train acc {last['train_acc']:.1f}" if "train_acc" in last else ""
        return f"{self.epochs_run} epochs, {self.wall_seconds:.0f}s ({self.cpu_seconds / 60:.1f} CPU-min){acc}"

    def summary(self) -> dict[str, Any]:
        """The training in brief, for ``nas status`` (:func:`trained_summary`)."""
        return trained_summary(self.to_dict())


def training_summary(epochs_run: int, epochs: int) -> dict[str, Any]:
    """A supernet training under way in brief, for ``nas status``: ``epochs_run`` of ``epochs`` done."""
    return {"state": "training", "kind": "weight_sharing", "epochs_run": epochs_run, "epochs": epochs}


def trained_summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """A finished supernet training in brief, for ``nas status``, from its :meth:`SharedWeights.to_dict` data (as
    the store keeps it): epochs run, CPU minutes, the sampled-path training accuracy of the last epoch."""
    history = data.get("history") or []
    last = history[-1] if history else {}
    return {"state": "done", "kind": "weight_sharing", "epochs_run": data["epochs_run"],
            "cpu_minutes": round(data["cpu_seconds"] / 60.0, 2), "train_acc": last.get("train_acc")}
