"""The ``python`` space: a define-by-run model space written in plain PyTorch (see :mod:`nas.graph.builder`).

In YAML::

    space: {name: python, options: {builder: "my_models:build"}}

with, in ``my_models.py`` (on ``PYTHONPATH`` or in the config's folder)::

    def build(c, input_shape, num_classes):
        ...  # c.choice("name", [...]), c.int("name", low, high), c.float(...), c.bool(...)
        return model

The space's decisions are those the builder asks, found by running it once per discovery step on the ``meta``
device (:func:`nas.graph.builder.discover`), in the order first asked; each is categorical (ranges are grids).
A member stores a value for *every* decision, also those its other choices leave unasked (listed in the macro's
``inactive``), so decisions encode one to one and every strategy searches the space as any other; the canonical
hash ignores inactive values, so de-duplication counts members that compute the same function once.
:meth:`PythonSpace.size` counts decision vectors (members differing only in inactive values included).

Options: ``builder`` (``"package.module:function"``), ``kwargs`` (keyword arguments the builder is called with,
stored in every member), ``input_kind`` (``image``, ``sequence`` or ``tabular``: the data the models take; by
default the builder's attribute ``input_kind``, else ``image``), ``input_shape`` (the shape decisions are discovered
with, without the batch; by default ``(3, 32, 32)``, ``(16, 8)`` or ``(8,)`` by kind), ``path`` (a folder to import
the builder's module from, e.g. the config's folder).

The ``mlp`` space (:class:`MLPSpace`) is such a builder, :func:`build_mlp`, for tabular data ``(N, F)``.

Decisions: ``depth`` (1..``max_depth`` hidden layers), ``width_1`` .. ``width_<depth>`` (one per hidden layer, asked
only when the depth reaches it), ``activation``, ``dropout`` (0, 0.1, 0.2 or 0.3) and ``norm`` (``none``, ``batch``,
``layer``). A hidden layer is ``Linear -> norm -> activation -> dropout``; a linear layer gives the outputs. The
widths are ``max_width``, its half, quarter and eighth (``32, 64, 128, 256`` by default; none below 8).
Inputs of more than one dimension are flattened, so the builder also takes images, but the space is ``tabular``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas.core.checks import check_choice, check_choices, check_int
from nas.core.errors import ConfigError
from nas.graph.architecture import BUILDER_KEY, DECISIONS_KEY, KWARGS_KEY, Architecture
from nas.graph.builder import Choices, Decision, build_module, builder_architecture, discover, resolve_builder
from search_spaces.base import SearchSpace, SpaceCompiler

__all__ = ["PythonSpace", "BuilderCompiler", "INPUT_KINDS", "DISCOVERY_SHAPES", "MLPSpace", "build_mlp", "ACTIVATIONS",
           "NORMS", "DROPOUTS", "mlp_widths"]

INPUT_KINDS = ("image", "sequence", "tabular")
#: the input shape decisions are discovered with, by input kind
DISCOVERY_SHAPES: dict[str, tuple[int, ...]] = {"image": (3, 32, 32), "sequence": (16, 8), "tabular": (8,)}
_CACHE = 4096


@dataclass(frozen=True)
class BuilderCompiler(SpaceCompiler):
    """Compiles the members of a builder space (see :class:`~search_spaces.base.SpaceCompiler`): imports the
    builder (``paths`` first) and calls it with the member's decisions. Plain data, so it pickles to Ray workers."""

    paths: tuple[str, ...] = ()

    def __call__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Module:
        return build_module(arch, input_shape, num_classes, self.paths)


