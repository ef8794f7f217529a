"""Joint architecture + hyperparameter search: training hyperparameters as extra categorical decisions.

``with_hyperparameters(space, {"lr": [0.1, 0.05], "optimizer": ["sgd", "adam"]}, check=...)`` is a space whose
decisions are the space's own followed by one decision per hyperparameter; the chosen values travel inside
the architecture (macro entry ``hparams``), so every strategy searches them with no special code, the
store keeps them, and the ``train`` evaluator applies them. The space knows no training code: ``check``
validates each field and value (the runtime passes ``TrainConfig().replace``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.graph.architecture import Architecture
from search_spaces.base import SearchSpace, SpaceCompiler

__all__ = ["HyperparameterSpace", "with_hyperparameters", "FieldCheck"]

KEY = "hparams"


class FieldCheck(Protocol):
    """Validates searchable training fields: ``check(**{field: value})`` raises :class:`ConfigError` naming the
    field, the value and the fix when ``field`` is unknown or ``value`` invalid (e.g. ``TrainConfig().replace``)."""

    def __call__(self, **changes: Any) -> object: ...


class HyperparameterSpace(SearchSpace):
    """``space`` plus searchable training fields, each value validated by ``check`` (see the module docstring)."""

    def __init__(self, space: SearchSpace, searchable: Mapping[str, Sequence[Any]], *, check: FieldCheck) -> None:
        if not searchable:
            raise ConfigError("searchable hyperparameters: give at least one field with a list of values")
        self.inner = space
        self.searchable: dict[str, tuple[Any, ...]] = {}
        for field, values in searchable.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ConfigError(f"searchable.{field} = {values!r}: give a non-empty list of values")
            values = tuple(tuple(v) if isinstance(v, list) else v for v in values)
            for v in values:
                check(**{field: list(v) if isinstance(v, tuple) else v})  # raises ConfigError if invalid
            if len(set(values)) != len(values):
                raise ConfigError(f"searchable.{field} = {list(values)} repeats a value")
            self.searchable[field] = values
        self.name = space.name  # type: ignore[misc]  # a ClassVar, set per wrapper instance
        self.input_kind = space.input_kind  # type: ignore[misc]  # a ClassVar, set per wrapper

    def options(self) -> dict[str, Any]:
        searchable = {k: [list(v) if isinstance(v, tuple) else v for v in vs] for k, vs in self.searchable.items()}
        return {**self.inner.options(), "searchable": searchable}  # JSON data: list values back to lists

    def decision_sizes(self) -> list[int]:
        return self.inner.decision_sizes() + [len(v) for v in self.searchable.values()]

    def decision_names(self) -> list[str]:
        return self.inner.decision_names() + [f"train.{k}" for k in self.searchable]

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        return self.inner.decision_choices() + [
            [v if isinstance(v, (str, int, float, bool)) else json.dumps(list(v)) for v in values]
            for values in self.searchable.values()]

    def _decode(self, decisions: list[int]) -> Architecture:
        k = len(self.inner.decision_sizes())
        arch = self.inner._decode(decisions[:k])
        chosen = {}
        for (field, values), d in zip(self.searchable.items(), decisions[k:]):
            v = values[d]
            chosen[field] = list(v) if isinstance(v, tuple) else v
        return arch.replace(macro={**arch.macro, KEY: chosen})

    def _encode(self, arch: Architecture) -> list[int]:
        macro = arch.macro
        chosen = macro.pop(KEY, None)
        if not isinstance(chosen, dict):
            raise InvalidArchitectureError("architecture carries no 'hparams' choices for this joint space")
        inner = self.inner._encode(arch.replace(macro=macro))
        extra = []
        for field, values in self.searchable.items():
            v = chosen.get(field)
            extra.append(values.index(tuple(v) if isinstance(v, list) else v))
        return inner + extra

    def compiler(self) -> SpaceCompiler:
        """The inner space's compiler (a builder space's imports its module from the space's folder)."""
        return self.inner.compiler()


def with_hyperparameters(space: SearchSpace, searchable: Mapping[str, Sequence[Any]], *,
                         check: FieldCheck) -> SearchSpace:
    """``space`` with the training fields in ``searchable`` appended as categorical decisions; ``check``
    validates every field and value (see :class:`FieldCheck`)."""
    return HyperparameterSpace(space, searchable, check=check)
