"""The NAS-Bench-201 space (Dong & Yang, ICLR 2020): a 4-node cell, 6 edges, 5 ops, 15,625 members.

The cell is stacked in NAS-Bench-201's macro skeleton: a 3x3 stem of ``C`` channels, three stages of
``N`` cells with ``C``, ``2C``, ``4C`` channels separated by residual reduction blocks, then BN-ReLU,
global average pooling and a linear classifier. With ``C=16, N=5`` the compiled networks have exactly
the parameter counts the benchmark reports.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from nas.core.checks import check_choices, check_int
from nas.core.errors import InvalidArchitectureError
from nas.graph.architecture import Architecture, Cell, freeze_macro
from nas.graph.nb201 import NB201_OPS, nb201_string
from nas.graph.ops import CONV_OPS
from search_spaces.base import MAX_DEPTH, MAX_WIDTH, SearchSpace, dense_edges
from search_spaces.slots import Slot, SupernetSpec

__all__ = ["NB201Space", "NB201_OPS"]

_EDGES = dense_edges(4)


class NB201Space(SearchSpace):
    """NAS-Bench-201. Options: ``C`` (stem channels, 16), ``N`` (cells per stage, 5), ``ops`` (the benchmark's five
    by default; any op of the ``conv`` family, registered ones included, but the NAS-Bench-201 table knows only
    the five)."""

    name = "nb201"
    input_kind = "image"

    def __init__(self, *, C: int = 16, N: int = 5, ops: list[str] | tuple[str, ...] = NB201_OPS) -> None:
        self.C = check_int(f"{self.name} option C", C, minimum=1, maximum=MAX_WIDTH)
        self.N = check_int(f"{self.name} option N", N, minimum=1, maximum=MAX_DEPTH)
        # any op of the conv family: the benchmark's five, the other built-ins, and ops added with register_op
        self.ops = check_choices(f"{self.name} option ops", ops, CONV_OPS.names())
        layers: list[list[Any]] = []
        for stage in range(3):
            if stage:
                layers.append(["resblock", C * 2**stage])
            layers += [["cell", C * 2**stage] for _ in range(N)]
        self._macro = freeze_macro({
            "skeleton": "cells",
            "stem_channels": C,
            "stem_kernel": 3,
            "layers": layers,
            "head_preact": True,
            "head_pool": "avg",
            "head_hidden": [],
        })

    def options(self) -> dict[str, Any]:
        return {"C": self.C, "N": self.N, "ops": list(self.ops)}

    def decision_sizes(self) -> list[int]:
        return [len(self.ops)] * len(_EDGES)

    def decision_names(self) -> list[str]:
        return [f"edge_{s}_{d}" for s, d in _EDGES]

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        return [list(self.ops) for _ in _EDGES]

    def _decode(self, decisions: list[int]) -> Architecture:
        edges = tuple((s, d, self.ops[v]) for (s, d), v in zip(_EDGES, decisions))
        cell = Cell(family="conv", inputs=1, nodes=4, edges=edges, output=(3,))
        return Architecture(space=self.name, cells={"cell": cell}, macro=self._macro)

    def _encode(self, arch: Architecture) -> list[int]:
        cell = arch.cell("cell")
        ops = {(s, d): op for s, d, op in cell.edges}
        return [self.ops.index(ops[e]) for e in _EDGES]

    # -- one-shot ------------------------------------------------------------------------------------
    searched_cells = ("cell",)

    def supernet_spec(self) -> SupernetSpec:
        """Every op on every edge of the cell."""
        return SupernetSpec(self._decode([0] * len(_EDGES)), {"cell": Slot(self.ops, tuple(_EDGES))})

    def derive(self, alphas: Mapping[str, Any]) -> Architecture:
        a = self._alpha_rows(alphas, "cell", (len(_EDGES), len(self.ops)))
        return self._decode([int(i) for i in a.argmax(axis=1)])

    def enumerate(self) -> Iterator[Architecture]:
        """Every member, in decision order (the last edge varies fastest)."""
        for decisions in itertools.product(range(len(self.ops)), repeat=len(_EDGES)):
            yield self._decode(list(decisions))

    # -- NAS-Bench-201 strings ------------------------------------------------------------------
    def from_string(self, text: str) -> Architecture:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; errors name the part and what was expected."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"an NB201 string must be text, got {type(text).__name__}")
        groups = text.split("+")
        if len(groups) != 3:
            raise InvalidArchitectureError(
                f"NB201 string {text!r} has {len(groups)} node groups separated by '+'; expected 3"
            )
        decisions: dict[tuple[int, int], int] = {}
        for node, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise InvalidArchitectureError(f"NB201 string node {node} group {group!r} must look like |op~0|")
            items = group[1:-1].split("|")
            if len(items) != node:
                raise InvalidArchitectureError(
                    f"NB201 string node {node} group {group!r} has {len(items)} edges; expected {node}"
                )
            for src, item in enumerate(items):
                op, sep, inp = item.partition("~")
                if not sep or inp != str(src):
                    raise InvalidArchitectureError(
                        f"NB201 string node {node}: edge {item!r} should be 'op~{src}'"
                    )
                if op not in self.ops:
                    raise InvalidArchitectureError(
                        f"NB201 string node {node}: unknown op {op!r}; known: {', '.join(self.ops)}"
                    )
                decisions[(src, node)] = self.ops.index(op)
        return self._decode([decisions[e] for e in _EDGES])

    def to_string(self, arch: Architecture) -> str:
        """The NAS-Bench-201 string of a member."""
        decisions = self.encode(arch)
        return nb201_string({e: self.ops[v] for e, v in zip(_EDGES, decisions)})
