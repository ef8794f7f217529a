"""The classic LeNet-5 (LeCun et al., 1998), in plain PyTorch.

C1 5x5 conv (6 maps) -> S2 2x2 average subsampling -> C3 5x5 conv (16 maps) -> S4 2x2 average subsampling ->
C5 (120 units over the whole 16-map, a 5x5 conv at 32x32 input) -> F6 84 -> output, tanh throughout.

Variant matched: the common textbook form with a full C3 connection table (every C3 map sees all six S2 maps),
parameter-free subsampling and a linear output layer instead of the paper's sparse C3 table, trainable
subsampling coefficients and RBF output. On its original 1x32x32 input with 10 classes it has
6*(25+1) + 16*(6*25+1) + 120*(400+1) + 84*(120+1) + 10*(84+1) = 61,706 parameters.

Smaller inputs keep the layers and widths: C1 pads by 2 below 32x32 (MNIST's 28x28 then gives the classic
28x28 C1 map), and C3 pads by 2 when its input is below 10x10 (e.g. 8x8 digits); C5 spans what S4 leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.core.errors import ShapeError
from nas.graph.zoo._shapes import image_shape

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeNet-5 for ``(C, H, W)`` images (see the module docstring)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        channels, height, width = image_shape("lenet5", input_shape)
        pad1 = 0 if min(height, width) >= 32 else 2
        h1, w1 = (height + 2 * pad1 - 4) // 2, (width + 2 * pad1 - 4) // 2
        pad3 = 0 if min(h1, w1) >= 10 else 2
        h3, w3 = (h1 + 2 * pad3 - 4) // 2, (w1 + 2 * pad3 - 4) // 2
        if min(h1, w1, h3, w3) < 1:
            raise ShapeError(f"reference 'lenet5' needs images of at least 4x4, got input_shape {tuple(input_shape)}")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=pad1), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5, padding=pad3), nn.Tanh(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * h3 * w3, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): the classic LeNet-5."""
    return LeNet5(input_shape, num_classes)
