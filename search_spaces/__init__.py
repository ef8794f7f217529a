"""Search spaces, one module each, reached by name through :func:`get_space`.

>>> space = get_space("nb201")
>>> space.size()
15625
"""

from __future__ import annotations

import inspect
from typing import Any

from nas.core.errors import ConfigError, did_you_mean
from nas.core.registry import Registry
from search_spaces.base import SearchSpace
from search_spaces.darts import DartsSpace
from search_spaces.nb201 import NB201Space
from search_spaces.rnn import RNNSpace
from search_spaces.transformer import TransformerSpace

__all__ = ["SearchSpace", "get_space", "list_spaces", "register_space", "NB201Space", "DartsSpace", "RNNSpace",
           "TransformerSpace"]

_SPACES: Registry[type[SearchSpace]] = Registry("search space")


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Register a :class:`SearchSpace` subclass under its ``name`` (usable as a class decorator)."""
    _SPACES.register(cls.name, cls)
    return cls


for _cls in (NB201Space, DartsSpace, RNNSpace, TransformerSpace):
    register_space(_cls)


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return _SPACES.names()


def get_space(name: str, **options: Any) -> SearchSpace:
    """Build the space ``name`` with keyword ``options``. Unknown names and options raise errors that list
    what is known and the closest match."""
    cls = _SPACES.get(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in params:
            raise ConfigError(
                f"space {name!r} has no option {key!r}"
                + did_you_mean(key, params)
                + f"; its options: {', '.join(params)}"
            )
    return cls(**options)
