"""The conv op family: DARTS and NAS-Bench-201 ops with their published definitions.

Factory signature: ``factory(C_in, C_out, stride, affine) -> nn.Module`` mapping
``(N, C_in, H, W)`` to ``(N, C_out, ceil(H / stride), ceil(W / stride))``.
Definitions follow quark0/darts ``cnn/operations.py`` and NAS-Bench-201 ``cell_operations.py``
so that parameter counts match the published networks exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.graph.ops.base import OpTable

__all__ = [
    "CONV_OPS",
    "ReLUConvBN",
    "ConvBNReLU",
    "SepConv",
    "DilConv",
    "FactorizedReduce",
    "Zero",
    "Pooling",
    "ResNetBasicBlock",
]


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d (no bias) -> BatchNorm, the NAS-Bench-201 ``nor_conv`` and DARTS preprocessing."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation, bias=not affine),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ConvBNReLU(nn.Module):
    """Conv2d (no bias) -> BatchNorm -> ReLU, the plain convolution of VGG- and LeNet-style nets."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.Conv2d(C_in, C_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
            nn.ReLU(inplace=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """DARTS dilated separable conv: ReLU -> depthwise dilated conv -> 1x1 conv -> BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """DARTS separable conv: two stacked (ReLU, depthwise conv, 1x1 conv, BN) blocks."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halves the resolution (or only changes channels at stride 1) with two offset 1x1 convs."""

    def __init__(self, C_in: int, C_out: int, stride: int = 2, affine: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            half = C_out // 2
            self.convs = nn.ModuleList([
                nn.Conv2d(C_in, half, 1, stride=2, bias=not affine),
                nn.Conv2d(C_in, C_out - half, 1, stride=2, bias=not affine),
            ])
        elif stride == 1:
            self.convs = nn.ModuleList([nn.Conv2d(C_in, C_out, 1, bias=not affine)])
        else:
            raise ValueError(f"FactorizedReduce supports stride 1 or 2, got {stride}")
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if self.stride == 2:
            # Pad odd sizes so both branches agree on the output resolution.
            y = nn.functional.pad(x, (0, 1, 0, 1))
            out = torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1)
        else:
            out = self.convs[0](x)
        return self.bn(out)


class Zero(nn.Module):
    """Outputs zeros of the op's output shape (the ``none`` op)."""

    def __init__(self, C_out: int, stride: int) -> None:
        super().__init__()
        self.C_out = C_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :1, :: self.stride, :: self.stride]
        return x.mul(0.0).expand(-1, self.C_out, -1, -1)


class Pooling(nn.Module):
    """3x3 pooling (count_include_pad=False for avg), with a 1x1 ReLU-Conv-BN first when channels change."""

    def __init__(self, C_in: int, C_out: int, stride: int, mode: str, affine: bool = True) -> None:
        super().__init__()
        self.preprocess = ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine) if C_in != C_out else nn.Identity()
        if mode == "avg":
            self.pool: nn.Module = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        else:
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.preprocess(x))


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: two 3x3 ReLU-Conv-BN plus an avg-pool + 1x1 conv shortcut.

    At stride 2 both paths give ``ceil(H / 2) x ceil(W / 2)`` for every input side: the shortcut pools with
    ``ceil_mode`` (the last, partial window of an odd side averages the values it covers), which is the published
    2x2 average pool on even sides."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, 1, affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, 1, affine)
        if stride == 2:
            self.downsample: nn.Module = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
                nn.Conv2d(C_in, C_out, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine)
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _skip(C_in: int, C_out: int, stride: int, affine: bool) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return FactorizedReduce(C_in, C_out, stride, affine)


def _conv7x1_1x7(C_in: int, C_out: int, stride: int, affine: bool) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(C_in, C_in, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(C_in, C_out, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(C_out, affine=affine),
    )


CONV_OPS = OpTable("conv", "factory(C_in, C_out, stride, affine)")
CONV_OPS.add("none", lambda C_in, C_out, stride, affine: Zero(C_out, stride), zero=True, parameter_free=True)
CONV_OPS.add("skip_connect", _skip, identity=True, parameter_free=True)
CONV_OPS.add("avg_pool_3x3", lambda C_in, C_out, stride, affine: Pooling(C_in, C_out, stride, "avg", affine),
             parameter_free=True)
CONV_OPS.add("max_pool_3x3", lambda C_in, C_out, stride, affine: Pooling(C_in, C_out, stride, "max", affine),
             parameter_free=True)
for _k in (1, 3, 5):
    CONV_OPS.add(f"conv_{_k}x{_k}",
                 lambda C_in, C_out, stride, affine, k=_k: ConvBNReLU(C_in, C_out, k, stride, affine))
for _k in (1, 3, 5, 7):
    CONV_OPS.add(f"nor_conv_{_k}x{_k}",
                 lambda C_in, C_out, stride, affine, k=_k: ReLUConvBN(C_in, C_out, k, stride, k // 2, 1, affine))
for _k in (3, 5, 7):
    CONV_OPS.add(f"sep_conv_{_k}x{_k}",
                 lambda C_in, C_out, stride, affine, k=_k: SepConv(C_in, C_out, k, stride, k // 2, affine))
for _k in (3, 5):
    CONV_OPS.add(f"dil_conv_{_k}x{_k}",
                 lambda C_in, C_out, stride, affine, k=_k: DilConv(C_in, C_out, k, stride, k - 1, 2, affine))
CONV_OPS.add("conv_7x1_1x7", _conv7x1_1x7)
CONV_OPS.add("factorized_reduce", lambda C_in, C_out, stride, affine: FactorizedReduce(C_in, C_out, stride, affine))