class PythonSpace(SearchSpace):
    """A define-by-run space of a builder function (see the module docstring)."""

    name = "python"
    input_kind = "image"
    #: the builder of the space when none is given: the ``mlp`` space's
    default_builder = "search_spaces.python:build_mlp"

    def __init__(self, *, builder: str = default_builder, kwargs: Mapping[str, Any] | None = None,
                 input_kind: str | None = None, input_shape: Sequence[int] | None = None,
                 path: str | None = None) -> None:
        if path is not None and (not isinstance(path, str) or not os.path.isdir(path)):
            raise ConfigError(f"{self.name} option path = {path!r}: must be a folder holding the builder's module")
        self.path = path
        self._paths = (os.path.abspath(path),) if path else ()
        self.builder = builder
        self.fn = resolve_builder(builder, self._paths)
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise ConfigError(f"{self.name} option kwargs = {kwargs!r}: must be a mapping of keyword arguments")
        self.kwargs = dict(kwargs or {})
        kind = input_kind if input_kind is not None else getattr(self.fn, "input_kind", "image")
        # a ClassVar, set per instance from the option or the builder
        self.input_kind = check_choice(f"{self.name} option input_kind", kind, INPUT_KINDS)  # type: ignore[misc]  # see above
        if input_shape is not None and (isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence)
                                        or not input_shape or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                      and s >= 1 for s in input_shape)):
            raise ConfigError(f"{self.name} option input_shape = {input_shape!r}: must be a list of positive "
                              "integers (the input without the batch), e.g. [3, 32, 32]")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        shape = self.input_shape or DISCOVERY_SHAPES[self.input_kind]
        found = discover(self._call, builder, shape, 10)
        self.decisions: tuple[Decision, ...] = found.decisions
        self._shape = shape
        self._device = found.device
        self._extra = {KWARGS_KEY: self.kwargs} if self.kwargs else {}
        self._active: dict[tuple[int, ...], tuple[str, ...]] = {}

    def _call(self, c: Choices, input_shape: tuple[int, ...], num_classes: int) -> Any:
        return self.fn(c, input_shape, num_classes, **self.kwargs)

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"builder": self.builder}
        if self.kwargs:
            out["kwargs"] = dict(self.kwargs)
        out["input_kind"] = self.input_kind
        if self.input_shape is not None:
            out["input_shape"] = list(self.input_shape)
        if self.path is not None:
            out["path"] = self.path
        return out

    def decision_sizes(self) -> list[int]:
        return [len(d.options) for d in self.decisions] or [1]

    def decision_names(self) -> list[str]:
        return [d.name for d in self.decisions] or ["fixed"]

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        return [[v if isinstance(v, (str, int, float, bool)) else json.dumps(v) for v in d.options]
                for d in self.decisions] or [[0]]

    def _inactive(self, decisions: list[int], values: dict[str, Any]) -> tuple[str, ...]:
        """The decisions the builder does not ask under ``values`` (one meta-device run, cached)."""
        key = tuple(decisions)
        hit = self._active.get(key)
        if hit is None:
            c = Choices(values, strict=True)
            try:
                if self._device is None:
                    self._call(c, self._shape, 10)
                else:
                    with torch.device(self._device):
                        self._call(c, self._shape, 10)
                hit = tuple(n for n in values if n not in c.asked)
            except Exception:  # a combination the builder refuses: a member whose trial fails with the reason
                hit = ()
            if len(self._active) >= _CACHE:
                self._active.clear()
            self._active[key] = hit
        return hit

    def _decode(self, decisions: list[int]) -> Architecture:
        if not self.decisions:
            return builder_architecture(self.name, self.builder, {}, **self._extra)
        values = {d.name: d.options[i] for d, i in zip(self.decisions, decisions)}
        return builder_architecture(self.name, self.builder, values, self._inactive(decisions, values), **self._extra)

    def _encode(self, arch: Architecture) -> list[int]:
        # plain ValueErrors: SearchSpace.check words them as "not a member of space ..."
        macro = arch.macro
        if macro.get(BUILDER_KEY) != self.builder:
            raise ValueError(f"architecture's builder {macro.get(BUILDER_KEY)!r} is not this space's "
                                           f"{self.builder!r}")
        values = macro.get(DECISIONS_KEY)
        if not isinstance(values, dict):
            raise ValueError("architecture has no 'decisions' object")
        names = [d.name for d in self.decisions]
        if sorted(values) != sorted(names):
            raise ValueError(f"architecture sets decisions {sorted(values)}; the space has {names}")
        out = []
        for d in self.decisions:
            idx = [i for i, o in enumerate(d.options) if type(o) is type(values[d.name]) and o == values[d.name]]
            if not idx:
                raise ValueError(f"decision {d.name!r} = {values[d.name]!r} is not one of "
                                               f"{list(d.options)}")
            out.append(idx[0])
        if not self.decisions:
            out = [0]
        return out

    def compiler(self) -> SpaceCompiler:
        return BuilderCompiler(name=self.name, input_kind=self.input_kind, paths=self._paths)


# -- the mlp space: a built-in builder ------------------------------------------------------------------------
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU,
                                           "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}
NORMS = ("none", "batch", "layer")
DROPOUTS = (0.0, 0.1, 0.2, 0.3)


def mlp_widths(max_width: int) -> list[int]:
    """The width options for ``max_width``: ``max_width``, its half, quarter and eighth (none below 8)."""
    return sorted({max(8, max_width >> k) for k in range(4)})


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def build_mlp(c: Choices, input_shape: tuple[int, ...], num_classes: int, *, max_depth: int = 4,
              max_width: int = 256, activations: Sequence[str] = ("relu", "gelu", "tanh", "silu"),
              norms: Sequence[str] = NORMS) -> nn.Module:
    """A multi-layer perceptron whose depth, widths, activation, dropout and normalisation are decisions."""
    features = math.prod(input_shape)
    depth = c.int("depth", 1, max_depth)
    act = c.choice("activation", list(activations))
    p = c.choice("dropout", list(DROPOUTS))
    norm = c.choice("norm", list(norms))
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(1, depth + 1):
        width = c.choice(f"width_{i}", mlp_widths(max_width))
        layers += [nn.Linear(features, width), _norm(norm, width), ACTIVATIONS[act]()]
        if p:
            layers.append(nn.Dropout(p))
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


build_mlp.input_kind = "tabular"  # type: ignore[attr-defined]  # read by PythonSpace as the default input kind


class MLPSpace(PythonSpace):
    """Multi-layer perceptrons for tabular data (see the module docstring). Options: ``max_depth`` (4),
    ``max_width`` (256), ``activations`` (of ``relu``, ``gelu``, ``tanh``, ``silu``, ``elu``, ``leaky_relu``),
    ``norms`` (of ``none``, ``batch``, ``layer``)."""

    name = "mlp"
    input_kind = "tabular"

    def __init__(self, *, max_depth: int = 4, max_width: int = 256,
                 activations: Sequence[str] = ("relu", "gelu", "tanh", "silu"), norms: Sequence[str] = NORMS) -> None:
        self.max_depth = check_int(f"{self.name} option max_depth", max_depth, minimum=1, maximum=16)
        self.max_width = check_int(f"{self.name} option max_width", max_width, minimum=8)
        self.activations = check_choices(f"{self.name} option activations", activations, list(ACTIVATIONS))
        self.norms = check_choices(f"{self.name} option norms", norms, NORMS)
        super().__init__(builder="search_spaces.python:build_mlp", input_kind="tabular",
                         kwargs={"max_depth": self.max_depth, "max_width": self.max_width,
                                 "activations": list(self.activations), "norms": list(self.norms)})

    def options(self) -> dict[str, Any]:
        return {"max_depth": self.max_depth, "max_width": self.max_width, "activations": list(self.activations),
                "norms": list(self.norms)}
