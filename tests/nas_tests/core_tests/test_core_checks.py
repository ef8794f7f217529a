"""nas.core.checks: each check's contract and its exact messages (other modules' messages are built by these)."""

from __future__ import annotations

import math
import re
from contextlib import AbstractContextManager
from typing import Any

import pytest

from nas.core.checks import check_choice, check_choices, check_int, check_number, is_int, is_number
from nas.core.errors import ConfigError


def _raises(text: str) -> AbstractContextManager[Any]:
    """Expect a ConfigError whose message is exactly ``text``."""
    return pytest.raises(ConfigError, match="^" + re.escape(text) + "$")


def test_type_tests_refuse_bools() -> None:
    assert is_int(0) and is_int(-3) and not is_int(True) and not is_int(2.0) and not is_int("2")
    assert is_number(1) and is_number(0.5) and is_number(math.nan) and not is_number(False)
    assert not is_number("1") and not is_number(None)


def test_check_int_returns_valid_values() -> None:
    assert check_int("train.epochs", 3, minimum=1) == 3
    assert check_int("strategy.options.order", 2, minimum=1, maximum=2) == 2
    assert check_int("strategy random seed", -5) == -5


@pytest.mark.parametrize("value, kwargs, message", [
    (0, {"minimum": 1}, "train.epochs = 0: must be an integer >= 1"),
    (True, {"minimum": 0}, "train.epochs = True: must be an integer >= 0"),
    (2.0, {"minimum": 1}, "train.epochs = 2.0: must be an integer >= 1"),
    ("3", {"minimum": 1}, "train.epochs = '3': must be an integer >= 1"),
    (3, {"minimum": 1, "maximum": 2}, "train.epochs = 3: must be an integer in 1..2"),
    (9, {"maximum": 5}, "train.epochs = 9: must be an integer <= 5"),
    (None, {}, "train.epochs = None: must be an integer"),
])
def test_check_int_messages(value: object, kwargs: dict, message: str) -> None:
    with _raises(message):
        check_int("train.epochs", value, **kwargs)


def test_check_int_keeps_the_space_and_strategy_message_shapes() -> None:
    with _raises("nb201 option C = 0: must be an integer >= 1"):
        check_int("nb201 option C", 0, minimum=1)
    with _raises("strategy evolution option population = 1: must be an integer >= 2"):
        check_int("strategy evolution option population", 1, minimum=2)


def test_check_number_returns_a_float() -> None:
    out = check_number("strategy rl option lr", 1, low=1e-6, high=1.0)
    assert out == 1.0 and type(out) is float
    assert check_number("x", math.inf) == math.inf
    assert math.isnan(check_number("x", math.nan))


@pytest.mark.parametrize("value, kwargs, message", [
    (1.5, {"low": 0.0, "high": 1.0}, "f = 1.5: must be a number in [0.0, 1.0]"),
    (-1, {"low": 0.0, "high": math.inf}, "f = -1: must be a number in [0.0, inf]"),
    (math.nan, {"low": 0.0, "high": 1.0}, "f = nan: must be a number in [0.0, 1.0]"),
    (True, {"low": 0.0, "high": 1.0}, "f = True: must be a number in [0.0, 1.0]"),
    ("0.5", {"low": 0.0, "high": 1.0}, "f = '0.5': must be a number in [0.0, 1.0]"),
    (-0.1, {"low": 0, "finite": True}, "f = -0.1: must be a finite number >= 0"),
    (math.inf, {"low": 0, "finite": True}, "f = inf: must be a finite number >= 0"),
    (math.nan, {"finite": True}, "f = nan: must be a finite number"),
    (2, {"high": 1}, "f = 2: must be a number <= 1"),
    (0, {"above": 0}, "f = 0: must be a number > 0"),
    (0.0, {"above": 0, "high": 1}, "f = 0.0: must be a number in (0, 1]"),
    (math.nan, {"above": 0, "finite": True}, "f = nan: must be a finite number > 0"),
])
def test_check_number_messages(value: object, kwargs: dict, message: str) -> None:
    with _raises(message):
        check_number("f", value, **kwargs)


def test_check_choice() -> None:
    assert check_choice("train.optimizer", "adam", ("sgd", "adam")) == "adam"
    with _raises("train.optimizer = 'adamm': choose from sgd, adam, adamw (did you mean 'adam'?)"):
        check_choice("train.optimizer", "adamm", ("sgd", "adam", "adamw"))
    with _raises("train.schedule = 'zzz': choose from constant, cosine"):
        check_choice("train.schedule", "zzz", ("constant", "cosine"))


def test_check_choices() -> None:
    known = ("none", "skip_connect", "conv_3x3")
    assert check_choices("nb201 option ops", ["none", "conv_3x3"], known) == ("none", "conv_3x3")
    with _raises("nb201 option ops is empty; choose from none, skip_connect, conv_3x3"):
        check_choices("nb201 option ops", [], known)
    with _raises("nb201 option ops: 'conv_3x4' is not one of none, skip_connect, conv_3x3 (did you mean 'conv_3x3'?)"):
        check_choices("nb201 option ops", ["none", "conv_3x4"], known)
    with _raises("nb201 option ops = ['none', 'none'] repeats a name"):
        check_choices("nb201 option ops", ("none", "none"), known)
