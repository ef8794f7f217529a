"""Cell modules: one :class:`~nas.graph.architecture.Cell` turned into a ``torch.nn.Module``.

* :class:`ConvCell`     -- conv-family cells on ``(N, C, H, W)``.
* :class:`SequenceCell` -- sequence-family cells on ``(N, T, d)``.
* :func:`darts_rnn_layer` -- an rnn-family cell (DARTS-RNN, Liu et al. 2019) unrolled over time, as a
  :class:`~nas.graph.standalone.DartsRNNLayer`.

A node's value is the sum of its incoming edges' outputs. ``zero`` ops are skipped unless a node has
nothing else (then it is the zero tensor of the right shape).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import torch
from torch import nn

from nas.graph.architecture import Cell
from nas.graph.ops import CONV_OPS, RNN_ACTIVATIONS, SEQUENCE_OPS, OpTable
from nas.graph.standalone import DartsRNNLayer

__all__ = ["ConvCell", "SequenceCell", "DartsRNNLayer", "darts_rnn_layer", "EdgeSite", "EdgeOpFactory", "drop_path"]


@dataclass(frozen=True)
class EdgeSite:
    """Where an edge op goes: cell ``cell`` (its name in the architecture), edge ``src -> dst`` carrying
    ``op``, of op family ``family``, with the family's factory arguments ``dims`` (conv: ``C_in``, ``C_out``,
    ``stride``, ``affine``; sequence: ``d_model``, ``seq_len``)."""

    cell: str
    src: int
    dst: int
    op: str
    family: str
    dims: dict[str, int | bool]


#: Builds the module of an edge in place of the op table (supernets put mixed ops there).
EdgeOpFactory = Callable[[EdgeSite], nn.Module]


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Drops whole samples of an edge's output with probability ``prob`` (scaled to keep the mean)."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class _GraphCell(nn.Module):
    """Shared evaluation of a cell DAG: a plan of (node, [(edge index, src)]) in topological order.
    With ``custom`` edge modules (not from ``table``), every edge counts as live and droppable."""

    def __init__(self, cell: Cell, table: OpTable, make_op: Callable[[int, int, str], nn.Module],
                 custom: bool = False) -> None:
        super().__init__()
        self.n_inputs = cell.inputs
        self.combine = cell.combine
        self.output_nodes = list(cell.output)
        self.drop_prob = 0.0  # drop-path probability, set by trainers
        ops: list[nn.Module] = []
        plan: list[tuple[int, list[tuple[int, int]], list[tuple[int, int]]]] = []
        droppable: list[bool] = []
        #: ``(src, dst, op)`` of each module of ``ops``: what it computes, whatever its index (weight inheritance)
        self.edge_sites: list[tuple[int, int, str]] = []
        for node in nx.topological_sort(cell.graph):
            if node < cell.inputs:
                continue
            live: list[tuple[int, int]] = []
            zeros: list[tuple[int, int]] = []
            for src, op in cell.in_edges(node):
                spec = table.get(op) if op in table and not custom else None
                (zeros if spec is not None and spec.zero else live).append((len(ops), src))
                droppable.append(not (spec is not None and (spec.identity or spec.zero)))
                ops.append(make_op(src, node, op))
                self.edge_sites.append((src, node, op))
            plan.append((node, live, zeros))
        self.ops = nn.ModuleList(ops)
        self.plan = plan
        self.droppable = droppable

    def _run(self, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        states: list[torch.Tensor | None] = [None] * (self.n_inputs + len(self.plan))
        states[: self.n_inputs] = inputs
        drop = self.training and self.drop_prob > 0.0
        for node, live, zeros in self.plan:
            total: torch.Tensor | None = None
            for idx, src in live:
                out = self.ops[idx](states[src])
                if drop and self.droppable[idx]:
                    out = drop_path(out, self.drop_prob)
                total = out if total is None else total + out
            if total is None:
                idx, src = zeros[0]
                total = self.ops[idx](states[src])
            states[node] = total
        return states

    def _outputs(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The states of the cell's output nodes after a run on ``inputs`` (every node gets a state)."""
        states = self._run(inputs)
        outs = []
        for i in self.output_nodes:
            state = states[i]
            if state is None:
                raise RuntimeError(f"cell output node {i} was not computed")
            outs.append(state)
        return outs


