"""The compiler: :class:`~nas.graph.architecture.Architecture` + skeleton -> ``torch.nn.Module``. Knows nothing of
search.

The skeleton is named by ``macro["skeleton"]``:

``cells`` (images ``(N, C, H, W)``)
    stem conv (``stem_channels``, ``stem_kernel``; 0 channels = no stem) -> ``layers``, a list of
    ``[cell_name, channels]`` (``resblock`` is NAS-Bench-201's residual reduction block) -> head:
    optional BN-ReLU (``head_preact``), global average pooling or flattening (``head_pool``),
    hidden linear layers (``head_hidden``), linear classifier. NAS-Bench-201, ResNet-, VGG- and
    LeNet-style networks are all of this kind.
``darts`` (images)
    the DARTS evaluation network (quark0/darts ``NetworkCIFAR``): stem ``3*C`` channels, ``layers`` cells
    taking the two previous outputs, ``reduce`` cells at 1/3 and 2/3 depth, ``normal`` cells elsewhere.
``sequence`` (sequences ``(N, T, C)``)
    linear embedding to ``d_model`` -> optional positional encoding op (``pos_encoding``) -> the cells
    named in ``stack``, in order -> layer norm -> mean or last-step pooling (``pool``) -> linear classifier.
    ``pos_encoding`` is a *macro site* (:data:`MACRO_SITES`): compiled into one module, ``pos``, that a supernet
    may replace by a mixed op.
``generator`` (latent vectors ``(N, latent_dim)`` -> images of ``input_shape``)
    :mod:`nas.graph.generator`: a linear map to a small feature map, upsampling ``gen`` cells, a tanh head.
``translator`` (images ``(N, C, H, W)`` -> images of the same shape)
    :mod:`nas.graph.generator`: ``gen`` cells down and up again (CycleGAN generators), a tanh head.

``build_model(arch, input_shape, num_classes)`` checks the macro settings and the input shape and
raises :class:`~nas.core.errors.InvalidArchitectureError` / :class:`~nas.core.errors.ShapeError` that say
what is wrong and what is expected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas.core.checks import is_int
from nas.core.errors import InvalidArchitectureError, ShapeError, UnknownNameError
from nas.core.registry import Registry
from nas.graph.architecture import BUILDER_KEY, CELL_REF_PREFIX, Architecture, Cell
from nas.graph.builder import build_module
from nas.graph.cells import ConvCell, EdgeOpFactory, SequenceCell, darts_rnn_layer
from nas.graph.generator import GeneratorNetwork, TranslatorNetwork
from nas.graph.ops import SEQUENCE_OPS
from nas.graph.ops.conv import FactorizedReduce, ReLUConvBN, ResNetBasicBlock
from nas.graph.standalone import InputCheck

__all__ = ["build_model", "SKELETONS", "InputCheck", "MACRO_SITES", "MacroSite", "positional_encoding"]

_MISSING = object()


def _setting(macro: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    value = macro.get(key, default)
    if value is _MISSING:
        raise InvalidArchitectureError(f"macro setting {key!r} is missing for skeleton {macro.get('skeleton')!r}")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise InvalidArchitectureError(f"macro setting {key!r} = {value!r} has the wrong type; expected {kind}")
    return value


def _positive(value: Any, key: str) -> int:
    if not is_int(value) or value < 1:
        raise InvalidArchitectureError(f"macro setting {key!r} must be a positive integer, got {value!r}")
    return value


def _family_cell(arch: Architecture, name: str, family: str, inputs: int | None = None) -> Cell:
    try:
        cell = arch.cell(name)
    except UnknownNameError as err:
        raise InvalidArchitectureError(f"the skeleton uses cell {name!r}: {err}") from None
    if cell.family != family:
        raise InvalidArchitectureError(f"cell {name!r} is a {cell.family} cell; this skeleton needs a {family} cell")
    if inputs is not None and cell.inputs != inputs:
        raise InvalidArchitectureError(f"cell {name!r} has {cell.inputs} input nodes; this skeleton needs {inputs}")
    return cell


class _Head(nn.Module):
    def __init__(self, features: int, hidden: Sequence[int], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(features, width), nn.ReLU(inplace=False)]
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class CellsNetwork(nn.Module):
    """The ``cells`` image skeleton (see the module docstring)."""

    def __init__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int, *,
                 edge_op: EdgeOpFactory | None = None) -> None:
        super().__init__()
        macro = arch.macro
        c_in, height, width = input_shape
        self.check = InputCheck(tuple(input_shape), "(N, C, H, W)")
        stem_channels = _setting(macro, "stem_channels", int, 0)
        stem_kernel = _positive(_setting(macro, "stem_kernel", int, 3), "stem_kernel")
        if stem_channels:
            self.stem: nn.Module = nn.Sequential(
                nn.Conv2d(c_in, stem_channels, stem_kernel, padding=stem_kernel // 2, bias=False),
                nn.BatchNorm2d(stem_channels),
            )
            c_prev = stem_channels
        else:
            self.stem = nn.Identity()
            c_prev = c_in
        layers = _setting(macro, "layers", list)
        if not layers:
            raise InvalidArchitectureError("macro setting 'layers' is empty; list [cell_name, channels] pairs")
        body: list[nn.Module] = []
        for i, entry in enumerate(layers):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise InvalidArchitectureError(f"macro 'layers'[{i}] = {entry!r}; expected [cell_name, channels]")
            name, channels = entry[0], _positive(entry[1], f"layers[{i}] channels")
            if name == "resblock":
                body.append(ResNetBasicBlock(c_prev, channels, 2))
                c_prev = channels
            else:
                cell = ConvCell(_family_cell(arch, name, "conv", 1), [c_prev], channels, name=name, edge_op=edge_op)
                body.append(cell)
                c_prev = cell.out_channels
        self.body = nn.Sequential(*body)
        self.lastact = (
            nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
            if _setting(macro, "head_preact", bool, False) else nn.Identity()
        )
        pool = _setting(macro, "head_pool", str, "avg")
        if pool == "avg":
            self.pool: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            features = c_prev
        elif pool == "flatten":
            self.pool = nn.Flatten()
            with torch.no_grad():
                was = self.training
                self.eval()
                probe = self.body(self.stem(torch.zeros(1, c_in, height, width)))
                self.train(was)
            features = probe.numel()
        else:
            raise InvalidArchitectureError(f"macro setting 'head_pool' = {pool!r}; expected 'avg' or 'flatten'")
        hidden = [_positive(w, "head_hidden") for w in _setting(macro, "head_hidden", list, [])]
        self.classifier = _Head(features, hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(self.stem(self.check(x)))
        return self.classifier(self.pool(self.lastact(x)))


class _DartsCell(nn.Module):
    """A DARTS cell with its two preprocessing ops (quark0/darts ``model.Cell``)."""

    def __init__(self, cell: Cell, C_pp: int, C_p: int, C: int, reduction_prev: bool, *, name: str = "normal",
                 edge_op: EdgeOpFactory | None = None) -> None:
        super().__init__()
        self.preprocess0 = FactorizedReduce(C_pp, C) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0)
        self.cell = ConvCell(cell, [C, C], C, name=name, edge_op=edge_op)
        self.out_channels = self.cell.out_channels

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return self.cell(self.preprocess0(s0), self.preprocess1(s1))


class DartsNetwork(nn.Module):
    """The ``darts`` image skeleton: quark0/darts ``NetworkCIFAR`` without the auxiliary head."""

    def __init__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int, *,
                 edge_op: EdgeOpFactory | None = None) -> None:
        super().__init__()
        macro = arch.macro
        c_in = input_shape[0]
        self.check = InputCheck(tuple(input_shape), "(N, C, H, W)")
        C = _positive(_setting(macro, "C", int), "C")
        n_layers = _positive(_setting(macro, "layers", int), "layers")
        stem_mult = _positive(_setting(macro, "stem_multiplier", int, 3), "stem_multiplier")
        normal = _family_cell(arch, "normal", "conv", 2)
        reduce = _family_cell(arch, "reduce", "conv", 2)
        if not reduce.reduction or normal.reduction:
            raise InvalidArchitectureError("darts skeleton: cell 'reduce' must be a reduction cell and 'normal' not")
        c_curr = stem_mult * C
        self.stem = nn.Sequential(nn.Conv2d(c_in, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        cells: list[nn.Module] = []
        reduction_prev = False
        for i in range(n_layers):
            reduction = i in (n_layers // 3, 2 * n_layers // 3)
            if reduction:
                c_curr *= 2
            cell = _DartsCell(reduce if reduction else normal, c_pp, c_p, c_curr, reduction_prev,
                              name="reduce" if reduction else "normal", edge_op=edge_op)
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.out_channels
        self.cells = nn.ModuleList(cells)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_p, num_classes)

    def set_drop_path(self, prob: float) -> None:
        """Drop-path probability of every cell edge that is not an identity or zero op."""
        for cell in self.cells:
            if isinstance(cell, _DartsCell):  # every one is
                cell.cell.drop_prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(self.check(x))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1))


class SequenceNetwork(nn.Module):
    """The ``sequence`` skeleton (see the module docstring)."""

    def __init__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int, *,
                 edge_op: EdgeOpFactory | None = None) -> None:
        super().__init__()
        macro = arch.macro
        seq_len, features = input_shape
        self.check = InputCheck(tuple(input_shape), "(N, T, C)")
        d_model = _positive(_setting(macro, "d_model", int), "d_model")
        self.embed = nn.Linear(features, d_model)
        self.pos: nn.Module = positional_encoding(_setting(macro, "pos_encoding", str, "none"), d_model, seq_len)
        stack = _setting(macro, "stack", list)
        if not stack:
            raise InvalidArchitectureError("macro setting 'stack' is empty; list the sequence cells to apply")

        def rnn_layer(name: str) -> nn.Module:
            cell = _family_cell(arch, name, "rnn", 1)
            if cell.combine == "concat":
                raise InvalidArchitectureError(f"rnn cell {name!r} must combine by mean or sum, not concat")
            return darts_rnn_layer(cell, d_model, d_model)

        self.cells = nn.ModuleList(
            SequenceCell(_family_cell(arch, str(name), "sequence", 1), d_model, seq_len, rnn_layer, name=str(name),
                         edge_op=edge_op)
            for name in stack
        )
        self.norm = nn.LayerNorm(d_model)
        pool = _setting(macro, "pool", str, "mean")
        if pool not in ("mean", "last"):
            raise InvalidArchitectureError(f"macro setting 'pool' = {pool!r}; expected 'mean' or 'last'")
        self.last = pool == "last"
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos(self.embed(self.check(x)))
        for cell in self.cells:
            x = cell(x)
        x = self.norm(x)
        return self.classifier(x[:, -1] if self.last else x.mean(dim=1))


def positional_encoding(name: str, d_model: int, seq_len: int) -> nn.Module:
    """The module of the sequence skeleton's ``pos_encoding`` setting: identity for ``none``, else the
    ``pe_*`` sequence op of that name."""
    if name == "none":
        return nn.Identity()
    if name.startswith("pe_") and name in SEQUENCE_OPS:
        return SEQUENCE_OPS.create(name, d_model, seq_len)
    raise InvalidArchitectureError(
        f"macro setting 'pos_encoding' = {name!r}; expected 'none', 'pe_sinusoidal' or 'pe_learned'"
    )


@dataclass(frozen=True)
class MacroSite:
    """A macro setting that a skeleton compiles into one module, held as ``attribute`` of the network;
    ``build(value, macro, input_shape)`` builds that module for a value of the setting. Supernets searching
    the setting put a mixed op of every candidate value there."""

    skeleton: str
    attribute: str
    build: Callable[[str, Mapping[str, Any], tuple[int, ...]], nn.Module]


#: the macro settings a supernet may search, by setting name
MACRO_SITES: Registry[MacroSite] = Registry("searchable macro setting")
MACRO_SITES.register("pos_encoding", MacroSite(
    "sequence", "pos", lambda value, macro, shape: positional_encoding(value, int(macro["d_model"]), shape[0])))


Builder = Callable[..., nn.Module]  # (arch, input_shape, num_classes, *, edge_op) -> module
SKELETONS: Registry[tuple[Builder, int, str]] = Registry("skeleton")
SKELETONS.register("cells", (CellsNetwork, 3, "(channels, height, width)"))
SKELETONS.register("darts", (DartsNetwork, 3, "(channels, height, width)"))
SKELETONS.register("sequence", (SequenceNetwork, 2, "(time steps, features)"))
SKELETONS.register("generator", (GeneratorNetwork, 3, "(channels, height, width) of the generated images"))
SKELETONS.register("translator", (TranslatorNetwork, 3, "(channels, height, width) of the translated images"))


def build_model(arch: Architecture, input_shape: Sequence[int], num_classes: int, *,
                edge_op: EdgeOpFactory | None = None) -> nn.Module:
    """Compile ``arch`` into a fresh, randomly initialised ``nn.Module``; a builder architecture (macro
    ``builder``) by :func:`nas.graph.builder.build_module`.

    ``input_shape`` excludes the batch dimension: ``(C, H, W)`` for image skeletons, ``(T, C)`` for
    sequences. The architecture is validated first. ``edge_op`` builds every cell edge's module in place of
    the op table (see :class:`~nas.graph.cells.EdgeSite`); supernets use it to put mixed ops on the edges.
    """
    if BUILDER_KEY in arch.macro:  # a define-by-run model: its builder builds it
        if edge_op is not None:
            raise InvalidArchitectureError("a builder architecture has no cell edges for edge_op to replace")
        return build_module(arch, input_shape, num_classes)
    arch.validate()
    skeleton = arch.macro.get("skeleton")
    try:
        builder, rank, layout = SKELETONS.get(skeleton)  # type: ignore[arg-type]  # None: the registry's error lists the known skeletons
    except UnknownNameError as err:
        raise InvalidArchitectureError(f"macro setting 'skeleton': {err}") from None
    shape = tuple(input_shape)
    if len(shape) != rank or any(not is_int(s) or s < 1 for s in shape):
        raise ShapeError(
            f"skeleton {skeleton!r} (space {arch.space!r}) needs input_shape {layout}, got {shape!r}"
        )
    if not is_int(num_classes) or num_classes < 1:
        raise ShapeError(f"num_classes must be a positive integer, got {num_classes!r}")
    for name, cell in arch.cells.items():
        if cell.family == "sequence":
            for _, _, op in cell.edges:
                if op.startswith(CELL_REF_PREFIX) and skeleton != "sequence":
                    raise InvalidArchitectureError(f"cell {name!r}: {op!r} works only in the sequence skeleton")
    return builder(arch, shape, num_classes, edge_op=edge_op)
