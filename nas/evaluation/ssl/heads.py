"""Shared heads of the pretexts: the backbone's features (what the head of a compiled network receives), the
SimCLR projection head, and the fixed-seed generators that make validation identical across candidates."""

from __future__ import annotations

import torch
from torch import nn

from nas.transfer import HEAD

__all__ = ["features", "embed", "ProjectionHead", "validation_generator"]


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model``'s representation of ``x``: the input of its head (``classifier``, what every compiled network
    pools into), flattened to ``(N, features)``; the output itself for a network without that head. Runs the
    forward pass in whatever mode the model is in (callers choose train or eval)."""
    head = getattr(model, HEAD, None)
    if not isinstance(head, nn.Module):
        return model(x).flatten(1)
    seen: list[torch.Tensor] = []

    def grab(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen.append(args[0])

    handle = head.register_forward_pre_hook(grab)
    try:
        model(x)
    finally:
        handle.remove()
    return seen[-1].flatten(1)


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """:func:`features` of every sample of ``x`` in eval mode, batch by batch, on the CPU as float32."""
    was_training = model.training
    model.eval()
    try:
        out = [features(model, x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


class ProjectionHead(nn.Module):
    """The rest of SimCLR's projection ``g(h) = W2 relu(W1 h)``: the compiled network's own head is ``W1`` (it
    maps the pooled features to ``dim``), this adds ``relu`` and ``W2`` (``dim -> dim``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def validation_generator(seed: int) -> torch.Generator:
    """The generator of every random draw of a validation pass (views, masks): seeded by the data seed, so every
    candidate of a search is scored on the same views and masks."""
    return torch.Generator().manual_seed(seed + 104729)
