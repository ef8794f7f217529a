"""Settings of a one-shot (gradient) search, validated; plain data with no torch, so strategies can hold them.

The search itself (the supernet job) is :mod:`nas.oneshot.job`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError, did_you_mean
from nas.graph.architecture import Architecture
from nas.trials.protocols import Space

if TYPE_CHECKING:  # an annotation only: importing search_spaces loads every space
    from search_spaces.slots import SupernetSpec

__all__ = ["OneShotConfig", "SupernetSpace", "ALGORITHMS", "COLLAPSE_ACTIONS", "ONESHOT_PRECISIONS", "proxy_space",
           "place"]

ALGORITHMS = ("darts", "gdas", "beta_darts")
COLLAPSE_ACTIONS = ("warn", "stop", "regularize")
ONESHOT_PRECISIONS = ("fp32", "bf16")
#: DARTS' architecture learning rate and the Adam steps it was tuned for (50 epochs of 391 CIFAR-10 batches)
DARTS_ARCH_LR = 3e-4
DARTS_ARCH_STEPS = 50 * 391
#: the largest automatic architecture learning rate
AUTO_ARCH_LR_MAX = 0.1


@dataclass(frozen=True)
class OneShotConfig:
    """Settings of a one-shot search (defaults: DARTS' CIFAR-10 settings, fewer epochs).

    ``space_options`` override the space's options for the supernet only (a smaller proxy network, as DARTS
    searches with 8 cells and evaluates 20); the derived cell is placed back into the configured space.
    ``precision`` ``fp32`` or ``bf16`` (forward passes and losses of both steps under bfloat16 autocast, on CUDA
    or the CPU); ``fp16`` is not offered: its loss scaling does not fit the unrolled second-order step.

    ``arch_lr`` None (the default) scales the architecture learning rate to the search's length: DARTS' 3e-4 is
    tuned for 50 CIFAR-10 epochs of 391 steps (19,550 Adam steps); a CPU search of a few epochs on a small task
    takes a few hundred steps at most, in which 3e-4 leaves the op weights uniform (entropy 1.000, the derived
    cell read from initialisation noise). Auto gives every search DARTS' total step length:
    ``3e-4 * 19550 / (epochs * steps per epoch)``, kept within [3e-4, 0.1] (:meth:`arch_lr_for`)."""

    algorithm: str = "darts"
    order: int = 1
    epochs: int = 20
    batch_size: int = 64
    train_portion: float = 0.5
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None
    arch_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    beta_weight: float = 5.0
    partial_channels: int = 1
    edge_normalization: bool = False
    space_options: dict[str, Any] = field(default_factory=dict)
    collapse_threshold: float = 0.7
    collapse_warmup: int | None = None
    collapse_action: str = "warn"
    device: str = "auto"
    precision: str = "fp32"

    def arch_lr_for(self, steps_per_epoch: int) -> float:
        """The architecture learning rate of a search of ``steps_per_epoch`` steps per epoch: ``arch_lr`` when set,
        else DARTS' 3e-4 scaled to the search's length (see the class docstring)."""
        if self.arch_lr is not None:
            return float(self.arch_lr)
        steps = max(1, self.epochs * steps_per_epoch)
        return min(AUTO_ARCH_LR_MAX, max(DARTS_ARCH_LR, DARTS_ARCH_LR * DARTS_ARCH_STEPS / steps))

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "algorithm"]

    @classmethod
    def from_options(cls, algorithm: str, options: dict[str, Any], where: str = "strategy.options") -> OneShotConfig:
        """Validated settings; every error names ``where.<option>``, the value and the fix."""
        known = cls.option_names()
        for key in options:
            if key not in known:
                raise ConfigError(f"{where}.{key} is not an option of {algorithm}"
                                  + did_you_mean(key, known) + f"; options: {', '.join(known)}")
        cfg = cls(algorithm=algorithm, **options)
        cfg.check(where)
        return cfg

    def check(self, where: str = "strategy.options") -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"one-shot algorithm {self.algorithm!r} is unknown; known: {', '.join(ALGORITHMS)}")
        ints = {"order": (1, 2), "epochs": (1, None), "batch_size": (1, None), "partial_channels": (1, None)}
        if self.collapse_warmup is not None:
            ints["collapse_warmup"] = (0, None)
        for name, (low, high) in ints.items():
            check_int(f"{where}.{name}", getattr(self, name), minimum=low, maximum=high)
        floats = {"train_portion": (0.05, 0.95), "lr": (0.0, math.inf), "lr_min": (0.0, math.inf),
                  "momentum": (0.0, 1.0), "weight_decay": (0.0, math.inf), "grad_clip": (0.0, math.inf),
                  "arch_weight_decay": (0.0, math.inf), "tau_max": (1e-3, math.inf),
                  "tau_min": (1e-3, math.inf), "beta_weight": (0.0, math.inf), "collapse_threshold": (0.0, 1.0)}
        if self.arch_lr is not None:
            floats["arch_lr"] = (0.0, math.inf)
        for name, (lo, hi) in floats.items():
            check_number(f"{where}.{name}", getattr(self, name), low=lo, high=hi)
        if self.order == 2 and self.algorithm == "gdas":
            raise ConfigError(f"{where}.order = 2: gdas samples one path per step and is first order; use order: 1")
        if not isinstance(self.edge_normalization, bool):
            raise ConfigError(f"{where}.edge_normalization = {self.edge_normalization!r}: must be true or false")
        if self.collapse_action not in COLLAPSE_ACTIONS:
            raise ConfigError(f"{where}.collapse_action = {self.collapse_action!r}: expected one of "
                              f"{', '.join(COLLAPSE_ACTIONS)}")
        if not isinstance(self.space_options, dict):
            raise ConfigError(f"{where}.space_options = {self.space_options!r}: must be a mapping of space options")
        if self.precision not in ONESHOT_PRECISIONS:
            hint = ("; fp16 needs loss scaling, which the unrolled architecture step does not support: use bf16 for "
                    "mixed precision" if self.precision == "fp16" else did_you_mean(str(self.precision),
                                                                                 ONESHOT_PRECISIONS))
            raise ConfigError(f"{where}.precision = {self.precision!r}: choose from "
                              f"{', '.join(ONESHOT_PRECISIONS)}{hint}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"{where}.device = {self.device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SupernetSpace(Space, Protocol):
    """A space a one-shot search works on: its supernet described as data (``supernet_spec``), the cells whose
    edges the supernet searches (``searched_cells``, empty for a space without a supernet) and ``derive``, the
    member that architecture parameters choose (``search_spaces.SearchSpace`` has all three)."""

    @property
    def searched_cells(self) -> tuple[str, ...]: ...

    def supernet_spec(self) -> SupernetSpec: ...

    def derive(self, alphas: Mapping[str, Any]) -> Architecture: ...


def proxy_space(space: SupernetSpace, space_options: dict[str, Any]) -> SupernetSpace:
    """The space a supernet is built from: ``space`` with ``space_options`` applied (``space`` itself if none)."""
    return type(space)(**{**space.options(), **space_options}) if space_options else space


def place(space: Space, proxy: Space, arch: Architecture) -> Architecture:
    """A member of the ``proxy`` space placed back into ``space`` (same cells, ``space``'s macro settings)."""
    return arch if proxy is space else space.decode(proxy.encode(arch))
