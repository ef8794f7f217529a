"""The sequence op table: recurrent and attention ops on ``(N, T, d)`` with one signature.

Factory signature: ``factory(d_model, seq_len) -> nn.Module``, output shape equal to input shape.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.graph.ops.attention import (
    Conv1dOp,
    FeedForward,
    LearnedPositionalEncoding,
    SelfAttention,
    SinusoidalPositionalEncoding,
)
from nas.graph.ops.base import OpTable
from nas.graph.ops.recurrent import RecurrentLayer

__all__ = ["SEQUENCE_OPS", "SequenceZero"]


class SequenceZero(nn.Module):
    """The ``none`` op on sequences: zeros of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


SEQUENCE_OPS = OpTable("sequence", "factory(d_model, seq_len)")
SEQUENCE_OPS.add("none", lambda d, t: SequenceZero(), zero=True, parameter_free=True)
SEQUENCE_OPS.add("skip_connect", lambda d, t: nn.Identity(), identity=True, parameter_free=True)
SEQUENCE_OPS.add("lstm", lambda d, t: RecurrentLayer("lstm", d))
SEQUENCE_OPS.add("gru", lambda d, t: RecurrentLayer("gru", d))
SEQUENCE_OPS.add("bilstm", lambda d, t: RecurrentLayer("lstm", d, bidirectional=True))
SEQUENCE_OPS.add("bigru", lambda d, t: RecurrentLayer("gru", d, bidirectional=True))
for _h in (1, 2, 4, 8):
    SEQUENCE_OPS.add(f"mhsa_{_h}", lambda d, t, h=_h: SelfAttention(d, h))
SEQUENCE_OPS.add("ffn", lambda d, t: FeedForward(d))
for _k in (3, 5):
    SEQUENCE_OPS.add(f"conv1d_{_k}", lambda d, t, k=_k: Conv1dOp(d, k))
SEQUENCE_OPS.add("layer_norm", lambda d, t: nn.LayerNorm(d))
SEQUENCE_OPS.add("pe_sinusoidal", lambda d, t: SinusoidalPositionalEncoding(d, t), parameter_free=True)
SEQUENCE_OPS.add("pe_learned", lambda d, t: LearnedPositionalEncoding(d, t))
