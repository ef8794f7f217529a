"""The ``gan`` space: AutoGAN-style generator cells (Gong et al., ICCV 2019), stacked from a latent vector to the
task's image size by the ``generator`` skeleton (:mod:`nas.graph.generator`).

Each of the ``cells`` cells doubles the resolution and holds four searched edges::

    0 --up_a--> 1 --conv_a--> 2 --conv_b--> 3        (output: node 3)
    0 ------------- shortcut -------------> 3

``up_a`` picks an upsampling op (nearest, bilinear, transposed conv), ``conv_a`` / ``conv_b`` pick a conv op or a
skip connection, and ``shortcut`` an upsampling op or ``none`` (no residual). Cells are searched independently,
as in AutoGAN. With 2 cells a member generates 28x28 (MNIST) or 8x8 (digits) images; 3 cells give 32x32.

Members compile to generators, not classifiers (:attr:`model_kind` ``"generator"``): ``build_model(arch,
image_shape, num_classes)`` returns a module mapping ``z`` of shape ``(N, latent_dim)`` to images of
``image_shape`` in ``[-1, 1]``. They are evaluated by the GAN trainer (:mod:`nas.evaluation.gan`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from nas.core.checks import check_choices, check_int
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture, Cell, freeze_macro
from nas.graph.ops.generator import GEN_CONV_OPS, UP_OPS
from search_spaces.base import MAX_WIDTH, SearchSpace

__all__ = ["GanSpace", "GAN_REFERENCES"]

#: hand-designed generators as members (decisions per cell: up_a, conv_a, conv_b, shortcut) and the loss each is
#: published with. ``dcgan`` (Radford et al. 2016): a transposed 4x4 conv per doubling, BN-ReLU before it, no
#: residual; ``wgan-gp`` (Gulrajani et al. 2017): the same DCGAN-style generator trained with the WGAN-GP loss
#: against a critic without batch norm (the pairing of their MNIST model). Their discriminators are the fixed
#: :class:`nas.evaluation.gan.Discriminator` (batch norm for ``ns``, none for ``wgan-gp``).
GAN_REFERENCES: dict[str, tuple[tuple[str, str, str, str], str]] = {
    "dcgan": (("up_deconv", "skip_connect", "skip_connect", "none"), "ns"),
    "wgan-gp": (("up_deconv", "skip_connect", "skip_connect", "none"), "wgan-gp"),
}

#: the edges of a cell, in decision order: (src, dst, kind)
_EDGES: tuple[tuple[int, int, str], ...] = ((0, 1, "up"), (1, 2, "conv"), (2, 3, "conv"), (0, 3, "shortcut"))
_EDGE_NAMES = ("up_a", "conv_a", "conv_b", "shortcut")


class GanSpace(SearchSpace):
    """AutoGAN-style generator cells. Options: ``cells`` (upsampling cells, 2), ``C`` (channels of every cell,
    64), ``latent_dim`` (128), ``up_ops`` (upsampling choices, all three), ``conv_ops`` (same-resolution
    choices, ``conv_3x3``, ``conv_5x5``, ``skip_connect``), ``conditional`` (class-conditional generator,
    False)."""

    name = "gan"
    input_kind = "image"
    model_kind: ClassVar[str] = "generator"

    def __init__(self, *, cells: int = 2, C: int = 64, latent_dim: int = 128,
                 up_ops: list[str] | tuple[str, ...] = UP_OPS,
                 conv_ops: list[str] | tuple[str, ...] = GEN_CONV_OPS, conditional: bool = False) -> None:
        self.cells = check_int(f"{self.name} option cells", cells, minimum=1, maximum=6)
        self.C = check_int(f"{self.name} option C", C, minimum=1, maximum=MAX_WIDTH)
        self.latent_dim = check_int(f"{self.name} option latent_dim", latent_dim, minimum=1, maximum=MAX_WIDTH)
        self.up_ops = check_choices(f"{self.name} option up_ops", up_ops, UP_OPS)
        self.conv_ops = check_choices(f"{self.name} option conv_ops", conv_ops, GEN_CONV_OPS)
        if not isinstance(conditional, bool):
            raise ConfigError(f"{self.name} option conditional = {conditional!r}: expected true or false")
        self.conditional = conditional
        self._choices = {"up": self.up_ops, "conv": self.conv_ops, "shortcut": (*self.up_ops, "none")}
        self._names = tuple(f"cell_{i}" for i in range(self.cells))
        self._macro = freeze_macro({"skeleton": "generator", "latent_dim": self.latent_dim, "channels": self.C,
                                    "cells": list(self._names), "conditional": self.conditional})

    def options(self) -> dict[str, Any]:
        return {"cells": self.cells, "C": self.C, "latent_dim": self.latent_dim, "up_ops": list(self.up_ops),
                "conv_ops": list(self.conv_ops), "conditional": self.conditional}

    def decision_sizes(self) -> list[int]:
        return [len(self._choices[kind]) for _ in self._names for _, _, kind in _EDGES]

    def decision_names(self) -> list[str]:
        return [f"{cell}_{edge}" for cell in self._names for edge in _EDGE_NAMES]

    def _decode(self, decisions: list[int]) -> Architecture:
        cells = {}
        for c, name in enumerate(self._names):
            chosen = decisions[c * len(_EDGES):(c + 1) * len(_EDGES)]
            edges = tuple((s, d, self._choices[kind][v]) for (s, d, kind), v in zip(_EDGES, chosen))
            cells[name] = Cell(family="gen", inputs=1, nodes=4, edges=edges, output=(3,))
        return Architecture(space=self.name, cells=cells, macro=self._macro)

    def reference(self, name: str) -> Architecture:
        """The hand-designed generator ``name`` of :data:`GAN_REFERENCES` as a member of this space (every cell
        alike); raises :class:`ConfigError` when this space's op choices cannot express it."""
        if name not in GAN_REFERENCES:
            raise ConfigError(f"gan reference {name!r}: choose from {', '.join(GAN_REFERENCES)}")
        ops, _ = GAN_REFERENCES[name]
        try:
            cell = [self._choices[kind].index(op) for (_, _, kind), op in zip(_EDGES, ops)]
        except ValueError:
            raise ConfigError(f"gan reference {name!r} needs ops {list(ops)}; this space offers up_ops "
                              f"{list(self.up_ops)} and conv_ops {list(self.conv_ops)}") from None
        return self._decode(cell * self.cells)

    def reference_training(self, name: str) -> dict[str, Any]:
        """The training settings the hand-designed generator ``name`` of :data:`GAN_REFERENCES` is published with,
        as gan evaluator options (``{"loss": ...}``): what a baseline of that name overrides in the search's."""
        if name not in GAN_REFERENCES:
            raise ConfigError(f"gan reference {name!r}: choose from {', '.join(GAN_REFERENCES)}")
        return {"loss": GAN_REFERENCES[name][1]}

    def _encode(self, arch: Architecture) -> list[int]:
        out = []
        for name in self._names:
            ops = {(s, d): op for s, d, op in arch.cell(name).edges}
            out += [self._choices[kind].index(ops[(s, d)]) for s, d, kind in _EDGES]
        return out
