"""Attention space for sequences: a densely connected cell (as in NAS-Bench-201) whose edges choose among
multi-head self-attention (2 or 4 heads), feed-forward, temporal convolution, LSTM, GRU, identity and
none, stacked ``num_cells`` times, plus a choice of positional encoding (none, sinusoidal, learned).

A Transformer encoder layer is a member: ``mhsa`` then ``ffn`` with identity (residual) edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.core.checks import check_choices, check_int
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture, Cell, freeze_macro
from nas.graph.ops import SEQUENCE_OPS
from search_spaces.base import MAX_DEPTH, MAX_NODES, MAX_WIDTH, SearchSpace, dense_edges
from search_spaces.slots import Slot, SupernetSpec

__all__ = ["TransformerSpace", "TRANSFORMER_OPS", "POS_ENCODINGS"]

TRANSFORMER_OPS = ("none", "skip_connect", "mhsa_2", "mhsa_4", "ffn", "conv1d_3", "lstm", "gru")
POS_ENCODINGS = ("none", "pe_sinusoidal", "pe_learned")

class TransformerSpace(SearchSpace):
    """Options: ``nodes`` (cell nodes including the input, 4), ``num_cells`` (2), ``d_model`` (64),
    ``pool`` (``mean`` or ``last``), ``ops`` (edge choices, any sequence op)."""

    name = "transformer"
    input_kind = "sequence"

    def __init__(self, *, nodes: int = 4, num_cells: int = 2, d_model: int = 64, pool: str = "mean",
                 ops: Sequence[str] = TRANSFORMER_OPS) -> None:
        self.nodes = check_int(f"{self.name} option nodes", nodes, minimum=2, maximum=MAX_NODES)
        self.num_cells = check_int(f"{self.name} option num_cells", num_cells, minimum=1, maximum=MAX_DEPTH)
        self.d_model = check_int(f"{self.name} option d_model", d_model, minimum=2, maximum=MAX_WIDTH)
        # any sequence op but the positional encodings (a macro choice), registered ones included
        cell_ops = [n for n in SEQUENCE_OPS.names() if not n.startswith("pe_")]
        self.ops = check_choices(f"{self.name} option ops", ops, cell_ops)
        heads = [int(op.split("_")[1]) for op in self.ops if op.startswith("mhsa_")]
        bad = [h for h in heads if d_model % h]
        if bad or (d_model % 2 and any(op.startswith("bi") for op in self.ops)):
            raise ConfigError(
                f"transformer option d_model = {d_model}: must be divisible by every head count {heads} "
                "and even for bidirectional ops"
            )
        if pool not in ("mean", "last"):
            raise ConfigError(f"transformer option pool = {pool!r}: expected 'mean' or 'last'")
        self.pool = pool
        self._edges = dense_edges(nodes)
        self._macros = [freeze_macro({"skeleton": "sequence", "d_model": d_model, "pos_encoding": pe,
                                      "stack": ["cell"] * num_cells, "pool": pool}) for pe in POS_ENCODINGS]

    def options(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "num_cells": self.num_cells, "d_model": self.d_model, "pool": self.pool,
                "ops": list(self.ops)}

    def decision_sizes(self) -> list[int]:
        return [len(self.ops)] * len(self._edges) + [len(POS_ENCODINGS)]

    def decision_names(self) -> list[str]:
        return [f"edge_{s}_{d}" for s, d in self._edges] + ["pos_encoding"]

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        choices: list[list[str | int | float | bool]] = [list(self.ops) for _ in self._edges]
        return [*choices, list(POS_ENCODINGS)]

    def _decode(self, decisions: list[int]) -> Architecture:
        edges = tuple((s, d, self.ops[v]) for (s, d), v in zip(self._edges, decisions))
        cell = Cell(family="sequence", inputs=1, nodes=self.nodes, edges=edges, output=(self.nodes - 1,))
        return Architecture(space=self.name, cells={"cell": cell}, macro=self._macros[decisions[-1]])

    # -- one-shot: a mixed op on every edge, and a mixed positional encoding --------------------------
    searched_cells = ("cell",)

    def supernet_spec(self) -> SupernetSpec:
        """Every op on every edge of the cell, and every positional encoding (a macro slot)."""
        slots = {"cell": Slot(self.ops, tuple(self._edges)), "pos_encoding": Slot(POS_ENCODINGS, macro="pos_encoding")}
        return SupernetSpec(self._decode([0] * len(self.decision_sizes())), slots)

    def derive(self, alphas: Mapping[str, Any]) -> Architecture:
        cell = self._alpha_rows(alphas, "cell", (len(self._edges), len(self.ops)))
        pos = self._alpha_rows(alphas, "pos_encoding", (1, len(POS_ENCODINGS)))
        return self._decode([int(i) for i in cell.argmax(axis=1)] + [int(pos.argmax())])

    def _encode(self, arch: Architecture) -> list[int]:
        ops = {(s, d): op for s, d, op in arch.cell("cell").edges}
        return [self.ops.index(ops[e]) for e in self._edges] + [POS_ENCODINGS.index(arch.macro["pos_encoding"])]
