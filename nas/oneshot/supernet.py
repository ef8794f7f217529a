"""Supernets: the continuous relaxation of a space, compiled by the same skeletons as its members.

Every searched choice is a *slot*: a matrix of architecture parameters ``alpha[slot]`` of shape
``(rows, ops)``, one row per edge of a searched cell (or one row for a macro choice such as the positional
encoding). The compiler's edge-op hook (:class:`~nas.graph.cells.EdgeSite`) puts a :class:`MixedOp` on every edge;
all mixed ops of a supernet read their op weights from one shared :class:`EdgeWeights`, filled at the start
of each forward pass according to the supernet's ``mode``:

* ``softmax`` -- DARTS: every op runs, weighted by ``softmax(alpha)``;
* ``gumbel``  -- GDAS: one op per row is sampled by Gumbel-max from the supernet's own generator; only it
  runs, weighted by the straight-through ``hard - soft.detach() + soft`` so gradients reach every alpha.

``partial_channels = K > 1`` (PC-DARTS) sends ``1/K`` of the channels of a conv edge through the ops and the
rest around them, then shuffles channels; memory and compute of the mixed ops fall about ``K``-fold.
``edge_normalization`` (PC-DARTS' other half) gives every edge a weight ``beta``, softmax-normalised over the
edges entering the same node, that scales the edge's mixed output; spaces whose derivation picks inputs (darts)
rank edges by op weight times edge weight. The betas appear in ``alpha_arrays()`` as ``"<slot>.edges"``.

Spaces describe their supernets as data (``space.supernet_spec()``, a :class:`~search_spaces.slots.SupernetSpec`:
the template architecture and its slots); :func:`build_supernet` compiles any such description, and
``space.derive(alphas)`` turns the plain arrays of :meth:`Supernet.alpha_arrays` back into members. This module
knows no particular space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.core.checks import is_int
from nas.core.errors import ConfigError
from nas.evaluation.training import seeded
from nas.graph.architecture import Architecture
from nas.graph.cells import EdgeSite
from nas.graph.compiler import MACRO_SITES, MacroSite, build_model
from nas.graph.ops import CONV_OPS, SEQUENCE_OPS
from search_spaces.slots import EDGES, Slot, SupernetSpec, edge_weights

__all__ = ["EdgeWeights", "MixedOp", "Slot", "SupernetSpec", "Supernet", "SupernetSource", "build_supernet",
           "parameter_free_share", "alpha_entropy", "largest_weight", "channel_shuffle", "edge_weights", "MODES",
           "EDGES"]

MODES = ("softmax", "gumbel")


class EdgeWeights:
    """The op weights of the current forward pass, shared by all mixed ops of one supernet (plain data, not
    a module). ``weights[slot]`` is ``(rows, ops)``; ``index[slot]`` is the sampled op per row (gumbel mode)
    or absent; ``edges[slot]`` is the normalised weight of every row's edge (edge normalisation) or absent."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] = {}
        self.index: dict[str, list[int]] = {}
        self.edges: dict[str, torch.Tensor] = {}


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``(N, C, H, W)`` across ``groups`` (ShuffleNet; PC-DARTS)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedOp(nn.Module):
    """The candidate ops of one row of slot ``slot``; output = weighted sum (softmax mode) or the sampled op
    (gumbel mode). ``zero`` flags ops that output zeros (skipped, they add nothing). With ``partial > 1`` the
    ops see only the first ``C/partial`` channels (conv edges; ``stride`` 2 pools the bypass)."""

    def __init__(self, ops: Sequence[nn.Module], zero: Sequence[bool], holder: EdgeWeights, slot: str, row: int,
                 partial: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.zero = list(zero)
        self.holder = holder
        self.slot = slot
        self.row = row
        self.partial = partial
        self.bypass = nn.MaxPool2d(2, 2) if partial > 1 and stride == 2 else None

    def _mix(self, x: torch.Tensor) -> torch.Tensor:
        w = self.holder.weights[self.slot][self.row]
        index = self.holder.index.get(self.slot)
        if index is not None:
            i = index[self.row]
            return w[i] * self.ops[i](x)
        total: torch.Tensor | None = None
        for i, op in enumerate(self.ops):
            if self.zero[i]:
                continue
            out = w[i] * op(x)
            total = out if total is None else total + out
        if total is None:  # only zero ops: keep the shape of the first one
            total = self.ops[0](x)
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.partial == 1:
            out = self._mix(x)
        else:
            width = x.shape[1] // self.partial
            head, rest = x[:, :width], x[:, width:]
            if self.bypass is not None:
                rest = self.bypass(rest)
            out = channel_shuffle(torch.cat([self._mix(head), rest], dim=1), self.partial)
        scale = self.holder.edges.get(self.slot)
        return out if scale is None else out * scale[self.row]


class Supernet(nn.Module):
    """A compiled network whose searched edges are mixed ops, plus its architecture parameters
    ``alphas[slot]`` (``(rows, ops)``). ``mode`` and ``tau`` (Gumbel temperature) set how op weights are
    drawn; ``generator`` (owned, seeded) drives the Gumbel samples, so a saved generator state replays them."""

    def __init__(self, network: nn.Module, slots: Mapping[str, Slot], holder: EdgeWeights, *, seed: int = 0,
                 partial_channels: int = 1, edge_groups: Mapping[str, list[list[int]]] | None = None) -> None:
        super().__init__()
        self.network = network
        self.slots = dict(slots)
        self.holder = holder
        self.partial_channels = partial_channels
        init = torch.Generator().manual_seed(seed)
        self.alphas = nn.ParameterDict({
            name: nn.Parameter(1e-3 * torch.randn(slot.rows, len(slot.ops), generator=init))
            for name, slot in self.slots.items()
        })
        self.edge_groups = {k: [list(g) for g in v] for k, v in (edge_groups or {}).items()}
        self.betas = nn.ParameterDict({
            name: nn.Parameter(1e-3 * torch.randn(self.slots[name].rows, generator=init))
            for name in self.edge_groups
        })
        self.mode = "softmax"
        self.tau = 1.0
        self.generator = torch.Generator().manual_seed(seed + 1)

    # -- parameters ----------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values()) + list(self.betas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.network.parameters())

    def alpha_arrays(self) -> dict[str, np.ndarray]:
        """The architecture parameters as float64 arrays (what ``space.derive`` takes): ``alphas[slot]`` and,
        with edge normalisation, ``"<slot>.edges"`` (one beta per row)."""
        out = {k: v.detach().cpu().double().numpy().copy() for k, v in self.alphas.items()}
        out.update({k + EDGES: v.detach().cpu().double().numpy().copy() for k, v in self.betas.items()})
        return out

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set the architecture parameters from :meth:`alpha_arrays` output."""
        with torch.no_grad():
            for k, v in arrays.items():
                target = self.betas[k[: -len(EDGES)]] if k.endswith(EDGES) else self.alphas[k]
                target.copy_(torch.as_tensor(np.asarray(v), dtype=target.dtype))

    # -- forward -------------------------------------------------------------------------------
    def _draw(self) -> None:
        self.holder.weights, self.holder.index = {}, {}
        self.holder.edges = {name: _group_softmax(beta, self.edge_groups[name]) for name, beta in self.betas.items()}
        for name, alpha in self.alphas.items():
            if self.mode == "softmax":
                self.holder.weights[name] = F.softmax(alpha, dim=-1)
                continue
            u = torch.rand(alpha.shape, generator=self.generator).clamp_(1e-10, 1.0 - 1e-7).to(alpha.device)
            logits = (alpha.log_softmax(dim=-1) - torch.log(-torch.log(u))) / self.tau
            soft = logits.softmax(dim=-1)
            index = soft.argmax(dim=-1)
            hard = torch.zeros_like(soft).scatter_(-1, index.unsqueeze(-1), 1.0)
            self.holder.weights[name] = hard - soft.detach() + soft
            self.holder.index[name] = index.tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode not in MODES:
            raise ConfigError(f"supernet mode = {self.mode!r}; expected one of {', '.join(MODES)}")
        self._draw()
        return self.network(x)


def _group_softmax(beta: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """``beta`` softmax-normalised within each group of rows (differentiable)."""
    out = torch.zeros_like(beta)
    for group in groups:
        idx = torch.tensor(group, device=beta.device)
        out = out.index_copy(0, idx, beta.index_select(0, idx).softmax(dim=0))
    return out


def _edge_factory(slots: Mapping[str, Slot], holder: EdgeWeights, partial: int) -> Callable[[EdgeSite], nn.Module]:
    rows = {name: {edge: i for i, edge in enumerate(slot.edges)} for name, slot in slots.items()}

    def make(site: EdgeSite) -> nn.Module:
        slot = slots[site.cell]
        row = rows[site.cell][(site.src, site.dst)]
        if site.family == "conv":
            d = site.dims
            c_in, c_out, stride, affine = int(d["C_in"]), int(d["C_out"]), int(d["stride"]), bool(d["affine"])
            k = partial
            if k > 1 and (c_in != c_out or c_in % k):
                raise ConfigError(f"partial_channels = {k}: edge {site.src}->{site.dst} of cell {site.cell!r} maps "
                                  f"{c_in} -> {c_out} channels; partial channels need equal widths divisible by {k}")
            ops = [CONV_OPS.create(op, c_in // k, c_out // k, stride, affine) for op in slot.ops]
            zero = [CONV_OPS.get(op).zero for op in slot.ops]
            return MixedOp(ops, zero, holder, site.cell, row, k, stride)
        if partial > 1:
            raise ConfigError(f"partial_channels = {partial}: only conv spaces split channels; use 1 for "
                              f"{site.family} cells")
        d_model, seq_len = int(site.dims["d_model"]), int(site.dims["seq_len"])
        ops = [SEQUENCE_OPS.create(op, d_model, seq_len) for op in slot.ops]
        return MixedOp(ops, [SEQUENCE_OPS.get(op).zero for op in slot.ops], holder, site.cell, row)

    return make


class SupernetSource(Protocol):
    """What :func:`build_supernet` compiles: a space that describes its supernet as data."""

    def supernet_spec(self) -> SupernetSpec: ...


def _macro_sites(spec: SupernetSpec) -> dict[str, MacroSite]:
    """The compiler's site of every macro slot, checked against the template's skeleton."""
    skeleton = spec.template.macro.get("skeleton")
    sites = {}
    for name, slot in spec.slots.items():
        if slot.macro is not None:
            site = MACRO_SITES.get(slot.macro)
            if site.skeleton != skeleton:
                raise ConfigError(f"supernet slot {name!r}: macro setting {slot.macro!r} is searchable in the "
                                  f"{site.skeleton!r} skeleton, not in {skeleton!r}")
            sites[name] = site
    return sites


def build_supernet(space: SupernetSource | SupernetSpec, input_shape: Sequence[int], num_classes: int, *,
                   seed: int = 0, partial_channels: int = 1, edge_normalization: bool = False) -> Supernet:
    """The continuous relaxation of ``space`` (or of a :class:`SupernetSpec`), compiled by the same skeleton as
    its members: the template with a :class:`MixedOp` on each edge of every cell slot and at the macro site of
    every macro slot. ``partial_channels`` > 1 is PC-DARTS' channel sampling (conv cells) and
    ``edge_normalization`` its edge weights, normalised over the edges of a cell slot entering the same node.
    Weights and architecture parameters are initialised from ``seed``. Spaces without a supernet raise
    :class:`ConfigError`."""
    spec = space if isinstance(space, SupernetSpec) else space.supernet_spec()
    if not is_int(partial_channels) or partial_channels < 1:
        raise ConfigError(f"partial_channels = {partial_channels!r}: must be an integer >= 1 (1 = off)")
    holder = EdgeWeights()
    cells = spec.cell_slots
    sites = _macro_sites(spec)
    with seeded(seed):
        network = build_model(spec.template, input_shape, num_classes,
                              edge_op=_edge_factory(cells, holder, partial_channels))
        for name, site in sites.items():  # after the network, as the candidates draw from the seeded RNG
            candidates = [site.build(value, spec.template.macro, tuple(input_shape)) for value in spec.slots[name].ops]
            setattr(network, site.attribute, MixedOp(candidates, [False] * len(candidates), holder, name, 0))
    groups = {}
    if edge_normalization:
        for name, slot in cells.items():
            groups[name] = [[i for i, (_, d) in enumerate(slot.edges) if d == dst]
                            for dst in sorted({d for _, d in slot.edges})]
    return Supernet(network, spec.slots, holder, seed=seed, partial_channels=partial_channels, edge_groups=groups)


def parameter_free_share(arch: Architecture, cells: Sequence[str]) -> float:
    """Share of the edges of ``cells`` whose op has no parameters (none, skip, pooling): the collapse signal."""
    total = free = 0
    for name in cells:
        cell = arch.cell(name)
        table = CONV_OPS if cell.family == "conv" else SEQUENCE_OPS
        for _, _, op in cell.edges:
            total += 1
            free += int(op in table and table.get(op).parameter_free)
    return free / total if total else 0.0


def alpha_entropy(alphas: Mapping[str, np.ndarray]) -> float:
    """Mean entropy of ``softmax(alpha)`` over all rows (edge weights left out), divided by ``log(ops)``:
    1 = uniform, 0 = one-hot."""
    values = []
    for name, a in alphas.items():
        if name.endswith(EDGES):
            continue
        a = np.asarray(a, dtype=np.float64)
        if a.shape[-1] < 2:
            continue
        p = np.exp(a - a.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        h = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1) / np.log(a.shape[-1])
        values.extend(h.tolist())
    return float(np.mean(values)) if values else 0.0


def largest_weight(alphas: Mapping[str, np.ndarray]) -> float:
    """The largest op weight ``softmax(alpha)`` of any row (edge weights left out): ``1 / ops`` when uniform."""
    best = 0.0
    for name, a in alphas.items():
        if name.endswith(EDGES):
            continue
        a = np.asarray(a, dtype=np.float64)
        p = np.exp(a - a.max(axis=-1, keepdims=True))
        best = max(best, float((p / p.sum(axis=-1, keepdims=True)).max()))
    return best
