"""A GRU and a bidirectional GRU sequence classifier (Cho et al., 2014), in plain PyTorch.

Both stack two GRU layers of 128 hidden units per direction over ``(N, T, F)`` sequences (``batch_first``) and
classify from the last layer's final hidden state: for ``gru`` the state after the last step, for ``bigru`` the
forward state after the last step concatenated with the backward state after the first. There is no published
count to match; their parameters follow PyTorch's GRU: ``3 * (H*F_in + H*H + 2*H)`` per layer and direction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.graph.zoo._shapes import sequence_shape

__all__ = ["GRUClassifier", "gru", "bigru", "HIDDEN", "LAYERS"]

HIDDEN = 128
LAYERS = 2


class GRUClassifier(nn.Module):
    """A ``layers``-layer (bi)GRU of ``hidden`` units per direction with a linear classifier on its final state."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, bidirectional: bool,
                 hidden: int = HIDDEN, layers: int = LAYERS) -> None:
        super().__init__()
        _, features = sequence_shape("bigru" if bidirectional else "gru", input_shape)
        self.rnn = nn.GRU(features, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.directions = 2 if bidirectional else 1
        self.classifier = nn.Linear(hidden * self.directions, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_n = self.rnn(x)  # (layers * directions, N, hidden)
        final = torch.cat(list(h_n[-self.directions:]), dim=1)
        return self.classifier(final)


def gru(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): a two-layer GRU."""
    return GRUClassifier(input_shape, num_classes, bidirectional=False)


def bigru(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): a two-layer bidirectional GRU."""
    return GRUClassifier(input_shape, num_classes, bidirectional=True)
