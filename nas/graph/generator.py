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

The ``translator`` skeleton (:class:`TranslatorNetwork`) maps an image to an image of the same shape (CycleGAN
generators, Zhu et al. 2017): macro ``layers``, a list of ``[cell_name, channels]`` run in order (each a ``gen``
cell with one input node; edges leaving the input node map the previous width to ``channels``, the others keep
``channels``), then a head: reflection pad, a ``head_kernel`` conv (default 7, the paper's ``c7s1-3``) to the
image's channels and tanh. Each node's resolution follows :func:`~nas.graph.ops.generator.resolution_scale` of its
incoming edges, which must agree; the layers together must return to the input resolution, and the input's height
and width must be divisible by ``2^d`` for ``d`` downsamplings deep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx
import torch
from torch import nn

from nas.core.errors import InvalidArchitectureError, ShapeError
from nas.graph.architecture import Architecture, Cell
from nas.graph.ops import GEN_OPS
from nas.graph.ops.generator import resolution_scale
from nas.graph.standalone import InputCheck

__all__ = ["GeneratorCell", "GeneratorNetwork", "TranslatorCell", "TranslatorNetwork"]


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
        return _run_cell(self.ops, self.live, self.plan, self.output, x,
                         (x.shape[0], self.C, x.shape[2] * 2, x.shape[3] * 2))


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


class TranslatorCell(nn.Module):
    """A ``gen`` cell of the ``translator`` skeleton: node values are sums of edge outputs, in topological order;
    output = sum of the output nodes. Edges leaving the input node map ``C_in`` to ``C_out`` channels, the others
    ``C_out`` to ``C_out``. ``scale`` is the cell's resolution factor (checked: every node's incoming edges agree)."""

    def __init__(self, cell: Cell, C_in: int, C_out: int, name: str = "?") -> None:
        super().__init__()
        if cell.family != "gen" or cell.inputs != 1:
            raise InvalidArchitectureError(f"translator cell {name!r} must be a gen cell with one input node, got a "
                                           f"{cell.family} cell with {cell.inputs}")
        scales: dict[int, float] = {0: 1.0}
        order = [n for n in nx.topological_sort(cell.graph) if n >= cell.inputs]
        for node in order:
            incoming = {(s, op): scales[s] * resolution_scale(op) for s, d, op in cell.edges if d == node}
            found = set(incoming.values())
            if len(found) != 1:
                raise InvalidArchitectureError(
                    f"translator cell {name!r}: the edges into node {node} change the resolution differently "
                    f"({', '.join(f'{s}->{node} {op!r}: x{v:g}' for (s, op), v in incoming.items())}); they are "
                    f"summed, so they must agree")
            scales[node] = found.pop()
        outs = {scales[n] for n in cell.output}
        if len(outs) != 1:
            raise InvalidArchitectureError(f"translator cell {name!r}: its output nodes {list(cell.output)} have "
                                           f"different resolutions")
        self.scale = outs.pop()
        self.ops = nn.ModuleList(GEN_OPS.create(op, C_in if s == 0 else C_out, C_out) for s, _, op in cell.edges)
        self.live = [not GEN_OPS.get(op).zero for _, _, op in cell.edges]
        self.plan = [(node, [(i, s) for i, (s, d, _) in enumerate(cell.edges) if d == node]) for node in order]
        self.output = cell.output
        self.C_out = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = (round(d * self.scale) for d in x.shape[2:])
        return _run_cell(self.ops, self.live, self.plan, self.output, x, (x.shape[0], self.C_out, h, w))


class TranslatorNetwork(nn.Module):
    """The ``translator`` skeleton (see the module docstring): ``(N, C, H, W)`` -> ``(N, C, H, W)`` in
    ``[-1, 1]``. ``num_classes`` is accepted for the compiler's signature and ignored."""

    def __init__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int, *,
                 edge_op: object = None) -> None:
        super().__init__()
        if edge_op is not None:
            raise InvalidArchitectureError("the translator skeleton has no supernet support (edge_op)")
        layers = arch.macro.get("layers")
        if not isinstance(layers, (list, tuple)) or not layers:
            raise InvalidArchitectureError(f"the translator skeleton needs macro setting 'layers', a non-empty "
                                           f"list of [cell_name, channels], got {layers!r}")
        kernel = arch.macro.get("head_kernel", 7)
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 1 or kernel % 2 == 0:
            raise InvalidArchitectureError(f"translator macro head_kernel = {kernel!r}: expected an odd positive "
                                           f"integer (7 in CycleGAN)")
        c_img, height, width = (int(s) for s in input_shape)
        self.image_shape = (c_img, height, width)
        cells: list[TranslatorCell] = []
        c_prev, scale, smallest = c_img, 1.0, 1.0
        for i, entry in enumerate(layers):
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
                    and isinstance(entry[1], int) and not isinstance(entry[1], bool) and entry[1] > 0):
                raise InvalidArchitectureError(f"translator macro 'layers'[{i}] = {entry!r}; expected "
                                               f"[cell_name, channels > 0]")
            name, channels = entry
            cell = TranslatorCell(arch.cell(name), c_prev, channels, name)
            cells.append(cell)
            c_prev, scale = channels, scale * cell.scale
            smallest = min(smallest, scale)
        if scale != 1.0:
            raise InvalidArchitectureError(f"translator layers change the resolution by x{scale:g} in all; an "
                                           f"image-to-image network must return to x1 (as many up_* as down_*)")
        depth = 2 ** round(-math.log2(smallest))
        if height % depth or width % depth:
            raise ShapeError(f"translator with downsampling to 1/{depth} needs an image size divisible by {depth}, "
                             f"got {height}x{width}; use fewer down_* layers or pad the images")
        self.cells = nn.ModuleList(cells)
        self.head = nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_prev, c_img, kernel), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ShapeError(f"the translator takes images (N, {', '.join(map(str, self.image_shape))}), got "
                             f"{tuple(x.shape)}")
        for cell in self.cells:
            x = cell(x)
        return self.head(x)


def _run_cell(ops: nn.ModuleList, live: list[bool], plan: list[tuple[int, list[tuple[int, int]]]],
              output: Sequence[int], x: torch.Tensor, empty: tuple[int, ...]) -> torch.Tensor:
    """Run a ``gen`` cell on ``x`` (its input node 0): each node in ``plan`` order sums the live ops of its incoming
    edges (``(edge index, source node)``) whose source was reached; the cell returns the sum of its reached output
    nodes, or zeros of shape ``empty`` when none was (every path ran ``none``)."""
    values: dict[int, torch.Tensor] = {0: x}
    for node, inputs in plan:
        terms = [ops[i](values[s]) for i, s in inputs if live[i] and s in values]
        if terms:
            values[node] = torch.stack(terms).sum(0) if len(terms) > 1 else terms[0]
    outs = [values[n] for n in output if n in values]
    if not outs:
        return x.new_zeros(empty)
    return torch.stack(outs).sum(0) if len(outs) > 1 else outs[0]
