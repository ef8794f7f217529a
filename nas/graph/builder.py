"""Define-by-run model spaces: a plain PyTorch function that asks for its decisions while it builds the model.

A *builder* is a function ``build(c, input_shape, num_classes) -> torch.nn.Module`` (``input_shape`` without the
batch dimension, ``num_classes`` the number of outputs) that calls ``c`` wherever the model has a decision::

    def build(c, input_shape, num_classes):
        layers, width = [], input_shape[0]
        for i in range(c.int("depth", 1, 3)):
            out = c.choice(f"width_{i}", [16, 32, 64])       # asked only when the depth reaches layer i
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        return nn.Sequential(*layers, nn.Linear(width, num_classes))

``c`` is a :class:`Choices`:

* ``c.choice(name, options)``: one of ``options`` (JSON scalars: ``str``, ``int``, ``float``, ``bool``, ``None``;
  name a layer type by a string and map it in the builder);
* ``c.int(name, low, high, *, step=1, log=False, num=8)``: an integer of ``low..high`` (inclusive) on the grid
  ``low, low + step, ...``; with ``log`` on ``num`` points spaced geometrically;
* ``c.float(name, low, high, *, log=False, num=8)``: a float of ``[low, high]`` on ``num`` evenly (or, with
  ``log``, geometrically) spaced points;
* ``c.bool(name)``: ``False`` or ``True``.

Every strategy here searches categorical decisions, so ranges are grids (their points are the options).
A name asked twice is one decision (the same value comes back) and must come with the same options each time.

The decisions are *discovered* by running the builder (:func:`discover`) on the ``meta`` device (nothing is
allocated; a builder that cannot run there runs on the CPU), first with every decision at its first option and
then changing one decision at a time from every run that revealed a decision not seen before, so decisions asked
only under some choices (a per-layer width under a depth) are found. What a builder asks must not depend on
``input_shape`` or ``num_classes`` beyond what the discovery shape shows.

A builder architecture is plain data: ``Architecture(space=..., cells={}, macro={"builder": "module:function",
"decisions": {name: value, ...}})``; ``macro["inactive"]`` may list decisions that the chosen values leave unasked
(they keep a value so decisions encode one to one, and :meth:`~nas.graph.architecture.Architecture.canonical_hash`
ignores them); ``macro["kwargs"]`` (optional) holds keyword arguments the builder is called with. :func:`build_module`
compiles one; a builder that asks nothing is a fixed model
(``decisions: {}``). The module of the builder must be importable wherever the model is built (Ray workers,
export checks): on ``sys.path``, or in a folder named by ``paths`` (see :func:`resolve_builder`).
"""

from __future__ import annotations

import builtins
import functools
import inspect
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.core.references import import_reference
from nas.core.references import user_error_line as _user_error_line
from nas.graph.architecture import BUILDER_KEY, DECISIONS_KEY, INACTIVE_KEY, KWARGS_KEY, Architecture

__all__ = ["ModelBuilder", "Choices", "Decision", "Discovery", "BUILDER_KEY", "DECISIONS_KEY", "INACTIVE_KEY",
           "resolve_builder", "discover", "build_module", "builder_architecture", "is_builder_architecture",
           "user_error_line"]

#: most points of an integer range (a larger range needs a step or ``log``)
MAX_GRID = 1024
#: most builder runs of one discovery
MAX_RUNS = 5000

Scalar = str | int | float | bool | None


class ModelBuilder(Protocol):
    """``build(c, input_shape, num_classes) -> nn.Module``: asks ``c`` (a :class:`Choices`) for its decisions."""

    def __call__(self, c: Choices, input_shape: tuple[int, ...], num_classes: int) -> nn.Module: ...


@dataclass(frozen=True)
class Decision:
    """One decision of a builder: its name, its options (JSON scalars) and how it was asked (``choice``, ``int``,
    ``float`` or ``bool``)."""

    name: str
    options: tuple[Scalar, ...]
    kind: str = "choice"


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _index(options: Sequence[Scalar], value: Any) -> int:
    """Position of ``value`` in ``options`` (type-exact: ``1``, ``1.0`` and ``True`` differ); -1 if absent."""
    for i, option in enumerate(options):
        if _same(option, value):
            return i
    return -1


