"""The SearchSpace contract, checked for every registered space (new spaces are covered automatically): the
shipped suite :mod:`nas.testing.spaces` run over the registry, plus the checks of the registry itself and
of the built-in spaces' own option rules.

Each space is exercised with the small options below (fast models); a space without an entry runs with
its defaults. The defaults are also compiled once per space.
"""

from __future__ import annotations

from typing import Any

import pytest

from nas.core.errors import ConfigError, UnknownNameError
from nas.testing.spaces import SpaceConformance
from search_spaces import get_space, list_spaces

#: Options that make each space's models tiny. Add an entry for a new space to keep the suite fast.
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "nb201": {"C": 4, "N": 1},
    "darts": {"C": 4, "layers": 3},
    "rnn": {"steps": 3, "num_layers": 2, "d_model": 8},
    "transformer": {"d_model": 8, "num_cells": 1},
    "python": {"kwargs": {"max_depth": 2, "max_width": 16}},
    "mlp": {"max_depth": 2, "max_width": 16},
    "cell": {"C": 4, "N": 1, "nodes": 2},
    "gan": {"C": 4, "latent_dim": 8},
}
SPACES = list_spaces()


class TestEveryRegisteredSpace(SpaceConformance):
    """The shipped suite, for every registered space."""

    def names(self) -> list[str]:
        return SPACES

    def options_for(self, name: str) -> dict[str, Any]:
        return SMALL_OPTIONS.get(name, {})


def test_small_options_cover_known_spaces() -> None:
    assert {"nb201", "darts", "rnn", "transformer"} <= set(SPACES)
    assert set(SMALL_OPTIONS) <= set(SPACES)


def test_unknown_space_suggests_a_close_match() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown search space 'nb20'.*did you mean 'nb201'") as info:
        get_space("nb20")
    assert info.value.hint == "nb201"
    assert all(name in str(info.value) for name in SPACES)


@pytest.mark.parametrize(("name", "options", "match"), [
    ("darts", {"layers": 2}, r"darts option layers = 2: must be an integer in 3\.\.256"),
    ("rnn", {"d_model": 7}, r"rnn option d_model = 7: bidirectional layers need an even width"),
    ("rnn", {"pool": "max"}, r"rnn option pool = 'max': expected 'mean' or 'last'"),
    ("transformer", {"d_model": 6}, r"transformer option d_model = 6: must be divisible by every head count"),
    ("transformer", {"pool": "first"}, r"transformer option pool = 'first'"),
    ("transformer", {"nodes": 1}, r"transformer option nodes = 1: must be an integer in 2\.\.32"),
    ("transformer", {"ops": ["skip_connect", "pe_learned"]}, r"'pe_learned' is not one of"),
])
def test_space_specific_bad_options(name: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_space(name, **options)
