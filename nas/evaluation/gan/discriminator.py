"""The fixed DCGAN-style discriminator (Radford et al., 2016) every generator is trained against.

``Discriminator(image_shape, width, norm)``: two 4x4 stride-2 convs (``width``, ``2*width`` channels, LeakyReLU 0.2)
and a linear critic output. ``norm``: ``"batch"`` (DCGAN), ``"spectral"`` (spectral normalisation on every layer,
Miyato et al. 2018) or ``"none"`` (WGAN-GP: the gradient penalty is per sample, so no batch statistics).
Any ``H, W >= 4`` works (28x28 -> 7x7, 32x32 -> 8x8, 8x8 -> 2x2).

With ``num_classes > 0`` it is a projection discriminator (Miyato & Koyama, ICLR 2018) for class-conditional
generation: ``D(x, y) = linear(phi(x)) + <embed(y), phi(x)>``, ``phi`` the flattened features and ``embed`` a
learned class embedding (spectrally normalised with ``norm="spectral"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["Discriminator", "NORMS"]

NORMS = ("batch", "spectral", "none")


class Discriminator(nn.Module):
    """DCGAN discriminator on ``image_shape = (C, H, W)``; returns one logit / critic value per image, ``(N,)``
    (given the labels ``y`` when ``num_classes > 0``)."""

    def __init__(self, image_shape: Sequence[int], *, width: int = 64, norm: str = "batch",
                 num_classes: int = 0) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"discriminator norm = {norm!r}; expected one of {', '.join(NORMS)}")
        c, h, w = (int(s) for s in image_shape)
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        conv1 = sn(nn.Conv2d(c, width, 4, 2, 1))
        conv2 = sn(nn.Conv2d(width, 2 * width, 4, 2, 1, bias=norm != "batch"))
        mid: nn.Module = nn.BatchNorm2d(2 * width) if norm == "batch" else nn.Identity()
        h2, w2 = h // 4, w // 4
        self.features = nn.Sequential(conv1, nn.LeakyReLU(0.2), conv2, mid, nn.LeakyReLU(0.2), nn.Flatten())
        self.out = sn(nn.Linear(2 * width * h2 * w2, 1))
        self.embed: nn.Module | None = (sn(nn.Embedding(num_classes, 2 * width * h2 * w2)) if num_classes > 0
                                        else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out = self.out(h).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("a class-conditional (projection) discriminator takes forward(x, y)")
            out = out + (self.embed(y) * h).sum(1)
        return out
