"""The ``cell`` space: a cell space declared in YAML from the op tables, without Python.

::

    space: {name: cell, options: {skeleton: nb201, nodes: 3, ops: [skip_connect, nor_conv_3x3, avg_pool_3x3],
                                  C: 16, N: 5}}
    # a hybrid cell mixing temporal convolution and self-attention, on sequences:
    space: {name: cell, options: {skeleton: sequence, nodes: 3, ops: [skip_connect, conv1d_3, mhsa_2, ffn],
                                  C: 32, N: 2}}

``skeleton`` decides the network the cells are stacked in and the op family the edges choose from:

============ ======== ======== ===========================================================================
skeleton     data     ops      network
============ ======== ======== ===========================================================================
``nb201``    image    conv     NAS-Bench-201's: stem of ``C`` channels, three stages of ``N`` cells (``C``, ``2C``,
                               ``4C`` channels) joined by residual reduction blocks; one input, dense edges
``darts``    image    conv     DARTS' evaluation network of ``N`` cells (``N >= 3``), ``C`` initial channels; a
                               normal and a reduction cell with two inputs, each node picking two of its
                               predecessors and an op for each
``sequence`` sequence sequence ``N`` stacked cells of width ``C`` (``d_model``), dense edges, and a choice of
                               positional encoding; conv (``conv1d_*``), attention (``mhsa_*``), recurrent and
                               feed-forward ops mix freely
============ ======== ======== ===========================================================================

``nodes`` counts the nodes a cell computes (its inputs aside): 3 for ``nb201`` and ``sequence``, 4 for ``darts`` by
default. ``ops`` must come from the skeleton's op family (``nas.graph.ops.OP_TABLES``, registered ops included;
the README lists the built-in ones); an op of another family is refused with the family it belongs to. The
members are those of the space the skeleton generalises (``nb201``, ``darts``, ``transformer``), tagged ``cell``.
"""

from __future__ import annotations

from typing import Any

from nas.core.checks import check_choice, check_choices, check_int
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture, Cell, freeze_macro
from nas.graph.nb201 import NB201_OPS
from nas.graph.ops import OP_TABLES
from search_spaces.base import SearchSpace, dense_edges
from search_spaces.darts import _DISCRETE_OPS, DartsSpace
from search_spaces.transformer import TRANSFORMER_OPS, TransformerSpace

__all__ = ["CellSpace", "SKELETONS"]

#: skeleton -> (input kind, op family, default nodes, default ops)
SKELETONS: dict[str, tuple[str, str, int, tuple[str, ...]]] = {
    "nb201": ("image", "conv", 3, tuple(NB201_OPS)),
    "darts": ("image", "conv", 4, tuple(_DISCRETE_OPS)),
    "sequence": ("sequence", "sequence", 3, tuple(TRANSFORMER_OPS)),
}


class CellSpace(SearchSpace):
    """A cell space declared by its options (see the module docstring): ``skeleton`` (``nb201``), ``nodes``
    (per skeleton), ``ops`` (per skeleton), ``C`` (16) and ``N`` (5)."""

    name = "cell"
    input_kind = "image"

    def __init__(self, *, skeleton: str = "nb201", nodes: int | None = None, ops: list[str] | None = None,
                 C: int = 16, N: int = 5) -> None:
        self.skeleton = check_choice(f"{self.name} option skeleton", skeleton, list(SKELETONS))
        kind, family, default_nodes, default_ops = SKELETONS[skeleton]
        self.input_kind = kind  # type: ignore[misc]  # a ClassVar, set per instance by the skeleton
        self.nodes = check_int(f"{self.name} option nodes", default_nodes if nodes is None else nodes, minimum=1)
        self.C = check_int(f"{self.name} option C", C, minimum=1)
        self.N = check_int(f"{self.name} option N", N, minimum=3 if skeleton == "darts" else 1)
        known = [op for op in OP_TABLES.get(family).names() if not op.startswith("pe_")]
        if isinstance(ops, (list, tuple)):
            for op in ops:
                other = [f for f in OP_TABLES.names() if f != family and isinstance(op, str)
                         and op in OP_TABLES.get(f)]
                if op not in known and other:
                    raise ConfigError(f"{self.name} option ops = {list(ops)}: {op!r} is a {other[0]} op; skeleton "
                                      f"{skeleton!r} takes "
                                      f"{family} ops: {', '.join(known)}")
        self.ops = check_choices(f"{self.name} option ops", default_ops if ops is None else ops, known)
        self._inner: SearchSpace | None = None
        try:
            if skeleton == "darts":
                self._inner = DartsSpace(C=self.C, layers=self.N, steps=self.nodes, ops=self.ops)
            elif skeleton == "sequence":
                self._inner = TransformerSpace(nodes=self.nodes + 1, num_cells=self.N, d_model=self.C, ops=self.ops)
        except ConfigError as err:  # worded for the inner space's options: name ours
            text = str(err).replace("transformer option d_model", f"{self.name} option C")
            raise ConfigError(text.replace("darts option", f"{self.name} option")) from None
        self._edges = dense_edges(self.nodes + 1)
        layers: list[list[Any]] = []
        for stage in range(3):
            if stage:
                layers.append(["resblock", C * 2**stage])
            layers += [["cell", C * 2**stage] for _ in range(N)]
        self._macro = freeze_macro({"skeleton": "cells", "stem_channels": C, "stem_kernel": 3, "layers": layers,
                                    "head_preact": True, "head_pool": "avg", "head_hidden": []})

    def options(self) -> dict[str, Any]:
        return {"skeleton": self.skeleton, "nodes": self.nodes, "ops": list(self.ops), "C": self.C, "N": self.N}

    def decision_sizes(self) -> list[int]:
        if self._inner is not None:
            return self._inner.decision_sizes()
        return [len(self.ops)] * len(self._edges)

    def decision_names(self) -> list[str]:
        if self._inner is not None:
            return self._inner.decision_names()
        return [f"edge_{s}_{d}" for s, d in self._edges]

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        if self._inner is not None:
            return self._inner.decision_choices()
        return [list(self.ops) for _ in self._edges]

    def _decode(self, decisions: list[int]) -> Architecture:
        if self._inner is not None:
            return self._inner._decode(decisions).replace(space=self.name)
        edges = tuple((s, d, self.ops[v]) for (s, d), v in zip(self._edges, decisions))
        cell = Cell(family="conv", inputs=1, nodes=self.nodes + 1, edges=edges, output=(self.nodes,))
        return Architecture(space=self.name, cells={"cell": cell}, macro=self._macro)

    def _encode(self, arch: Architecture) -> list[int]:
        if self._inner is not None:
            return self._inner._encode(arch)
        ops = {(s, d): op for s, d, op in arch.cell("cell").edges}
        return [self.ops.index(ops[e]) for e in self._edges]
