"""Evolution's ``mutation: {prefer: growth}``: every mutated child differs from its parent by a growth a network
morphism starts at the parent's function (none -> conv, conv1x1 -> conv3x3, skip or pool -> conv), until a member
has none left; bad values are ConfigErrors naming the option."""

from __future__ import annotations

from typing import Any

import pytest

from nas.core.errors import ConfigError
from nas.graph.inherit import grows
from nas.trials.trial import Result, Status
from search_spaces import get_space
from strategies import get_strategy

NB201 = get_space("nb201", C=4, N=1)


def test_growth_children_only_grow() -> None:
    strategy = get_strategy("evolution", space=NB201, seed=3, population=4, sample_size=2, dedup=False,
                            mutation={"prefer": "growth"})
    archs: dict[int, Any] = {}
    grown = 0
    for step in range(40):
        trial, = strategy.ask(1)
        archs[trial.id] = trial.arch
        if trial.parent is not None:
            before = dict(((s, d), op) for s, d, op in archs[trial.parent].cell("cell").edges)
            changed = [(before[(s, d)], op) for s, d, op in trial.arch.cell("cell").edges if before[(s, d)] != op]
            assert changed
            if any(old != "nor_conv_3x3" for old in before.values()):  # a growth was possible: it was taken
                assert all(grows(old, new) for old, new in changed), changed
                grown += 1
        strategy.tell(trial, Result(Status.COMPLETE, score=float(step % 7)))
    assert grown >= 20


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("none", "nor_conv_3x3", True), ("nor_conv_1x1", "nor_conv_3x3", True), ("skip_connect", "nor_conv_1x1", True),
    ("avg_pool_3x3", "nor_conv_3x3", True), ("nor_conv_3x3", "nor_conv_1x1", False), ("nor_conv_3x3", "none", False),
    ("none", "skip_connect", False), ("skip_connect", "avg_pool_3x3", False), ("none", "sep_conv_3x3", True)])
def test_which_changes_grow(old: str, new: str, expected: bool) -> None:
    assert grows(old, new) is expected


@pytest.mark.parametrize(("mutation", "words"), [({"prefer": "grow"}, "mutation.prefer = 'grow': choose from"),
                                                 ("growth", "mutation = 'growth': expected a mapping"),
                                                 ({"prefer": "growth", "p": 1}, "expected a mapping with the one key")])
def test_bad_mutation_option(mutation: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        get_strategy("evolution", space=NB201, population=4, sample_size=2, mutation=mutation)
