"""The recurrent op family: LSTM / GRU layers (plain and bidirectional) and DARTS-RNN node activations.

Sequence layers map ``(N, T, d)`` to ``(N, T, d)``; bidirectional variants use ``d // 2`` hidden
units per direction so their output keeps width ``d``. ``RNN_ACTIVATIONS`` holds the node
activations of a DARTS-RNN cell, signature ``factory() -> nn.Module``.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.core.errors import ShapeError
from nas.graph.ops.base import OpTable

__all__ = ["RecurrentLayer", "RNN_ACTIVATIONS"]


class RecurrentLayer(nn.Module):
    """A single-layer LSTM or GRU over ``(N, T, d)`` returning the full output sequence ``(N, T, d)``."""

    def __init__(self, kind: str, d_model: int, bidirectional: bool = False) -> None:
        super().__init__()
        if bidirectional and d_model % 2:
            raise ShapeError(f"a bidirectional {kind} needs an even d_model, got {d_model}; use an even width")
        hidden = d_model // 2 if bidirectional else d_model
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = cls(d_model, hidden, batch_first=True, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out


RNN_ACTIVATIONS = OpTable("rnn", "factory()")
RNN_ACTIVATIONS.add("tanh", nn.Tanh, parameter_free=True)
RNN_ACTIVATIONS.add("relu", nn.ReLU, parameter_free=True)
RNN_ACTIVATIONS.add("sigmoid", nn.Sigmoid, parameter_free=True)
# The DARTS-RNN 'identity' activation: the node still has its own weights and highway gate, so it is
# not an identity op for the canonical hash.
RNN_ACTIVATIONS.add("identity", nn.Identity, parameter_free=True)
