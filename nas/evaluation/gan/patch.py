"""The PatchGAN discriminator of CycleGAN / pix2pix (Isola et al. 2017; Zhu et al. 2017), scaled down.

``PatchDiscriminator(image_shape, width, layers)``: a 4x4 stride-2 conv to ``width`` channels (LeakyReLU 0.2, no
norm), ``layers - 1`` more 4x4 stride-2 convs doubling the width, one 4x4 stride-1 conv doubling it again (each
with instance norm and LeakyReLU 0.2), and a 4x4 stride-1 conv to one channel: a map of real/fake logits, one per
overlapping image patch. The paper's 70x70 PatchGAN is ``width=64, layers=3``; the default ``width=16, layers=1``
sees :func:`receptive_field` = 16x16 patches of a 28x28 image (a 12x12 map), so it judges local style (stroke,
background) rather than whole digits, which is what a patch discriminator is for.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PatchDiscriminator", "receptive_field", "patch_discriminator_params"]


def _kernels(layers: int) -> list[tuple[int, int]]:
    """(kernel, stride) of every conv, input to output."""
    return [(4, 2)] * layers + [(4, 1), (4, 1)]


def receptive_field(layers: int) -> int:
    """The side of the input patch one output logit sees: ``r = 1``, then ``r += (k - 1) * jump`` per conv, with
    ``jump`` the product of the strides before it (70 for ``layers = 3``, 16 for ``layers = 1``)."""
    r, jump = 1, 1
    for k, s in _kernels(layers):
        r += (k - 1) * jump
        jump *= s
    return r


def patch_discriminator_params(*, image_channels: int = 1, width: int = 16, layers: int = 1) -> int:
    """The parameter count of :class:`PatchDiscriminator` (instance norm has none; every conv has a bias):
    ``16 a b + b`` per conv from ``a`` to ``b`` channels."""
    widths = [image_channels] + [width * 2 ** i for i in range(layers + 1)] + [1]
    return sum(16 * a * b + b for a, b in itertools.pairwise(widths))


class PatchDiscriminator(nn.Module):
    """PatchGAN on ``image_shape = (C, H, W)``; returns a logit map ``(N, 1, H', W')`` (see the module docstring).
    Least-squares GAN losses compare every patch's output with 1 (real) or 0 (fake)."""

    def __init__(self, image_shape: Sequence[int], *, width: int = 16, layers: int = 1) -> None:
        super().__init__()
        if not isinstance(layers, int) or layers < 1 or not isinstance(width, int) or width < 1:
            raise ValueError(f"PatchDiscriminator width = {width!r}, layers = {layers!r}: expected positive integers")
        c, h, w = (int(s) for s in image_shape)
        if min(h, w) < receptive_field(layers) // 2:
            raise ValueError(f"PatchDiscriminator with {layers} stride-2 layers sees {receptive_field(layers)}px "
                             f"patches; a {h}x{w} image is too small for it (use fewer layers)")
        widths = [c] + [width * 2 ** i for i in range(layers + 1)]
        body: list[nn.Module] = []
        for i, ((k, s), a, b) in enumerate(zip(_kernels(layers), widths, widths[1:])):
            body.append(nn.Conv2d(a, b, k, s, 1))
            if i:
                body.append(nn.InstanceNorm2d(b))
            body.append(nn.LeakyReLU(0.2))
        body.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
