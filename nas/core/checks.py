"""Checks of user options: integers, numbers in a range, names from a list.

Each ``check_*`` takes the *field* as the user wrote it (``"train.epochs"``, ``"nb201 option C"``,
``"strategy evolution option population"``, ``"strategy.options.order"``), returns the value when it is valid
and otherwise raises :class:`~nas.core.errors.ConfigError` shaped ``"<field> = <value!r>: must be ..."`` (the
shape ``nas.runtime.config`` rewrites into dotted config paths). ``is_int`` / ``is_number`` are the type tests
behind them, for checks that raise another error or word their message otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

from nas.core.errors import ConfigError, did_you_mean

__all__ = ["is_int", "is_number", "check_int", "check_number", "check_choice", "check_choices"]

T = TypeVar("T")


def is_int(value: Any) -> bool:
    """True for an integer (``bool`` is not one, although Python makes it a subclass of ``int``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for an ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(field: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an integer within ``minimum``..``maximum`` (each optional, inclusive); otherwise
    :class:`ConfigError` ``"<field> = <value>: must be an integer >= <minimum>"`` (or ``"in <min>..<max>"``,
    ``"<= <maximum>"``, or just ``"an integer"``)."""
    if (not is_int(value) or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)):
        raise ConfigError(f"{field} = {value!r}: must be an integer{_span(minimum, maximum, '{}..{}')}")
    return value


def check_number(field: str, value: Any, *, low: float | None = None, high: float | None = None,
                 finite: bool = False, above: float | None = None) -> float:
    """``float(value)`` if ``value`` is a number within ``[low, high]`` (each optional, inclusive), greater than
    ``above`` (optional, exclusive: ``above=0`` for a positive number) and, with ``finite``, neither NaN nor
    infinite; otherwise :class:`ConfigError` ``"<field> = <value>: must be a number in [<low>, <high>]"`` (or
    ``">= <low>"``, ``"<= <high>"``, ``"> <above>"``, ``"in (<above>, <high>]"``; ``"a finite number"`` with
    ``finite``). NaN is refused whenever a bound is given."""
    if (not is_number(value) or (finite and not math.isfinite(value)) or (low is not None and not value >= low)
            or (high is not None and not value <= high) or (above is not None and not value > above)):
        what = "a finite number" if finite else "a number"
        if above is None:
            span = _span(low, high, "[{}, {}]")
        else:
            span = f" in ({above}, {high}]" if high is not None else f" > {above}"
        raise ConfigError(f"{field} = {value!r}: must be {what}{span}")
    return float(value)


def check_choice(field: str, value: T, choices: Sequence[T]) -> T:
    """``value`` if it is one of ``choices``; otherwise :class:`ConfigError` ``"<field> = <value>: choose from
    a, b, c"`` with the closest choice as a hint."""
    if value not in choices:
        raise ConfigError(f"{field} = {value!r}: choose from {', '.join(map(str, choices))}"
                          + did_you_mean(value, map(str, choices)))
    return value


def check_choices(field: str, values: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``values`` as a tuple if it is a non-empty list of distinct names from ``known``; otherwise
    :class:`ConfigError` saying it is empty, which name is not known (with the closest as a hint), or that a
    name repeats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not all(
            isinstance(v, str) for v in values):
        raise ConfigError(f"{field} = {values!r}: give a list of names from {', '.join(known)}")
    values = tuple(values)
    if not values:
        raise ConfigError(f"{field} is empty; choose from {', '.join(known)}")
    for v in values:
        if v not in known:
            raise ConfigError(f"{field}: {v!r} is not one of {', '.join(known)}{did_you_mean(v, known)}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{field} = {list(values)} repeats a name")
    return values


def _span(low: float | None, high: float | None, both: str) -> str:
    """The range part of a message: ``" >= low"``, ``" <= high"``, ``" " + both`` formatted, or ``""``."""
    if low is not None and high is not None:
        return " in " + both.format(low, high)
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""
