"""The attention op family: multi-head self-attention, positional encodings, feed-forward, layer norm, conv1d.

Every module maps ``(N, T, d)`` to ``(N, T, d)``. Sub-layers (attention, feed-forward, conv1d) are
pre-norm, as in modern Transformer encoders; residual connections come from the cell graph
(``skip_connect`` edges), not from inside the ops.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.core.errors import ShapeError
from nas.graph.standalone import SinusoidalPositionalEncoding

__all__ = [
    "SelfAttention",
    "FeedForward",
    "Conv1dOp",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
]


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        if d_model % heads:
            raise ShapeError(f"self-attention with {heads} heads needs d_model divisible by {heads}, got {d_model}")
        self.norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        out, _ = self.attn(y, y, y, need_weights=False)
        return out


class FeedForward(nn.Module):
    """Pre-norm position-wise feed-forward: LN -> Linear(d, m*d) -> GELU -> Linear(m*d, d)."""

    def __init__(self, d_model: int, multiplier: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, multiplier * d_model),
            nn.GELU(),
            nn.Linear(multiplier * d_model, d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv1dOp(nn.Module):
    """Pre-norm temporal convolution: LN -> Conv1d(d, d, k, 'same') -> GELU."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.conv = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return self.act(y)


class LearnedPositionalEncoding(nn.Module):
    """Adds a learned embedding per position (positions < ``max_len``)."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        self.pe = nn.Parameter(torch.zeros(1, max_len, d_model))
        nn.init.normal_(self.pe, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[1]]
