"""The ``mlp`` space for tabular data ``(N, F)``, written as a define-by-run builder (:mod:`nas.graph.builder`).

Decisions: ``depth`` (1..``max_depth`` hidden layers), ``width_1`` .. ``width_<depth>`` (one per hidden layer, asked
only when the depth reaches it), ``activation``, ``dropout`` (0, 0.1, 0.2 or 0.3) and ``norm`` (``none``, ``batch``,
``layer``). A hidden layer is ``Linear -> norm -> activation -> dropout``; a linear layer gives the outputs. The
widths are the four powers of two up to ``max_width`` (``32, 64, 128, 256`` by default; none below 8).
Inputs of more than one dimension are flattened, so the builder also takes images, but the space is ``tabular``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from nas.core.checks import check_choices, check_int
from nas.graph.builder import Choices
from search_spaces.python import PythonSpace

__all__ = ["MLPSpace", "build_mlp", "ACTIVATIONS", "NORMS", "DROPOUTS", "widths"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU,
                                           "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}
NORMS = ("none", "batch", "layer")
DROPOUTS = (0.0, 0.1, 0.2, 0.3)


def widths(max_width: int) -> list[int]:
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
        width = c.choice(f"width_{i}", widths(max_width))
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
        super().__init__(builder="search_spaces.mlp:build_mlp", input_kind="tabular",
                         kwargs={"max_depth": self.max_depth, "max_width": self.max_width,
                                 "activations": list(self.activations), "norms": list(self.norms)})

    def options(self) -> dict[str, Any]:
        return {"max_depth": self.max_depth, "max_width": self.max_width, "activations": list(self.activations),
                "norms": list(self.norms)}
