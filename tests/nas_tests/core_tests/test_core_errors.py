"""nas.core.errors: the one "did you mean" hint, and the error that uses it."""

from __future__ import annotations

import pytest

from nas.core.errors import UnknownNameError, closest, did_you_mean


def test_the_hint_names_the_closest_known_name() -> None:
    assert did_you_mean("evoluton", ["random", "evolution", "rl"]) == " (did you mean 'evolution'?)"
    assert did_you_mean("cosin", ("constant", "cosine", "step")) == " (did you mean 'cosine'?)"


def test_no_hint_when_nothing_is_close() -> None:
    assert did_you_mean("zzz", ["random", "evolution"]) == ""
    assert did_you_mean("anything", []) == ""


def test_values_that_are_not_strings_are_compared_as_text() -> None:
    assert did_you_mean(1234, ["1235", "abc"]) == " (did you mean '1235'?)"
    assert did_you_mean(None, ["random"]) == ""


def test_the_hint_accepts_any_iterable_of_names() -> None:
    assert did_you_mean("lrr", {"lr": 1, "epochs": 2}) == " (did you mean 'lr'?)"
    assert did_you_mean("sgdd", (n for n in ["sgd", "adam"])) == " (did you mean 'sgd'?)"


def test_unknown_name_error_lists_the_known_names_and_the_hint() -> None:
    with pytest.raises(UnknownNameError) as info:
        raise UnknownNameError("search space", "nb20", ["nb201", "darts"])
    assert str(info.value) == "unknown search space 'nb20'; known: darts, nb201 (did you mean 'nb201'?)"
    assert info.value.hint == "nb201" == closest("nb20", ["darts", "nb201"])
    assert str(UnknownNameError("op", "qqq", ["skip"])) == "unknown op 'qqq'; known: skip"
