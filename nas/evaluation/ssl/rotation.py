"""``rotation``: predict which of 4 rotations (0, 90, 180, 270 degrees) an image was turned by (Gidaris et al.,
2018; the pretext Liu et al., 2020 rank architectures with). Square images only."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from nas.core.errors import ConfigError
from nas.evaluation.ssl.base import WHERE, Pretext

__all__ = ["Rotation", "rotate_batch"]


def rotate_batch(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Each image ``x[i]`` turned by ``k[i]`` quarter turns (``(N, C, H, W)`` with H == W)."""
    out = x.clone()
    for turns in range(1, 4):
        chosen = k == turns
        if chosen.any():
            out[chosen] = torch.rot90(x[chosen], turns, dims=(2, 3))
    return out


class Rotation(Pretext):
    """Training: each image gets one random rotation (the cost of a supervised epoch), the head (4 outputs)
    classifies it. Validation: every image in all 4 rotations; the metric ``rotation_acc`` (%) is the score."""

    name = "rotation"
    kinds = ("image",)
    metric = "rotation_acc"
    maximize = True
    OPTIONS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def check(cls, input_shape: Sequence[int], kind: str, options: Mapping[str, Any]) -> None:
        super().check(input_shape, kind, options)
        if input_shape[-1] != input_shape[-2]:
            raise ConfigError(f"{WHERE}.pretext = 'rotation' needs square images (a quarter turn keeps their shape), "
                              f"not {input_shape[-2]}x{input_shape[-1]}; crop or pad them, or use pretext "
                              "contrastive or masked")

    @classmethod
    def out_dim(cls, input_shape: Sequence[int], options: Mapping[str, Any]) -> int:
        return 4

    def loss(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        k = torch.randint(0, 4, (len(x),), generator=gen).to(x.device)
        return F.cross_entropy(self.backbone(rotate_batch(x, k)), k)

    @torch.no_grad()
    def validate(self, x: torch.Tensor, gen: torch.Generator, batch_size: int) -> dict[str, float]:
        def sums(xb: torch.Tensor) -> Iterator[tuple[float, float, int]]:
            for turns in range(4):
                k = torch.full((len(xb),), turns, device=xb.device)
                out = self.backbone(torch.rot90(xb, turns, dims=(2, 3)))
                yield float((out.argmax(1) == k).sum()), float(F.cross_entropy(out, k, reduction="sum")), len(xb)

        correct, loss, n = self.batch_sums(x, batch_size, sums)
        return {"rotation_acc": 100.0 * correct / n, "rotation_loss": loss / n}
