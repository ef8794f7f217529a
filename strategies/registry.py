"""The strategy registry: names -> :class:`~strategies.base.Strategy` classes, built-ins and plugins.

It imports no strategy module, so a strategy module (in this package or outside it) can register itself
with ``@register_strategy`` without an import cycle. Installed plugins are found through the entry-point
group ``nasgraph.strategies``: ``hill_climb = my_package:HillClimb`` makes ``strategy: {name: hill_climb}``
usable in a config, and ``nas strategies`` lists it.
"""

from __future__ import annotations

from typing import TypeVar

from nas.core.registry import Registry, register_named, subclass_check
from strategies.base import Strategy

__all__ = ["STRATEGIES", "register_strategy", "strategy_class", "list_strategies"]

S = TypeVar("S", bound=type[Strategy])

STRATEGIES: Registry[type[Strategy]] = Registry("strategy", group="nasgraph.strategies",
                                                 check=subclass_check(Strategy, "strategies.Strategy"))


def register_strategy(cls: S) -> S:
    """Register a :class:`Strategy` subclass under its class attribute ``name``; usable as a class decorator
    (it returns the class unchanged). Names are unique; the class must implement the abstract methods."""
    return register_named(STRATEGIES, cls, "register_strategy")


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name`` (unknown names raise :class:`UnknownNameError` with the closest)."""
    return STRATEGIES.get(name)


def list_strategies() -> list[str]:
    """Names of the built-in strategies, then of the installed plugin strategies."""
    return STRATEGIES.names()
