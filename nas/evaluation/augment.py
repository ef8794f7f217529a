"""Batch data augmentation on tensors, every random draw taken from the ``torch.Generator`` passed in.

Images ``(N, C, H, W)``: ``crop`` (random crop with zero padding of H/8, as integer shifts), ``flip``
(horizontal), ``rotate`` (up to +-15 degrees), ``cutout`` (a zeroed square of side H/4).
Sequences ``(N, T, C)``: ``jitter`` (Gaussian noise, sigma 0.03), ``scaling`` (per-channel factor ~ N(1, 0.1)),
``time_shift`` (circular shift up to T/10), ``window_warp`` (a window of T/10 slowed or sped up by 2x,
resampled back to T). All keep shapes and labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from nas.core.errors import ConfigError, did_you_mean

__all__ = ["IMAGE_AUGMENTATIONS", "SEQUENCE_AUGMENTATIONS", "make_augmenter"]

Aug = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _rand(gen: torch.Generator, *shape: int, device: torch.device) -> torch.Tensor:
    return torch.rand(*shape, generator=gen).to(device)


def _affine(x: torch.Tensor, theta: torch.Tensor, mode: str) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def crop(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    shifts = torch.randint(-pad, pad + 1, (n, 2), generator=gen).to(x.device, x.dtype)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shifts[:, 0] * 2.0 / w
    theta[:, 1, 2] = shifts[:, 1] * 2.0 / h
    return _affine(x, theta, "nearest")


def flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = _rand(gen, x.shape[0], device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def rotate(x: torch.Tensor, gen: torch.Generator, max_degrees: float = 15.0) -> torch.Tensor:
    angle = (_rand(gen, x.shape[0], device=x.device) * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1)
    return _affine(x, theta, "bilinear")


def cutout(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    size = max(1, h // 4)
    cy = torch.randint(0, h, (n,), generator=gen).to(x.device)
    cx = torch.randint(0, w, (n,), generator=gen).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy[:, None, None]).abs() <= size // 2) & ((xs - cx[:, None, None]).abs() <= size // 2)
    return x * (~inside)[:, None].to(x.dtype)


def jitter(x: torch.Tensor, gen: torch.Generator, sigma: float = 0.03) -> torch.Tensor:
    return x + torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * sigma


def scaling(x: torch.Tensor, gen: torch.Generator, sigma: float = 0.1) -> torch.Tensor:
    factor = 1.0 + torch.randn(x.shape[0], 1, x.shape[2], generator=gen) * sigma
    return x * factor.to(x.device, x.dtype)


def _resample(x: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``x`` (N, T, C) at fractional time positions ``src`` (N, T)."""
    t = x.shape[1]
    src = src.clamp(0, t - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=t - 1)
    frac = (src - lo.to(src.dtype)).unsqueeze(-1).to(x.dtype)
    idx_lo = lo.unsqueeze(-1).expand(-1, -1, x.shape[2])
    idx_hi = hi.unsqueeze(-1).expand(-1, -1, x.shape[2])
    return torch.gather(x, 1, idx_lo) * (1 - frac) + torch.gather(x, 1, idx_hi) * frac


def time_shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, t, _ = x.shape
    limit = max(1, t // 10)
    shift = torch.randint(-limit, limit + 1, (n, 1), generator=gen).to(x.device)
    idx = (torch.arange(t, device=x.device)[None, :] - shift) % t
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def window_warp(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, t, _ = x.shape
    w = max(2, t // 10)
    start = (torch.rand(n, generator=gen) * (t - w)).to(x.device)
    speed = torch.where(torch.rand(n, generator=gen) < 0.5, 0.5, 2.0).to(x.device)
    length = t + w * (speed - 1.0)  # length of the warped series before resampling to t
    u = torch.arange(t, device=x.device, dtype=torch.float32)[None, :] * (length[:, None] - 1) / max(t - 1, 1)
    a, s = start[:, None], speed[:, None]
    src = torch.where(u < a, u, torch.where(u < a + w * s, a + (u - a) / s, u - w * (s - 1.0)))
    return _resample(x, src)


IMAGE_AUGMENTATIONS: dict[str, Aug] = {"crop": crop, "flip": flip, "rotate": rotate, "cutout": cutout}
SEQUENCE_AUGMENTATIONS: dict[str, Aug] = {"jitter": jitter, "scaling": scaling, "time_shift": time_shift,
                                          "window_warp": window_warp}


def make_augmenter(names: Sequence[str], kind: str) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Compose the augmentations ``names`` for ``kind`` (``image`` or ``sequence``) data, in order."""
    if kind not in ("image", "sequence"):
        raise ConfigError(f"train.augment = {list(names)}: {kind} data have no augmentations; remove train.augment")
    table = IMAGE_AUGMENTATIONS if kind == "image" else SEQUENCE_AUGMENTATIONS
    fns = []
    for name in names:
        if name not in table:
            raise ConfigError(
                f"train.augment: {name!r} is not a {kind} augmentation; choose from {', '.join(table)}"
                + did_you_mean(name, table)
            )
        fns.append(table[name])

    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for fn in fns:
            x = fn(x, gen)
        return x

    return apply
