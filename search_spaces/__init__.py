"""Search spaces, one module each, reached by name through :func:`get_space`.

>>> space = get_space("nb201")
>>> space.size()
15625

A new space is one module holding a :class:`SearchSpace` subclass decorated with :func:`register_space`
(import it from :mod:`search_spaces.registry` inside this package, to avoid an import cycle), imported below;
outside this package, an installed plugin exposing the class in the entry-point group ``nasgraph.spaces``.
"""

from __future__ import annotations

import inspect
from typing import Any

from nas.core.errors import ConfigError, did_you_mean
from search_spaces.base import SearchSpace
from search_spaces.cell import CellSpace
from search_spaces.darts import DartsSpace
from search_spaces.gan import GanSpace
from search_spaces.nb201 import NB201Space
from search_spaces.python import MLPSpace, PythonSpace
from search_spaces.registry import SPACES, list_spaces, register_space, space_class
from search_spaces.rnn import RNNSpace
from search_spaces.transformer import TransformerSpace

__all__ = ["SearchSpace", "get_space", "list_spaces", "register_space", "space_class", "SPACES", "NB201Space",
           "DartsSpace", "RNNSpace", "TransformerSpace", "PythonSpace", "MLPSpace", "CellSpace",
           "GanSpace"]

for _cls in (NB201Space, DartsSpace, RNNSpace, TransformerSpace, PythonSpace, MLPSpace, CellSpace, GanSpace):
    register_space(_cls)


def get_space(name: str, **options: Any) -> SearchSpace:
    """Build the space ``name`` with keyword ``options``. Unknown names and options raise errors that list
    what is known and the closest match."""
    cls = SPACES.get(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in params:
            raise ConfigError(
                f"space {name!r} has no option {key!r}"
                + did_you_mean(key, params)
                + f"; its options: {', '.join(params)}"
            )
    return cls(**options)
