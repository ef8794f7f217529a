"""Conformance suites a plugin author runs from their own pytest (as optuna ships ``optuna.testing``).

* :class:`nas.testing.strategies.StrategyConformance`: the :class:`~strategies.Strategy` contract (ask/tell,
  failed and out-of-order results, seeded determinism, exact ``state_dict`` resumption, option errors,
  de-duplication, at least as good as random search on a toy objective with a known optimum).
* :class:`nas.testing.spaces.SpaceConformance`: the :class:`~search_spaces.SearchSpace` contract (seeded
  sampling, compiling and training members, JSON, mutation, neighbourhoods, encode/decode, membership,
  option errors).

Subclass one in a test module and name what is under test::

    from nas.testing.strategies import StrategyConformance

    class TestHillClimb(StrategyConformance):
        strategy = "hill_climb"  # its registered name (a plugin: its entry point's name)

These modules import pytest; the library never imports them.
"""