def _round(value: float) -> float:
    return float(f"{value:.6g}")


class Choices:
    """What a builder asks its decisions of (see the module docstring).

    ``values`` fixes decisions by name. With ``strict`` (building a member), every decision asked must be in
    ``values`` with one of its options; otherwise (discovery) an unfixed decision takes its first option. Every
    decision asked is recorded in :attr:`asked` (in order) and its value in :attr:`used`; one asked with options
    other than those ``known`` for its name is refused.
    """

    def __init__(self, values: Mapping[str, Any] | None = None, *, strict: builtins.bool = False,
                 known: Mapping[str, Decision] | None = None) -> None:
        self._values = dict(values or {})
        self._strict = strict
        self._known = known or {}
        self.asked: dict[str, Decision] = {}
        self.used: dict[str, Scalar] = {}

    # -- the builder's API ---------------------------------------------------------------------------
    def choice(self, name: str, options: Sequence[Any]) -> Any:
        """One of ``options`` (a non-empty list of distinct JSON scalars)."""
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
            raise ConfigError(f"decision {name!r}: options = {options!r} must be a list of values, e.g. [16, 32]")
        opts = tuple(options)
        for value in opts:
            if not (value is None or isinstance(value, (str, int, float, bool))) or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(
                    f"decision {name!r}: option {value!r} ({type(value).__name__}) is not a JSON scalar; options must "
                    "be strings, numbers, booleans or None (name a layer type by a string and map it in the builder)")
        return self._ask(name, opts, "choice")

    def int(self, name: str, low: builtins.int, high: builtins.int, *, step: builtins.int = 1,
            log: builtins.bool = False, num: builtins.int = 8) -> builtins.int:
        """An integer of ``low..high`` on the grid of ``step`` (or, with ``log``, ``num`` geometric points)."""
        for field, v in (("low", low), ("high", high), ("step", step), ("num", num)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"decision {name!r}: {field} = {v!r} must be an integer")
        if high < low:
            raise ConfigError(f"decision {name!r}: high = {high} is below low = {low}; give low <= high")
        if step < 1:
            raise ConfigError(f"decision {name!r}: step = {step} must be >= 1")
        if log:
            if low < 1 or step != 1:
                raise ConfigError(f"decision {name!r}: a log range needs low >= 1 and no step (low = {low}, "
                                  f"step = {step})")
            n = max(2, min(num, high - low + 1))
            opts: list[builtins.int] = sorted({round(low * (high / low) ** (i / (n - 1))) for i in range(n)})
        else:
            count = (high - low) // step + 1
            if count > MAX_GRID:
                raise ConfigError(f"decision {name!r}: {low}..{high} with step {step} has {count} values (more than "
                                  f"{MAX_GRID}); give a larger step or log=True")
            opts = list(range(low, high + 1, step))
        return int(self._ask(name, tuple(opts), "int"))

    def float(self, name: str, low: builtins.float, high: builtins.float, *, log: builtins.bool = False,
              num: builtins.int = 8) -> builtins.float:
        """A float of ``[low, high]`` on ``num`` evenly (or, with ``log``, geometrically) spaced points."""
        for field, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"decision {name!r}: {field} = {v!r} must be a finite number")
        if isinstance(num, bool) or not isinstance(num, int) or num < 2:
            raise ConfigError(f"decision {name!r}: num = {num!r} must be an integer >= 2")
        if not high > low:
            raise ConfigError(f"decision {name!r}: high = {high} must be above low = {low}")
        if log and low <= 0:
            raise ConfigError(f"decision {name!r}: a log range needs low > 0, got {low}")
        if log:
            points = [low * (high / low) ** (i / (num - 1)) for i in range(num)]
        else:
            points = [low + (high - low) * i / (num - 1) for i in range(num)]
        opts = tuple(dict.fromkeys(_round(p) for p in points))
        return float(self._ask(name, opts, "float"))

    def bool(self, name: str) -> builtins.bool:
        """``False`` or ``True``."""
        return bool(self._ask(name, (False, True), "bool"))

    # -- recording -------------------------------------------------------------------------------------
    def _ask(self, name: str, options: tuple[Scalar, ...], kind: str) -> Any:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a decision name must be a non-empty string, got {name!r}")
        if not options:
            raise ConfigError(f"decision {name!r} has no options; give at least one")
        if len({(type(o), o) for o in options}) != len(options):
            raise ConfigError(f"decision {name!r}: options {list(options)} repeat a value; list each once")
        seen = self.asked.get(name)
        if seen is not None and seen.options != options:
            raise ConfigError(
                f"decision {name!r} is asked twice with different options ({list(seen.options)} and {list(options)});"
                " one name is one decision: give the second one another name")
        before = self._known.get(name)
        if before is not None and before.options != options:
            raise ConfigError(
                f"decision {name!r} is asked with different options ({list(before.options)} and {list(options)}) "
                "under different choices; one name is one decision: give them different names")
        self.asked[name] = Decision(name, options, kind)
        if name in self._values:
            value = self._values[name]
            i = _index(options, value)
            if i < 0:
                raise InvalidArchitectureError(
                    f"decision {name!r} = {value!r} is not one of its options {list(options)}")
        elif self._strict:
            raise InvalidArchitectureError(
                f"the builder asks decision {name!r}, which the architecture does not set (it sets "
                f"{sorted(self._values)}); was it built by another version of the builder?")
        else:
            i = 0
        self.used[name] = options[i]
        return options[i]


