"""The ``evaluator.inherit`` settings of weight inheritance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.checks import check_choice, check_int, check_number
from nas.core.errors import ConfigError, did_you_mean
from nas.evaluation.training import SCHEDULES, TrainConfig

__all__ = ["InheritSettings"]


@dataclass(frozen=True, kw_only=True)
class InheritSettings:
    """``epochs``: how many epochs a child that inherits weights trains (instead of ``train.epochs``); ``keep``: the
    weight store keeps the weights of the ``keep`` most recently finished trials and of the ``keep`` best ones, on top
    of those of the parents the strategy may still pick (evolution's population: never collected); ``max_mb``: a byte
    budget on top (None: none), within which the oldest unprotected weights go first.

    A child continues training from weights that are already trained, so restarting the full learning-rate schedule
    (say cosine from ``train.lr``) on it can undo much of what it inherited: ``lr_scale`` multiplies ``train.lr`` (and
    ``train.min_lr``) for a child that inherits, and ``schedule`` (None: ``train.schedule``) replaces the schedule,
    e.g. ``constant`` to continue at a low rate as Real et al. (2017) do. Warm-up is skipped for such a child. A child
    that inherits nothing trains exactly like a trial without a parent.

    ``zero_new_ops``: the op a mutation put in a child starts with its output at zero (the scale of its last batch
    norm), so the child starts near its parent's function rather than with random features added to trained ones
    (see :func:`nas.graph.inherit.inherit`).

    ``morph``: network morphisms (Net2Net, LEMONADE): the op a mutation put in a child starts from the op it replaced
    where a morphism exists, so the child starts at (exactly or nearly) its parent's function: ``none`` -> any op with
    a batch norm and a 1x1 -> 3x3 convolution exactly, 3x3 -> 1x1, ``skip_connect`` -> conv and ``avg_pool_3x3`` ->
    conv approximately; a removal (an op replaced by ``none``, ``skip_connect`` or a pool) cannot be preserved (see
    :func:`nas.graph.inherit.inherit`). Ops without a morphism are then zeroed if ``zero_new_ops``. On by default: on
    ``mnist`` it lifted every setting measured (RESULTS.md, "Weight inheritance in evolution").

    ``measure_start``: a child that inherited is scored on the validation split right after inheritance, before any
    training (its ``start_val_acc`` and ``start_score`` metrics: where inheritance put it, beside its parent's
    score). It costs one extra validation pass per child and changes nothing else (training and every other metric
    are the same with it on or off), so it is off by default: a diagnostic for tuning inheritance."""

    epochs: int = 1
    keep: int = 32
    max_mb: float | None = None
    lr_scale: float = 1.0
    schedule: str | None = None
    zero_new_ops: bool = False
    morph: bool = True
    measure_start: bool = False

    def child_config(self, cfg: TrainConfig) -> TrainConfig:
        """The training config of a child that inherits weights, from the trial's own ``cfg``."""
        return cfg.replace(epochs=self.epochs, lr=cfg.lr * self.lr_scale, min_lr=cfg.min_lr * self.lr_scale,
                           schedule=self.schedule or cfg.schedule, warmup_epochs=0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> InheritSettings:
        """Check the ``evaluator.inherit`` mapping; a bad key or value is a :class:`ConfigError` naming it."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"evaluator.inherit = {data!r}: expected a mapping such as {{epochs: 2, keep: 32}}")
        known = ("epochs", "keep", "max_mb", "lr_scale", "schedule", "zero_new_ops", "morph", "measure_start")
        for key in data:
            if key not in known:
                raise ConfigError(f"evaluator.inherit.{key}: unknown key" + did_you_mean(str(key), known)
                                  + f"; allowed: {', '.join(known)}")
        epochs = check_int("evaluator.inherit.epochs", data.get("epochs", 1), minimum=1)
        keep = check_int("evaluator.inherit.keep", data.get("keep", 32), minimum=1)
        max_mb = data.get("max_mb")
        if max_mb is not None:
            max_mb = check_number("evaluator.inherit.max_mb", max_mb, low=0.0, finite=True)
        lr_scale = data.get("lr_scale", 1.0)
        if not (isinstance(lr_scale, (int, float)) and not isinstance(lr_scale, bool) and 0 < lr_scale <= 1):
            raise ConfigError(f"evaluator.inherit.lr_scale = {lr_scale!r}: must be a number in (0, 1], the factor "
                              "on train.lr for a child that inherits weights (e.g. 0.3)")
        schedule = data.get("schedule")
        if schedule is not None:
            schedule = check_choice("evaluator.inherit.schedule", schedule, SCHEDULES)
        zero_new_ops = data.get("zero_new_ops", False)
        if not isinstance(zero_new_ops, bool):
            raise ConfigError(f"evaluator.inherit.zero_new_ops = {zero_new_ops!r}: must be true or false (true: an op "
                              "a mutation put in a child starts at zero output)")
        morph = data.get("morph", True)
        if not isinstance(morph, bool):
            raise ConfigError(f"evaluator.inherit.morph = {morph!r}: must be true or false (true: an op a mutation put "
                              "in a child starts from the op it replaced where a network morphism exists)")
        measure_start = data.get("measure_start", False)
        if not isinstance(measure_start, bool):
            raise ConfigError(f"evaluator.inherit.measure_start = {measure_start!r}: must be true or false (true: "
                              "score each inheriting child on the validation split before training, start_val_acc)")
        return cls(epochs=epochs, keep=keep, max_mb=max_mb, lr_scale=float(lr_scale), schedule=schedule,
                   zero_new_ops=zero_new_ops, morph=morph, measure_start=measure_start)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "keep": self.keep, "max_mb": self.max_mb, "lr_scale": self.lr_scale,
                "schedule": self.schedule, "zero_new_ops": self.zero_new_ops,
                "morph": self.morph, "measure_start": self.measure_start}