class ConvCell(_GraphCell):
    """A conv-family cell. Edges leaving input ``i`` map ``C_ins[i] -> C`` channels (stride 2 when the
    cell is a reduction cell); inner edges map ``C -> C``. Output channels: ``C`` for sum/mean,
    ``len(output) * C`` for concat. ``edge_op`` (with the cell's ``name``) replaces the op table."""

    def __init__(self, cell: Cell, C_ins: list[int], C: int, affine: bool = True, *,
                 name: str = "cell", edge_op: EdgeOpFactory | None = None) -> None:
        if len(C_ins) != cell.inputs:
            raise ValueError(f"cell has {cell.inputs} inputs, got {len(C_ins)} input widths")
        stride = 2 if cell.reduction else 1

        def make(src: int, dst: int, op: str) -> nn.Module:
            dims: dict[str, int | bool] = (
                {"C_in": C_ins[src], "C_out": C, "stride": stride, "affine": affine} if src < cell.inputs
                else {"C_in": C, "C_out": C, "stride": 1, "affine": affine})
            if edge_op is not None:
                return edge_op(EdgeSite(name, src, dst, op, "conv", dims))
            return CONV_OPS.create(op, *dims.values())

        super().__init__(cell, CONV_OPS, make, custom=edge_op is not None)
        self.out_channels = C * len(cell.output) if cell.combine == "concat" else C

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        outs = self._outputs(list(inputs))
        if self.combine == "concat":
            return torch.cat(outs, dim=1)
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total / len(outs) if self.combine == "mean" else total


class SequenceCell(_GraphCell):
    """A sequence-family cell on ``(N, T, d)``; ``concat`` outputs are projected back to ``d``.
    ``cell_layers`` resolves ``cell:NAME`` ops to modules (e.g. a :class:`DartsRNNLayer`); ``edge_op``
    (with the cell's ``name``) replaces the op table."""

    def __init__(self, cell: Cell, d_model: int, seq_len: int,
                 cell_layers: Callable[[str], nn.Module] | None = None, *, name: str = "cell",
                 edge_op: EdgeOpFactory | None = None) -> None:
        def make(src: int, dst: int, op: str) -> nn.Module:
            if edge_op is not None:
                return edge_op(EdgeSite(name, src, dst, op, "sequence", {"d_model": d_model, "seq_len": seq_len}))
            if op.startswith("cell:"):
                if cell_layers is None:
                    raise ValueError(f"op {op!r} refers to a cell but no resolver was given")
                return cell_layers(op[5:])
            return SEQUENCE_OPS.create(op, d_model, seq_len)

        super().__init__(cell, SEQUENCE_OPS, make, custom=edge_op is not None)
        self.project = nn.Linear(len(cell.output) * d_model, d_model) if cell.combine == "concat" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self._outputs([x])
        if self.project is not None:
            return self.project(torch.cat(outs, dim=-1))
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total / len(outs) if self.combine == "mean" else total


def darts_rnn_layer(cell: Cell, d_in: int, hidden: int) -> DartsRNNLayer:
    """The :class:`DartsRNNLayer` of an rnn-family ``cell`` (one input node, one incoming edge per node
    carrying the node's activation), mapping ``(N, T, d_in) -> (N, T, hidden)``."""
    plan: list[tuple[int, int]] = []
    activations: list[nn.Module] = []
    for node in nx.topological_sort(cell.graph):
        if node < cell.inputs:
            continue
        ((src, op),) = cell.in_edges(node)
        plan.append((node, src))
        activations.append(RNN_ACTIVATIONS.create(op))
    return DartsRNNLayer(d_in, hidden, plan=plan, activations=activations, n_nodes=cell.nodes,
                         output_nodes=list(cell.output), combine=cell.combine)
