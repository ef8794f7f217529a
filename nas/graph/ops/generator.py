"""The ``gen`` op family: the edges of AutoGAN-style generator cells (Gong et al., ICCV 2019).

Factory signature: ``factory(C_in, C_out) -> nn.Module`` on ``(N, C, H, W)``. ``up_*`` ops double the
resolution (``(N, C_out, 2H, 2W)``); the others keep it. Every op is pre-activated (BatchNorm -> ReLU first), as
in the AutoGAN / SN-GAN generator blocks, so a cell input straight from a linear layer or another cell is
normalised before it is transformed.

* ``up_nearest``, ``up_bilinear`` -- BN-ReLU, parameter-free 2x upsampling, then a 1x1 conv only when the
  channel count changes;
* ``up_deconv`` -- BN-ReLU, transposed 4x4 conv with stride 2 (learned upsampling);
* ``conv_3x3``, ``conv_5x5`` -- BN-ReLU-Conv at the same resolution;
* ``skip_connect`` -- identity (``C_in == C_out``); ``none`` -- zeros at 2x the resolution (drops an upsampling
  edge: generator cells allow it only where an ``up_*`` op could go).

The CycleGAN ops (Zhu et al., ICCV 2017, and their reference code) are post-activated with instance norm
(``InstanceNorm2d``, no affine parameters, as in that code), for image-to-image ``translator`` networks:

* ``c7s1_in`` -- ``c7s1-k``: reflection pad 3, 7x7 conv, IN, ReLU;
* ``down_conv_3x3_in`` -- ``d-k``: 3x3 conv with stride 2 (half the resolution, rounded up), IN, ReLU;
* ``up_deconv_3x3_in`` -- ``u-k``: 3x3 transposed conv with stride 2 (exactly 2x the resolution), IN, ReLU;
* ``conv_3x3_in`` / ``conv_3x3_in_linear`` -- the two convs of a residual block ``R-k``: reflection pad 1, 3x3
  conv, IN, with / without the ReLU.

Resolution rule, by name: ``up_*`` and ``none`` double it, ``down_*`` halve it, every other op keeps it
(:func:`resolution_scale`).
"""

from __future__ import annotations

import torch
from torch import nn

from nas.graph.ops.base import OpTable

__all__ = ["GEN_OPS", "UP_OPS", "GEN_CONV_OPS", "CYCLE_OPS", "Upsample", "PreactConv", "DeconvUp", "InstanceConv",
           "resolution_scale"]

#: the upsampling ops, in the order spaces offer them
UP_OPS: tuple[str, ...] = ("up_nearest", "up_bilinear", "up_deconv")
#: the same-resolution ops, in the order spaces offer them
GEN_CONV_OPS: tuple[str, ...] = ("conv_3x3", "conv_5x5", "skip_connect")
#: the CycleGAN (instance-norm, post-activated) ops of image-to-image translators
CYCLE_OPS: tuple[str, ...] = ("c7s1_in", "down_conv_3x3_in", "up_deconv_3x3_in", "conv_3x3_in", "conv_3x3_in_linear")


def resolution_scale(op: str) -> float:
    """How op ``op`` of the ``gen`` family scales the resolution: 2 (``up_*``, ``none``), 0.5 (``down_*``) or 1."""
    if op.startswith("up_") or op == "none":
        return 2.0
    return 0.5 if op.startswith("down_") else 1.0


class Upsample(nn.Module):
    """BN-ReLU -> 2x ``mode`` interpolation (``nearest`` or ``bilinear``) -> 1x1 conv if ``C_in != C_out``."""

    def __init__(self, C_in: int, C_out: int, mode: str) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(C_in), nn.ReLU(inplace=False))
        self.up = nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        self.proj: nn.Module = nn.Identity() if C_in == C_out else nn.Conv2d(C_in, C_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.up(self.pre(x)))


class DeconvUp(nn.Module):
    """BN-ReLU -> ConvTranspose2d(4, stride 2, padding 1): exactly 2x the resolution."""

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.BatchNorm2d(C_in), nn.ReLU(inplace=False),
                                nn.ConvTranspose2d(C_in, C_out, 4, 2, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class PreactConv(nn.Module):
    """BN-ReLU -> Conv2d(``kernel``, same padding)."""

    def __init__(self, C_in: int, C_out: int, kernel: int) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.BatchNorm2d(C_in), nn.ReLU(inplace=False),
                                nn.Conv2d(C_in, C_out, kernel, 1, kernel // 2, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class InstanceConv(nn.Module):
    """A CycleGAN conv: [reflection pad] -> Conv2d or ConvTranspose2d (``kernel``, ``stride``) -> InstanceNorm2d
    (no affine parameters) -> [ReLU]. The conv keeps its bias, as in the reference code (instance norm removes a
    per-channel constant, so the bias is inert but harmless)."""

    def __init__(self, C_in: int, C_out: int, kernel: int, *, stride: int = 1, transposed: bool = False,
                 relu: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if transposed:
            layers.append(nn.ConvTranspose2d(C_in, C_out, kernel, stride, kernel // 2, output_padding=stride - 1))
        elif stride == 1:
            layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(C_in, C_out, kernel)]
        else:
            layers.append(nn.Conv2d(C_in, C_out, kernel, stride, kernel // 2))
        layers.append(nn.InstanceNorm2d(C_out))
        if relu:
            layers.append(nn.ReLU(inplace=False))
        self.op = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _Zero(nn.Module):
    def __init__(self, C_out: int) -> None:
        super().__init__()
        self.C_out = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # zeros at 2x resolution, attached to the graph
        return nn.functional.interpolate(x[:, :1].mul(0.0), scale_factor=2.0).expand(-1, self.C_out, -1, -1)


def _identity(C_in: int, C_out: int) -> nn.Module:
    if C_in != C_out:
        raise ValueError(f"skip_connect needs C_in == C_out, got {C_in} and {C_out}")
    return nn.Identity()


GEN_OPS = OpTable("gen", "factory(C_in, C_out)")
GEN_OPS.add("up_nearest", lambda C_in, C_out: Upsample(C_in, C_out, "nearest"))
GEN_OPS.add("up_bilinear", lambda C_in, C_out: Upsample(C_in, C_out, "bilinear"))
GEN_OPS.add("up_deconv", DeconvUp)
GEN_OPS.add("conv_3x3", lambda C_in, C_out: PreactConv(C_in, C_out, 3))
GEN_OPS.add("conv_5x5", lambda C_in, C_out: PreactConv(C_in, C_out, 5))
GEN_OPS.add("skip_connect", _identity, identity=True, parameter_free=True)
GEN_OPS.add("none", lambda C_in, C_out: _Zero(C_out), zero=True, parameter_free=True)
GEN_OPS.add("c7s1_in", lambda C_in, C_out: InstanceConv(C_in, C_out, 7))
GEN_OPS.add("down_conv_3x3_in", lambda C_in, C_out: InstanceConv(C_in, C_out, 3, stride=2))
GEN_OPS.add("up_deconv_3x3_in", lambda C_in, C_out: InstanceConv(C_in, C_out, 3, stride=2, transposed=True))
GEN_OPS.add("conv_3x3_in", lambda C_in, C_out: InstanceConv(C_in, C_out, 3))
GEN_OPS.add("conv_3x3_in_linear", lambda C_in, C_out: InstanceConv(C_in, C_out, 3, relu=False))
