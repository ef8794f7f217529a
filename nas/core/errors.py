"""The framework's error hierarchy.

Every error says which invariant was broken, the value that broke it and, where there is one, the fix.
Callers (the CLI above all) catch :class:`NASError` to turn user mistakes into exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "NASError",
    "InvalidArchitectureError",
    "UnknownNameError",
    "ShapeError",
    "ConfigError",
    "closest",
    "did_you_mean",
]


class NASError(Exception):
    """Base class of every error this framework raises on purpose."""


class InvalidArchitectureError(NASError, ValueError):
    """An architecture (or its JSON) is malformed, or does not belong where it was used."""


class UnknownNameError(NASError, LookupError):
    """A name (op, space, strategy, reference, ...) that no registry knows."""

    def __init__(self, kind: str, name: object, known: Iterable[str]) -> None:
        known = sorted(known)
        hint = closest(str(name), known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}{did_you_mean(name, known)}")
        self.kind = kind
        self.name = name
        self.known = known
        self.hint = hint

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return self.args[0]


class ShapeError(NASError, ValueError):
    """An input shape that the model or space cannot take."""


class ConfigError(NASError, ValueError):
    """A bad option or configuration value (names the field, the value and the fix)."""


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``, or None when none is close."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(value: object, known: Iterable[str]) -> str:
    """The hint appended to a message about an unknown ``value``: ``" (did you mean 'x'?)"`` naming the known
    name closest to ``str(value)``, or ``""`` when none is close."""
    hint = closest(str(value), known)
    return f" (did you mean {hint!r}?)" if hint else ""
