"""VGG-11 and VGG-16 (Simonyan & Zisserman, 2015; configurations A and D, no batch normalisation), in the form of
torchvision's ``vgg11`` / ``vgg16``, in plain PyTorch.

At their original 3x224x224 input with 1000 classes they have 132,863,336 (VGG-11) and 138,357,544 (VGG-16)
parameters, torchvision's published counts.

Small-input variant (shorter side below 64; the CIFAR form of VGG): the same convolutions, each 2x2 max-pool kept
only while the map is at least 2x2, then global average pooling and one linear layer 512 -> classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.graph.zoo._shapes import image_shape, is_small

__all__ = ["VGG", "CONFIGS", "vgg11", "vgg16"]

CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(nn.Module):
    """VGG of configuration ``name`` (a key of :data:`CONFIGS`); ``small=None`` picks the variant from the size."""

    def __init__(self, name: str, input_shape: Sequence[int], num_classes: int, *, small: bool | None = None,
                 dropout: float = 0.5) -> None:
        super().__init__()
        channels, height, width = image_shape(name, input_shape)
        small = is_small(height, width) if small is None else small
        layers: list[nn.Module] = []
        c_in, side = channels, min(height, width)
        for item in CONFIGS[name]:
            if item == "M":
                if not small or side >= 2:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
            else:
                layers += [nn.Conv2d(c_in, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(item)
        self.features = nn.Sequential(*layers)
        self.classifier: nn.Module
        if small:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Linear(512, num_classes)
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
                nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg11(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): VGG-11."""
    return VGG("vgg11", input_shape, num_classes)


def vgg16(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): VGG-16."""
    return VGG("vgg16", input_shape, num_classes)