# -- resolving and running builders --------------------------------------------------------------------
def resolve_builder(ref: str, paths: Iterable[str] = ()) -> Callable[..., Any]:
    """The function named by ``"package.module:function"``, imported by
    :func:`nas.core.references.import_reference` with the folders of ``paths`` in front of ``sys.path``, so a
    module next to a config file imports. Raises :class:`ConfigError` naming the reference, what went wrong and the
    fix (a module that raises on import shows the line), also when the function cannot take
    ``(c, input_shape, num_classes)``."""
    fn = import_reference(ref, field="builder", folders=paths, expect="a function build(c, input_shape, num_classes)")
    try:
        inspect.signature(fn).bind(Choices(), (1,), 1)
    except TypeError as err:
        raise ConfigError(f"builder = {ref!r} must take (c, input_shape, num_classes): {err}") from None
    except ValueError:  # no signature (a builtin): calling it tells
        pass
    return fn


def user_error_line(err: BaseException) -> str:
    """``Type: message (at file.py:LINE in function: source line)``, for the innermost frame of the traceback that
    is not in torch or this framework: the user's line that raised."""
    return _user_error_line(err, skip_dirs=(os.path.dirname(torch.__file__),))


def _run(fn: Callable[..., Any], ref: str, choices: Choices, input_shape: tuple[int, ...], num_classes: int,
         device: str | None) -> nn.Module:
    try:
        if device is None:
            model = fn(choices, input_shape, num_classes)
        else:
            with torch.device(device):
                model = fn(choices, input_shape, num_classes)
    except (ConfigError, InvalidArchitectureError):
        raise
    except Exception as err:
        raise _BuilderRaisedError(err) from err
    if not isinstance(model, nn.Module):
        raise ConfigError(f"builder {ref!r} returned an object of type {type(model).__name__}, not a torch.nn.Module; "
                          "return the model it built")
    return model


class _BuilderRaisedError(Exception):
    def __init__(self, err: Exception) -> None:
        super().__init__(str(err))
        self.err = err


@dataclass(frozen=True)
class Discovery:
    """The decisions of a builder in the order first asked, the number of builder runs it took and the device it
    ran on (``"meta"``, or None: the default device, for a builder that cannot run on the meta device)."""

    decisions: tuple[Decision, ...]
    runs: int
    device: str | None = "meta"


