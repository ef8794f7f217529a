"""ResNet-18/34/50 (He et al., 2016) in the form of torchvision's ``resnet18`` / ``resnet34`` / ``resnet50``
(v1.5: a bottleneck's stride sits on its 3x3 conv), in plain PyTorch.

At their original 3x224x224 input with 1000 classes they have 11,689,512 (ResNet-18), 21,797,672 (ResNet-34)
and 25,557,032 (ResNet-50) parameters, torchvision's published counts.

Small-input variant (shorter side below 64, e.g. 8x8 digits, 28x28 MNIST, 32x32 CIFAR; the CIFAR form common
since the paper's section 4.2 experiments): a 3x3 stride-1 stem conv and no stem max-pool; the four stages
and the head are unchanged (ResNet-18 then has 11,173,962 parameters for 3x32x32 with 10 classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.graph.zoo._shapes import image_shape, is_small

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50"]


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, with an identity or projection shortcut."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """A ResNet of ``block`` with ``depths`` blocks per stage (widths 64-128-256-512);
    ``small=None`` picks the variant from the input size."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: Sequence[int], name: str,
                 input_shape: Sequence[int], num_classes: int, *, small: bool | None = None) -> None:
        super().__init__()
        channels, height, width = image_shape(name, input_shape)
        small = is_small(height, width) if small is None else small
        if small:
            self.stem = nn.Sequential(nn.Conv2d(channels, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                                      nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        stages: list[nn.Module] = []
        c_in = 64
        for i, (w, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks: list[nn.Module] = []
            for j in range(depth):
                blocks.append(block(c_in, w, 2 if i > 0 and j == 0 else 1))
                c_in = w * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def resnet18(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): ResNet-18."""
    return ResNet(BasicBlock, (2, 2, 2, 2), "resnet18", input_shape, num_classes)


def resnet34(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): ResNet-34."""
    return ResNet(BasicBlock, (3, 4, 6, 3), "resnet34", input_shape, num_classes)


def resnet50(c: object, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Builder of the ``python`` space's form (no decisions; ``c`` is unused): ResNet-50."""
    return ResNet(Bottleneck, (3, 4, 6, 3), "resnet50", input_shape, num_classes)
