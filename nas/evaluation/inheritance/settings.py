"""The ``evaluator.inherit`` settings of weight inheritance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError, did_you_mean

__all__ = ["InheritSettings"]


@dataclass(frozen=True, kw_only=True)
class InheritSettings:
    """``epochs``: how many epochs a child that inherits weights trains (instead of ``train.epochs``); ``keep``: the
    weight store keeps the weights of the ``keep`` most recently finished trials (the population, for aging evolution:
    make it at least the population) and of the ``keep`` best ones; ``max_mb``: a byte budget on top (None: none),
    within which the oldest weights go first."""

    epochs: int = 1
    keep: int = 32
    max_mb: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> InheritSettings:
        """Check the ``evaluator.inherit`` mapping; a bad key or value is a :class:`ConfigError` naming it."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"evaluator.inherit = {data!r}: expected a mapping such as {{epochs: 2, keep: 32}}")
        known = ("epochs", "keep", "max_mb")
        for key in data:
            if key not in known:
                raise ConfigError(f"evaluator.inherit.{key}: unknown key" + did_you_mean(str(key), known)
                                  + f"; allowed: {', '.join(known)}")
        epochs = check_int("evaluator.inherit.epochs", data.get("epochs", 1), minimum=1)
        keep = check_int("evaluator.inherit.keep", data.get("keep", 32), minimum=1)
        max_mb = data.get("max_mb")
        if max_mb is not None:
            max_mb = check_number("evaluator.inherit.max_mb", max_mb, low=0.0, finite=True)
        return cls(epochs=epochs, keep=keep, max_mb=max_mb)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "keep": self.keep, "max_mb": self.max_mb}
