"""``masked``: hide patches of an image or spans of a sequence and predict them (masked modelling, as in MAE
(He et al., 2022) and its time-series variants): the backbone's head outputs the whole input, the loss is the mean
squared error on the masked positions only."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from nas.core.checks import check_int, check_number
from nas.evaluation.ssl.base import WHERE, Pretext

__all__ = ["Masked", "make_mask"]


def make_mask(shape: Sequence[int], kind: str, patch: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """A float mask of ``shape`` (the batch's), 1 where hidden: per sample, ``round(ratio * P)`` (at least one) of
    its ``P`` patches (``patch`` x ``patch`` squares of an image, across its channels) or spans (``patch`` time
    steps of a sequence, across its channels)."""
    n = shape[0]
    grid: tuple[int, ...] = ((math.ceil(shape[2] / patch), math.ceil(shape[3] / patch)) if kind == "image"
                             else (math.ceil(shape[1] / patch),))
    count = math.prod(grid)
    hidden = max(1, round(ratio * count))
    chosen = torch.rand(n, count, generator=gen).argsort(dim=1) < hidden
    cells = chosen.float().reshape(n, *grid)
    if kind == "image":
        full = cells.repeat_interleave(patch, 1).repeat_interleave(patch, 2)[:, :shape[2], :shape[3]]
        return full[:, None].expand(*shape).contiguous()
    full = cells.repeat_interleave(patch, 1)[:, :shape[1]]
    return full[:, :, None].expand(*shape).contiguous()


class Masked(Pretext):
    """Options: ``mask_ratio`` (0.5: the fraction of patches or spans hidden) and ``patch`` (the side of an image
    patch, default a quarter of the image's side; the length of a sequence span, default a tenth of it). Hidden
    positions are set to 0 (the data's mean: tasks are standardised). The head has one output per input value,
    so the representation must carry the whole input through the network's pooling. Validation: the masked MSE
    (``masked_mse``) with masks from the fixed validation generator; the score is minus it."""

    name = "masked"
    kinds = ("image", "sequence")
    metric = "masked_mse"
    maximize = False
    OPTIONS: ClassVar[dict[str, Any]] = {"mask_ratio": 0.5, "patch": None}

    @classmethod
    def check(cls, input_shape: Sequence[int], kind: str, options: Mapping[str, Any]) -> None:
        super().check(input_shape, kind, options)
        opts = {**cls.OPTIONS, **options}
        ratio = check_number(f"{WHERE}.mask_ratio", opts["mask_ratio"], low=0.0, high=1.0, finite=True)
        if not 0 < ratio < 1:
            check_number(f"{WHERE}.mask_ratio", ratio, low=0.01, high=0.99)
        if opts["patch"] is not None:
            side = min(input_shape[-2:]) if kind == "image" else input_shape[0]
            check_int(f"{WHERE}.patch", opts["patch"], minimum=1, maximum=int(side))

    @classmethod
    def out_dim(cls, input_shape: Sequence[int], options: Mapping[str, Any]) -> int:
        return math.prod(input_shape)

    def __init__(self, backbone: torch.nn.Module, *, kind: str, input_shape: Sequence[int], mask_ratio: float = 0.5,
                 patch: int | None = None) -> None:
        super().__init__(backbone)
        self.kind = kind
        self.ratio = float(mask_ratio)
        side = min(input_shape[-2:]) if kind == "image" else input_shape[0]
        self.patch = int(patch) if patch is not None else max(1, side // (4 if kind == "image" else 10))

    def _masked_se(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        mask = make_mask(x.shape, self.kind, self.patch, self.ratio, gen).to(x.device, x.dtype)
        out = self.backbone(x * (1 - mask)).reshape(x.shape)
        return ((out - x) ** 2 * mask).sum(), mask.sum()

    def loss(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        se, count = self._masked_se(x, gen)
        return se / count

    @torch.no_grad()
    def validate(self, x: torch.Tensor, gen: torch.Generator, batch_size: int) -> dict[str, float]:
        se, count = self.batch_sums(x, batch_size, lambda xb: [[float(v) for v in self._masked_se(xb, gen)]])
        return {"masked_mse": se / count}
