"""Search strategies: small ask/tell objects, one module each, reached by name through :func:`get_strategy`.

>>> from search_spaces import get_space
>>> strategy = get_strategy("evolution", space=get_space("nb201"), seed=0)
>>> trials = strategy.ask(4)

A new strategy is one module holding a :class:`Strategy` subclass decorated with :func:`register_strategy`
(import it from :mod:`strategies.registry` inside this package, to avoid an import cycle), imported below;
outside this package, an installed plugin exposing the class in the entry-point group ``nasgraph.strategies``.
"""

from __future__ import annotations

import inspect
from typing import Any

from nas.core.errors import ConfigError, did_you_mean
from nas.trials.protocols import Space
from strategies.base import Strategy, trial_seed
from strategies.bohb import BOHB
from strategies.dedup import Deduplicate
from strategies.evolution import RegularizedEvolution
from strategies.gp_bo import GPBayesOpt
from strategies.oneshot import BetaDartsStrategy, DartsStrategy, GDASStrategy, OneShotStrategy
from strategies.optuna_adapter import OptunaStrategy
from strategies.random import RandomSearch
from strategies.registry import STRATEGIES, list_strategies, register_strategy, strategy_class
from strategies.rl import ReinforceController

__all__ = ["Strategy", "Deduplicate", "get_strategy", "list_strategies", "strategy_class", "register_strategy",
           "STRATEGIES", "trial_seed",
           "RandomSearch", "RegularizedEvolution", "ReinforceController", "OptunaStrategy", "GPBayesOpt",
           "OneShotStrategy", "DartsStrategy", "GDASStrategy", "BetaDartsStrategy", "BOHB"]

for _cls in (RandomSearch, RegularizedEvolution, ReinforceController, OptunaStrategy, GPBayesOpt,
             DartsStrategy, GDASStrategy, BetaDartsStrategy, BOHB):
    register_strategy(_cls)


def _options_of(cls: type) -> list[str]:
    if hasattr(cls, "option_names"):  # strategies taking a settings object's fields as **options
        return list(cls.option_names())
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in names:
                names.append(p.name)
    return names


def get_strategy(name: str, *, space: Space, seed: int = 0, dedup: bool = True, **options: Any) -> Strategy:
    """Build strategy ``name`` for ``space`` seeded with ``seed``. With ``dedup`` (the default) it is wrapped
    in :class:`Deduplicate`, so architectures computing the same function are evaluated once. Unknown names
    and options raise with the known ones and the closest match."""
    cls = STRATEGIES.get(name)
    allowed = [o for o in _options_of(cls) if o not in ("space", "seed")]
    for key in options:
        if key not in allowed:
            raise ConfigError(f"strategy {name!r} has no option {key!r}"
                              + did_you_mean(key, allowed) + f"; its options: {', '.join(allowed)}")
    try:
        strategy = cls(space=space, seed=seed, **options)
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"strategy {name!r}: {err}") from None
    return Deduplicate(strategy) if dedup else strategy
