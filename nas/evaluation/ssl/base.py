"""The pretext contract: a module wrapping the compiled backbone that turns unlabeled batches into a loss, and
scores the validation split by its own metric."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from nas.core.errors import ConfigError, did_you_mean

__all__ = ["Pretext", "check_options"]

#: where a config's pretext options live (messages name the field)
WHERE = "evaluator.options"


def check_options(pretext: str, options: Mapping[str, Any], known: Sequence[str]) -> None:
    """Refuse an option the pretext does not take, naming the field and the close match."""
    for key in options:
        if key not in known:
            raise ConfigError(f"{WHERE}.{key}: not an option of pretext {pretext!r}" + did_you_mean(str(key), known)
                              + f"; its options: {', '.join(known) or 'none'}")


class Pretext(nn.Module, ABC):
    """A self-supervised objective around ``backbone`` (a compiled network whose head has :meth:`out_dim` outputs).

    Subclasses set ``name``, ``kinds`` (the data kinds they take), ``metric`` (the validation metric's name, also
    a result metric) and ``maximize`` (whether a larger metric is better; the score is the metric, negated when
    smaller is better), and ``OPTIONS`` (their defaults). Every random draw comes from the generator passed in.
    Only the parameters with ``requires_grad`` are trained (a momentum encoder's are not)."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    metric: ClassVar[str]
    maximize: ClassVar[bool]
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    @classmethod
    def check(cls, input_shape: Sequence[int], kind: str, options: Mapping[str, Any]) -> None:
        """Refuse data this pretext cannot use and bad option values (:class:`ConfigError` naming the field)."""
        check_options(cls.name, options, list(cls.OPTIONS))
        if kind not in cls.kinds:
            raise ConfigError(f"{WHERE}.pretext = {cls.name!r} needs {' or '.join(cls.kinds)} data, but the task holds "
                              f"{kind} data {tuple(input_shape)}; choose a pretext for {kind} data")

    @classmethod
    @abstractmethod
    def out_dim(cls, input_shape: Sequence[int], options: Mapping[str, Any]) -> int:
        """The output size the backbone is compiled with (its head's outputs)."""

    @abstractmethod
    def loss(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The training loss of one unlabeled batch."""

    @abstractmethod
    def validate(self, x: torch.Tensor, gen: torch.Generator, batch_size: int) -> dict[str, float]:
        """The validation metrics of ``x`` (``metric`` among them), in eval mode, without gradients."""

    def after_step(self) -> None:
        """Called after every optimiser step (a momentum encoder follows the online one here)."""

    def batch_sums(self, x: torch.Tensor, batch_size: int,
                   sums: Callable[[torch.Tensor], Iterable[Sequence[float]]]) -> list[float]:
        """In eval mode, the running totals of what ``sums(batch)`` yields for each batch of ``x`` (``batch_size``
        inputs, in order; a batch may yield several tuples of sums, or none; an empty list when none yielded any):
        the loop of every :meth:`validate` (the caller holds ``no_grad``)."""
        self.eval()
        totals: list[float] | None = None
        for i in range(0, len(x), batch_size):
            for part in sums(x[i:i + batch_size]):
                values = [float(v) for v in part]
                totals = values if totals is None else [t + v for t, v in zip(totals, values)]
        return totals if totals is not None else []

    def score(self, metrics: Mapping[str, float]) -> float:
        """The score of validation ``metrics``: ``metric``, negated when smaller is better."""
        value = float(metrics[self.metric])
        return value if self.maximize else -value
