"""AlexNet (Krizhevsky et al., 2012) in the single-tower form of torchvision's ``alexnet`` (channel widths
64-192-384-256-256 of "One weird trick", arXiv:1404.5997), in plain PyTorch.

At its original 3x224x224 input with 1000 classes it has 61,100,840 parameters, torchvision's published count.

Small-input variant (shorter side below 64, where torchvision's stride-4 11x11 stem and three 3x3/2 max-pools
would leave nothing): a 3x3 stride-1 stem, 2x2 max-pools only while the map is at least 2x2, global average
pooling before the same three-layer classifier (256 -> 4096 -> 4096 -> classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.graph.zoo._shapes import image_shape, is_small

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """AlexNet for ``(C, H, W)`` images; ``small=None`` picks the variant from the input size."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, small: bool | None = None,
                 dropout: float = 0.5) -> None:
        super().__init__()
        channels, height, width = image_shape("alexnet", input_shape)
        small = is_small(height, width) if small is None else small
        widths = (64, 192, 384, 256, 256)
        if small:
            side = min(height, width)
            layers: list[nn.Module] = []
            c_in = channels
            for i, c_out in enumerate(widths):
                kernel = 5 if i == 1 else 3
                layers += [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
                if i in (0, 1, 4) and side >= 2:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
                c_in = c_out
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            flat = widths[-1]
        else:
            self.features = nn.Sequential(
                nn.Conv2d(channels, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            flat = 256 * 6 * 6
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): AlexNet."""
    return AlexNet(input_shape, num_classes)