def discover(fn: Callable[..., Any], ref: str, input_shape: Sequence[int], num_classes: int, *,
             max_runs: int = MAX_RUNS) -> Discovery:
    """Run ``fn`` to find every decision it asks (see the module docstring); :class:`ConfigError` when it raises
    (with the user's line), returns no module, misuses a decision, or needs more than ``max_runs`` runs."""
    shape = tuple(int(s) for s in input_shape)
    device: str | None = "meta"
    try:
        first = Choices()
        _run(fn, ref, first, shape, num_classes, device)
    except _BuilderRaisedError:
        device = None  # the builder cannot run on the meta device (it computes on data): run it on the CPU
        first = Choices()
        try:
            _run(fn, ref, first, shape, num_classes, device)
        except _BuilderRaisedError as again:
            raise ConfigError(f"builder {ref!r} raised {user_error_line(again.err)}") from None
    known: dict[str, Decision] = dict(first.asked)
    seen = {tuple(sorted((k, repr(v)) for k, v in first.used.items()))}
    queue = [dict(first.used)]
    runs = 1
    while queue:
        base = queue.pop(0)
        for name in list(base):
            for value in known[name].options:
                if _same(value, base[name]):
                    continue
                runs += 1
                if runs > max_runs:
                    raise ConfigError(f"builder {ref!r}: discovering its decisions took more than {max_runs} runs; "
                                      "ask fewer conditional decisions")
                c = Choices({**base, name: value}, known=known)
                try:
                    _run(fn, ref, c, shape, num_classes, device)
                except _BuilderRaisedError as err:
                    raise ConfigError(f"builder {ref!r} raised {user_error_line(err.err)} with decisions "
                                      f"{ {**base, name: value} }") from None
                key = tuple(sorted((k, repr(v)) for k, v in c.used.items()))
                if key in seen:
                    continue
                seen.add(key)
                fresh = False
                for n, d in c.asked.items():
                    if n not in known:
                        known[n] = d
                        fresh = True
                    elif known[n].options != d.options:
                        raise ConfigError(
                            f"decision {n!r} is asked with different options ({list(known[n].options)} and "
                            f"{list(d.options)}) under different choices; one name is one decision: give them "
                            "different names")
                if fresh:
                    queue.append(dict(c.used))
    return Discovery(tuple(known.values()), runs, device)


def is_builder_architecture(macro: Mapping[str, Any]) -> bool:
    """True when the macro settings are those of a builder architecture (they name a ``builder``)."""
    return BUILDER_KEY in macro


def builder_architecture(space: str, ref: str, decisions: Mapping[str, Any],
                         inactive: Iterable[str] = (), **extra: Any) -> Architecture:
    """The :class:`~nas.graph.architecture.Architecture` of builder ``ref`` with ``decisions`` (``inactive``:
    names the chosen values leave unasked; ``extra``: further macro settings, e.g. ``hparams``)."""
    macro: dict[str, Any] = {BUILDER_KEY: ref, DECISIONS_KEY: dict(decisions), **extra}
    inactive = sorted(inactive)
    if inactive:
        macro[INACTIVE_KEY] = inactive
    return Architecture(space=space, cells={}, macro=macro)


def build_module(arch: Architecture, input_shape: Sequence[int], num_classes: int,
                 paths: Iterable[str] = ()) -> nn.Module:
    """Compile a builder architecture (``macro = {"builder": "module:function", "decisions": {...}}``) into a fresh
    ``nn.Module`` by calling the builder with the architecture's decisions (on the current default device) and with
    the keyword arguments of the optional macro setting ``kwargs``.

    Raises :class:`InvalidArchitectureError` when the macro is not a builder's or the builder asks a decision the
    architecture does not set (or sets to a value outside its options), :class:`ConfigError` when the builder is not
    importable or returns no module; an exception of the builder propagates (an evaluator records it as FAILED).
    """
    macro = arch.macro
    ref = macro.get(BUILDER_KEY)
    if not isinstance(ref, str):
        raise InvalidArchitectureError(f"macro setting 'builder' = {ref!r}: a builder architecture names its "
                                       "builder as 'package.module:function'")
    decisions = macro.get(DECISIONS_KEY, {})
    if not isinstance(decisions, Mapping):
        raise InvalidArchitectureError(f"macro setting 'decisions' = {decisions!r} must be an object of values")
    kwargs = macro.get(KWARGS_KEY, {})
    if not isinstance(kwargs, Mapping):
        raise InvalidArchitectureError(f"macro setting 'kwargs' = {kwargs!r} must be an object of keyword arguments")
    fn = resolve_builder(ref, paths)
    if kwargs:
        fn = functools.partial(fn, **kwargs)
    shape = tuple(int(s) for s in input_shape)
    try:
        return _run(fn, ref, Choices(decisions, strict=True), shape, num_classes, None)
    except _BuilderRaisedError as err:
        raise err.err.with_traceback(err.err.__traceback__) from None
