"""The ``generator`` skeleton: a latent vector -> an image, through a stack of upsampling ``gen`` cells.

Macro settings: ``latent_dim`` (length of the latent vector), ``channels`` (width of every cell, as in
AutoGAN), ``cells`` (the names of the cells, in order; each doubles the resolution). For an output image
``(C, H, W)`` with ``n`` cells, a linear layer maps ``z`` to ``channels x H/2^n x W/2^n`` (``H`` and ``W`` must be
divisible by ``2^n``), the cells upsample it to ``H x W``, and a BN-ReLU-conv3x3-tanh head gives ``C`` channels
in ``[-1, 1]``.

Every cell has one input node; its nodes sum their incoming edges (``none`` edges are skipped). An edge
leaving the input node of a cell must upsample (``up_*`` or ``none``); every other edge keeps the resolution.

The compiled module takes ``z`` of shape ``(N, latent_dim)`` (``latent_dim`` is an attribute of the module) and
returns ``(N, C, H, W)``. ``num_classes`` is accepted for the compiler's signature; with ``num_classes > 1`` and
macro ``conditional: true`` the generator adds a learned class embedding to ``z`` and takes ``forward(z, y)``, or
one packed input ``forward(x)`` with ``x = [z, one_hot(y)]`` of shape ``(N, latent_dim + num_classes)`` (the same
images: ``one_hot(y) @ embedding`` is the embedding's row ``y``); the packed form is what exports take, a single
tensor in (:attr:`GeneratorNetwork.input_size` columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import torch
from torch import nn

from nas.core.errors import InvalidArchitectureError, ShapeError
from nas.graph.architecture import Architecture, Cell
from nas.graph.ops import GEN_OPS
from nas.graph.standalone import InputCheck

__all__ = ["GeneratorCell", "GeneratorNetwork"]


class GeneratorCell(nn.Module):
    """One ``gen`` cell: node values are sums of edge outputs, in topological order; output = sum of the
    output nodes. ``C`` channels in and out, resolution doubled."""

    def __init__(self, cell: Cell, C: int, name: str = "?") -> None:
        super().__init__()
        if cell.family != "gen" or cell.inputs != 1:
            raise InvalidArchitectureError(f"cell {name!r} must be a gen cell with one input node, got a "
                                           f"{cell.family} cell with {cell.inputs}")
        for src, dst, op in cell.edges:
            if (src == 0) != (op.startswith("up_") or op == "none"):
                raise InvalidArchitectureError(
                    f"cell {name!r}: edge {src}->{dst} runs {op!r}; edges leaving the input node must upsample "
                    f"(up_* or none) and the others must not")
        self.ops = nn.ModuleList(GEN_OPS.create(op, C, C) for _, _, op in cell.edges)
        self.live = [not GEN_OPS.get(op).zero for _, _, op in cell.edges]
        order = [n for n in nx.topological_sort(cell.graph) if n >= cell.inputs]
        self.plan = [(node, [(i, s) for i, (s, d, _) in enumerate(cell.edges) if d == node]) for node in order]
        self.output = cell.output
        self.C = C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up_shape = (x.shape[0], self.C, x.shape[2] * 2, x.shape[3] * 2)
        values: dict[int, torch.Tensor] = {0: x}
        for node, inputs in self.plan:
            terms = [self.ops[i](values[s]) for i, s in inputs if self.live[i] and s in values]
            if terms:
                values[node] = torch.stack(terms).sum(0) if len(terms) > 1 else terms[0]
        outs = [values[n] for n in self.output if n in values]
        if not outs:
            return x.new_zeros(up_shape)
        return torch.stack(outs).sum(0) if len(outs) > 1 else outs[0]


class GeneratorNetwork(nn.Module):
    """The ``generator`` skeleton (see the module docstring)."""

    def __init__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int, *,
                 edge_op: object = None) -> None:
        super().__init__()
        if edge_op is not None:
            raise InvalidArchitectureError("the generator skeleton has no supernet support (edge_op)")
        macro = arch.macro
        try:
            latent, C, names = int(macro["latent_dim"]), int(macro["channels"]), list(macro["cells"])
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidArchitectureError(f"the generator skeleton needs macro settings latent_dim, channels and "
                                           f"cells: {err!r}") from None
        if latent < 1 or C < 1 or not names:
            raise InvalidArchitectureError(f"generator macro: latent_dim = {latent}, channels = {C}, cells = "
                                           f"{names}; expected positive sizes and at least one cell")
        c_img, height, width = (int(s) for s in input_shape)
        scale = 2 ** len(names)
        if height % scale or width % scale:
            raise ShapeError(f"generator with {len(names)} upsampling cells needs an image size divisible by "
                             f"{scale}, got {height}x{width}; use fewer cells")
        self.latent_dim = latent
        self.image_shape = (c_img, height, width)
        self.base = (height // scale, width // scale)
        self.conditional = bool(macro.get("conditional", False)) and num_classes > 1
        self.embed: nn.Embedding | None = nn.Embedding(num_classes, latent) if self.conditional else None
        #: columns of the single-tensor input: the latent vector, and the one-hot label when conditional
        self.input_size = latent + (num_classes if self.conditional else 0)
        self.check = InputCheck((self.input_size,), f"packed [z, one_hot(y)] (N, {self.input_size}), or forward(z, y) "
                                                    "with labels y," if self.conditional
                                else f"latent vectors (N, {self.input_size})")
        self.fc = nn.Linear(latent, C * self.base[0] * self.base[1])
        self.C = C
        self.cells = nn.ModuleList(GeneratorCell(arch.cell(n), C, n) for n in names)
        self.head = nn.Sequential(nn.BatchNorm2d(C), nn.ReLU(inplace=False), nn.Conv2d(C, c_img, 3, 1, 1),
                                  nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None or y is None:  # z, or the packed [z, one_hot(y)] of a conditional generator
            z = self.check(z)
            if self.embed is not None:
                z = z[:, :self.latent_dim] + z[:, self.latent_dim:] @ self.embed.weight
        else:
            if z.dim() != 2 or z.shape[1] != self.latent_dim:
                raise ShapeError(f"the generator takes latent vectors (N, {self.latent_dim}) with labels y, got "
                                 f"{tuple(z.shape)}")
            z = z + self.embed(y)
        x = self.fc(z).view(z.shape[0], self.C, *self.base)
        for cell in self.cells:
            x = cell(x)
        return self.head(x)
