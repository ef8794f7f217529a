"""The search-space registry: names -> :class:`~search_spaces.base.SearchSpace` classes, built-ins and plugins.

It imports no space module, so a space module (in this package or outside it) can register itself with
``@register_space`` without an import cycle. Installed plugins are found through the entry-point group
``nasgraph.spaces`` (``my_space = my_package:MySpace``).
"""

from __future__ import annotations

from typing import TypeVar

from nas.core.registry import Registry, register_named, subclass_check
from search_spaces.base import SearchSpace

__all__ = ["SPACES", "register_space", "space_class", "list_spaces"]

S = TypeVar("S", bound=type[SearchSpace])

SPACES: Registry[type[SearchSpace]] = Registry("search space", group="nasgraph.spaces",
                                                 check=subclass_check(SearchSpace, "search_spaces.SearchSpace"))


def register_space(cls: S) -> S:
    """Register a :class:`SearchSpace` subclass under its class attribute ``name``; usable as a class
    decorator (it returns the class unchanged). Names are unique; the class must implement the abstract
    methods."""
    return register_named(SPACES, cls, "register_space")


def space_class(name: str) -> type[SearchSpace]:
    """The class registered as ``name`` (unknown names raise :class:`UnknownNameError` with the closest)."""
    return SPACES.get(name)


def list_spaces() -> list[str]:
    """Names of the built-in spaces, then of the installed plugin spaces."""
    return SPACES.names()
