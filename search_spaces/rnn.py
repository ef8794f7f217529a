"""Recurrent space for sequences: a DARTS-RNN cell plus layer-level choices.

The architecture holds two cells. ``rnn`` is a DARTS-RNN cell (Liu et al., ICLR 2019): node 0 mixes the
input and the previous hidden state, each further node picks one predecessor and an activation
(tanh / relu / sigmoid / identity), and the new hidden state is the mean of all intermediate nodes.
``body`` is a chain of ``num_layers`` recurrent layers, each one of: the ``rnn`` cell (``cell:rnn``),
LSTM, GRU, bidirectional LSTM, bidirectional GRU. The sequence skeleton embeds the input to ``d_model``,
runs ``body``, normalises and pools over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.core.checks import check_choices, check_int
from nas.core.errors import ConfigError, UnknownNameError
from nas.graph.architecture import Architecture, Cell, freeze_macro
from search_spaces.base import MAX_DEPTH, MAX_NODES, MAX_WIDTH, SearchSpace

__all__ = ["RNNSpace", "RNN_LAYER_OPS", "RNN_GENOTYPES"]

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
RNN_LAYER_OPS = ("cell:rnn", "lstm", "gru", "bilstm", "bigru")

#: Published DARTS recurrent cells (quark0/darts ``rnn/genotypes.py``): (activation, predecessor) per node.
RNN_GENOTYPES: dict[str, list[tuple[str, int]]] = {
    "DARTS_V1": [("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1), ("relu", 5),
                 ("relu", 1)],
    "DARTS_V2": [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                 ("tanh", 3), ("relu", 5)],
}


class RNNSpace(SearchSpace):
    """Options: ``steps`` (cell nodes after node 0, 8), ``num_layers`` (2), ``d_model`` (64),
    ``pool`` (``mean`` or ``last``), ``layer_ops`` (the layer choices)."""

    name = "rnn"
    input_kind = "sequence"

    def __init__(self, *, steps: int = 8, num_layers: int = 2, d_model: int = 64, pool: str = "mean",
                 layer_ops: Sequence[str] = RNN_LAYER_OPS) -> None:
        self.steps = check_int(f"{self.name} option steps", steps, minimum=1, maximum=MAX_NODES)
        self.num_layers = check_int(f"{self.name} option num_layers", num_layers, minimum=1, maximum=MAX_DEPTH)
        self.d_model = check_int(f"{self.name} option d_model", d_model, minimum=2, maximum=MAX_WIDTH)
        if d_model % 2:
            raise ConfigError(f"rnn option d_model = {d_model}: bidirectional layers need an even width")
        if pool not in ("mean", "last"):
            raise ConfigError(f"rnn option pool = {pool!r}: expected 'mean' or 'last'")
        self.pool = pool
        self.layer_ops = check_choices(f"{self.name} option layer_ops", layer_ops, RNN_LAYER_OPS)
        self._macro = freeze_macro({"skeleton": "sequence", "d_model": d_model, "pos_encoding": "none",
                                    "stack": ["body"], "pool": pool})

    def options(self) -> dict[str, Any]:
        return {"steps": self.steps, "num_layers": self.num_layers, "d_model": self.d_model, "pool": self.pool,
                "layer_ops": list(self.layer_ops)}

    def decision_sizes(self) -> list[int]:
        sizes = []
        for node in range(1, self.steps + 1):
            sizes += [node, len(ACTIVATIONS)]
        return sizes + [len(self.layer_ops)] * self.num_layers

    def decision_names(self) -> list[str]:
        names = []
        for node in range(1, self.steps + 1):
            names += [f"rnn_node{node}_input", f"rnn_node{node}_activation"]
        return names + [f"layer{i}" for i in range(self.num_layers)]

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        choices: list[list[str | int | float | bool]] = []
        for node in range(1, self.steps + 1):
            choices += [list(range(node)), list(ACTIVATIONS)]
        return choices + [list(self.layer_ops) for _ in range(self.num_layers)]

    def _rnn_cell(self, nodes: list[tuple[str, int]]) -> Cell:
        edges = tuple((pred, i + 1, act) for i, (act, pred) in enumerate(nodes))
        return Cell(family="rnn", inputs=1, nodes=self.steps + 1, edges=edges,
                    output=tuple(range(1, self.steps + 1)), combine="mean", fan_in=1)

    def _arch(self, nodes: list[tuple[str, int]], layers: list[str]) -> Architecture:
        body = Cell(family="sequence", inputs=1, nodes=self.num_layers + 1,
                    edges=tuple((i, i + 1, op) for i, op in enumerate(layers)), output=(self.num_layers,))
        return Architecture(space=self.name, cells={"rnn": self._rnn_cell(nodes), "body": body}, macro=self._macro)

    def _decode(self, decisions: list[int]) -> Architecture:
        nodes = [(ACTIVATIONS[decisions[2 * i + 1]], decisions[2 * i]) for i in range(self.steps)]
        layers = [self.layer_ops[d] for d in decisions[2 * self.steps:]]
        return self._arch(nodes, layers)

    def _encode(self, arch: Architecture) -> list[int]:
        rnn, body = arch.cell("rnn"), arch.cell("body")
        decisions = []
        for node in range(1, self.steps + 1):
            ((pred, act),) = rnn.in_edges(node)
            decisions += [pred, ACTIVATIONS.index(act)]
        for i in range(self.num_layers):
            ((_, op),) = body.in_edges(i + 1)
            decisions.append(self.layer_ops.index(op))
        return decisions

    def named(self, name: str, layers: Sequence[str] | None = None) -> Architecture:
        """A published DARTS recurrent cell (``DARTS_V1``, ``DARTS_V2``) used in every layer
        (or in the given ``layers``)."""
        if name not in RNN_GENOTYPES:
            raise UnknownNameError("DARTS recurrent genotype", name, RNN_GENOTYPES)
        if self.steps != len(RNN_GENOTYPES[name]):
            raise ConfigError(f"genotype {name} has 8 nodes; build the space with steps=8, not {self.steps}")
        return self._arch(RNN_GENOTYPES[name], list(layers or ["cell:rnn"] * self.num_layers))
