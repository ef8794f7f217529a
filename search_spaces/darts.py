"""The DARTS CNN space (Liu, Simonyan & Yang, ICLR 2019): a normal and a reduction cell, each with two
input nodes (the outputs of the two previous cells) and ``steps`` intermediate nodes that each pick two
distinct earlier nodes and an op for each; the cell output concatenates the intermediate nodes.

``DARTS_OPS`` are the 8 DARTS primitives; ``none`` belongs to the continuous relaxation (the supernet)
only, so discrete members choose among the other 7, as in DARTS' derivation. With the default 4 steps
the space holds ``(180 * 7**8) ** 2`` (about 1.1e18) members. Published genotypes load by name.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.core.checks import check_choices, check_int
from nas.core.errors import InvalidArchitectureError, UnknownNameError
from nas.graph.architecture import Architecture, Cell, freeze_macro
from nas.graph.ops import CONV_OPS
from search_spaces.base import MAX_DEPTH, MAX_NODES, MAX_WIDTH, SearchSpace
from search_spaces.slots import EDGES, Slot, SupernetSpec, edge_weights

__all__ = ["DartsSpace", "DARTS_OPS", "GENOTYPES"]

DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
_DISCRETE_OPS = DARTS_OPS[1:]
_CELLS = ("normal", "reduce")

#: Published genotypes, in quark0/darts ``genotypes.py`` form: (op, input) pairs, two per node.
GENOTYPES: dict[str, dict[str, list[tuple[str, int]]]] = {
    "DARTS_V1": {
        "normal": [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                   ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                   ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    },
    "DARTS_V2": {
        "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                   ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                   ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    },
}


class DartsSpace(SearchSpace):
    """DARTS CNN space. Options: ``C`` (initial channels, 16), ``layers`` (cells, 8), ``steps``
    (intermediate nodes, 4), ``ops`` (the discrete op choices)."""

    name = "darts"
    input_kind = "image"

    def __init__(self, *, C: int = 16, layers: int = 8, steps: int = 4,
                 ops: Sequence[str] = _DISCRETE_OPS) -> None:
        self.C = check_int(f"{self.name} option C", C, minimum=1, maximum=MAX_WIDTH)
        self.layers = check_int(f"{self.name} option layers", layers, minimum=3, maximum=MAX_DEPTH)
        self.steps = check_int(f"{self.name} option steps", steps, minimum=1, maximum=MAX_NODES)
        # DARTS' primitives by default; any op of the conv family, registered ones included
        self.ops = check_choices(f"{self.name} option ops", ops, CONV_OPS.names())
        # input pairs per node: node i (0-based) chooses 2 of its i + 2 predecessors
        self._pairs = [list(itertools.combinations(range(i + 2), 2)) for i in range(self.steps)]
        self._macro = freeze_macro({"skeleton": "darts", "C": C, "layers": layers, "stem_multiplier": 3})

    def options(self) -> dict[str, Any]:
        return {"C": self.C, "layers": self.layers, "steps": self.steps, "ops": list(self.ops)}

    def decision_sizes(self) -> list[int]:
        per_cell = []
        for pairs in self._pairs:
            per_cell += [len(pairs), len(self.ops), len(self.ops)]
        return per_cell * len(_CELLS)

    def decision_names(self) -> list[str]:
        names = []
        for cell in _CELLS:
            for i in range(self.steps):
                names += [f"{cell}_node{i + 2}_inputs", f"{cell}_node{i + 2}_op_a", f"{cell}_node{i + 2}_op_b"]
        return names

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        per_cell: list[list[str | int | float | bool]] = []
        for pairs in self._pairs:
            per_cell += [[f"{a}+{b}" for a, b in pairs], list(self.ops), list(self.ops)]
        return per_cell * len(_CELLS)

    def _cell(self, reduction: bool, nodes: list[tuple[tuple[int, int], str, str]]) -> Cell:
        edges = []
        for i, ((a, b), op_a, op_b) in enumerate(nodes):
            edges += [(a, i + 2, op_a), (b, i + 2, op_b)]
        return Cell(family="conv", inputs=2, nodes=self.steps + 2, edges=tuple(edges),
                    output=tuple(range(2, self.steps + 2)), combine="concat", fan_in=2, reduction=reduction)

    def _decode(self, decisions: list[int]) -> Architecture:
        cells = {}
        per = 3 * self.steps
        for c, name in enumerate(_CELLS):
            d = decisions[c * per:(c + 1) * per]
            nodes = [(self._pairs[i][d[3 * i]], self.ops[d[3 * i + 1]], self.ops[d[3 * i + 2]])
                     for i in range(self.steps)]
            cells[name] = self._cell(name == "reduce", nodes)
        return Architecture(space=self.name, cells=cells, macro=self._macro)

    def _encode(self, arch: Architecture) -> list[int]:
        decisions: list[int] = []
        for name in _CELLS:
            cell = arch.cell(name)
            for i in range(self.steps):
                ins = cell.in_edges(i + 2)
                if len(ins) != 2:
                    raise InvalidArchitectureError(f"cell {name!r} node {i + 2} has {len(ins)} inputs; expected 2")
                (a, op_a), (b, op_b) = ins
                decisions += [self._pairs[i].index((a, b)), self.ops.index(op_a), self.ops.index(op_b)]
        return decisions

    # -- one-shot: every edge to every node, ops + none (DARTS' continuous relaxation) ---------------
    searched_cells = _CELLS

    def _supernet_edges(self) -> tuple[tuple[int, int], ...]:
        return tuple((src, dst) for dst in range(2, self.steps + 2) for src in range(dst))

    def supernet_spec(self) -> SupernetSpec:
        """Both cells with an edge from every earlier node to every intermediate node, each choosing among
        ``none`` and this space's ops."""
        edges = self._supernet_edges()
        dense = {name: Cell(family="conv", inputs=2, nodes=self.steps + 2,
                            edges=tuple((s, d, self.ops[0]) for s, d in edges),
                            output=tuple(range(2, self.steps + 2)), combine="concat", reduction=name == "reduce")
                 for name in _CELLS}
        template = Architecture(space=self.name, cells=dense, macro=self._macro)
        ops = ("none", *(op for op in self.ops if op != "none"))
        return SupernetSpec(template, {name: Slot(ops, edges) for name in _CELLS})

    def derive(self, alphas: Mapping[str, Any]) -> Architecture:
        """DARTS' derivation: per node, the two incoming edges whose strongest non-``none`` op weighs most
        (times the edge's weight with edge normalisation), each with that op."""
        edges = self._supernet_edges()
        ops = tuple(op for op in self.ops if op != "none")
        genotype = {}
        for name in _CELLS:
            a = self._alpha_rows(alphas, name, (len(edges), len(ops) + 1))
            w = np.exp(a - a.max(axis=1, keepdims=True))
            w = (w / w.sum(axis=1, keepdims=True))[:, 1:]
            if name + EDGES in alphas:  # edge normalisation: rank edges by op weight times edge weight
                betas = self._alpha_rows({name: np.asarray(alphas[name + EDGES]).reshape(-1, 1)}, name,
                                         (len(edges), 1))
                w = w * edge_weights(betas, edges)[:, None]
            pairs: list[tuple[str, int]] = []
            for dst in range(2, self.steps + 2):
                rows = [i for i, (_, d) in enumerate(edges) if d == dst]
                best = sorted(rows, key=lambda i: (-w[i].max(), edges[i][0]))[:2]
                pairs += [(ops[int(w[i].argmax())], edges[i][0]) for i in sorted(best, key=lambda i: edges[i][0])]
            genotype[name] = pairs
        return self.from_genotype(genotype)

    # -- genotypes -----------------------------------------------------------------------------
    def from_genotype(self, genotype: Mapping[str, Sequence[tuple[str, int]]]) -> Architecture:
        """Build a member from DARTS genotype lists ``{"normal": [(op, input), ...], "reduce": [...]}``
        (two pairs per node, any order within a node; output = concat of all intermediate nodes)."""
        cells = {}
        for name in _CELLS:
            pairs = list(genotype.get(name, ()))
            if len(pairs) != 2 * self.steps:
                raise InvalidArchitectureError(
                    f"genotype {name!r} has {len(pairs)} (op, input) pairs; expected {2 * self.steps}"
                )
            nodes = []
            for i in range(self.steps):
                (op1, in1), (op2, in2) = sorted(pairs[2 * i:2 * i + 2], key=lambda p: p[1])
                if in1 == in2 or not 0 <= in1 < in2 < i + 2:
                    raise InvalidArchitectureError(
                        f"genotype {name!r} node {i + 2} takes inputs {in1} and {in2}; "
                        f"expected two distinct nodes among 0..{i + 1}"
                    )
                for op in (op1, op2):
                    if op not in self.ops:
                        raise InvalidArchitectureError(
                            f"genotype {name!r} node {i + 2}: op {op!r} is not in this space's ops {list(self.ops)}"
                        )
                nodes.append(((in1, in2), op1, op2))
            cells[name] = self._cell(name == "reduce", nodes)
        return Architecture(space=self.name, cells=cells, macro=self._macro)

    def named(self, name: str) -> Architecture:
        """A published genotype by name (``DARTS_V1``, ``DARTS_V2``)."""
        if name not in GENOTYPES:
            raise UnknownNameError("DARTS genotype", name, GENOTYPES)
        return self.from_genotype(GENOTYPES[name])

    def to_genotype(self, arch: Architecture) -> dict[str, list[tuple[str, int]]]:
        """The DARTS genotype lists of a member."""
        self.check(arch)
        out = {}
        for name in _CELLS:
            cell = arch.cell(name)
            out[name] = [(op, src) for node in range(2, self.steps + 2) for src, op in cell.in_edges(node)]
        return out
