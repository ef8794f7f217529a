"""Grad-CAM (Selvaraju et al., ICCV 2017) for any PyTorch image classifier, computed by Captum.

The class activation map of class ``c`` at a feature map ``A`` (``K`` channels) is
``relu(sum_k w_k A_k)`` with ``w_k`` the spatial mean of ``d logit_c / d A_k``; it is upsampled to the input
size and scaled to ``[0, 1]`` per image.

The feature map is, unless named, the last 4-D output (``N, C, H, W`` with more than one spatial position)
that a stage-level module produces before the model's ``classifier`` runs: a child or grandchild of the model
(``stem``, ``body.2``, ``cells.1``, ``lastact`` in the networks the compiler builds, whose deeper modules are
the ops inside cells), or any module when none of those qualifies. Every compiled network has a ``classifier``;
for other models the whole forward pass counts. ``min_size`` moves the choice back to the last such map at least
that high and wide (8x8 digits shrink to 2x2 at the end, too coarse to show where the evidence is).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.core.requires import require

__all__ = ["GradCAM", "grad_cam", "feature_maps", "last_feature_map"]


def feature_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """``(module name, output shape)`` of every 4-D output with more than one spatial position produced
    before ``model.classifier`` is called, in the order the modules finished. A container and the child whose
    output it passes on appear once, under the container's name; a module that returns its input unchanged (an
    input check) does not appear."""
    seen: list[tuple[str, torch.Tensor]] = []
    stopped = [False]
    handles = []

    def record(name: str) -> object:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if not stopped[0] and isinstance(output, torch.Tensor) and output.dim() == 4 \
                    and output.shape[2] * output.shape[3] > 1 and output is not x:
                seen.append((name, output))
        return hook

    def stop(module: nn.Module, inputs: object) -> None:
        stopped[0] = True

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(record(name)))
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Module):
        handles.append(head.register_forward_pre_hook(stop))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    # a container finishes right after its last child, with the same tensor: keep the container (the later one)
    return [(name, tuple(t.shape)) for i, (name, t) in enumerate(seen) if i + 1 == len(seen) or seen[i + 1][1] is not t]


def last_feature_map(model: nn.Module, x: torch.Tensor, min_size: int = 1,
                     max_depth: int = 1) -> tuple[str, tuple[int, ...]]:
    """The module whose output Grad-CAM uses by default, and that output's shape (batch of ``x`` first).

    Candidates are the :func:`feature_maps` of modules nested at most ``max_depth`` levels below the model's
    children (names with at most ``max_depth`` dots), or all of them when none is that shallow; the choice is
    the last candidate at least ``min_size`` high and wide, or the last candidate when none is. Raises
    ``ValueError`` when the model produces no 4-D output with more than one spatial position."""
    maps = feature_maps(model, x)
    if not maps:
        raise ValueError("the model produces no 4-D feature map (N, C, H, W) with more than one spatial position; "
                         "Grad-CAM needs a convolutional model")
    shallow = [m for m in maps if m[0].count(".") <= max_depth] or maps
    large = [m for m in shallow if min(m[1][2], m[1][3]) >= min_size]
    return large[-1] if large else shallow[-1]


@dataclass(frozen=True)
class GradCAM:
    """Heat maps ``(N, H, W)`` in ``[0, 1]`` at the input resolution, the class each explains, the model's
    predicted class and its probability, and the feature map used (module name, ``(C, h, w)``)."""

    heatmaps: torch.Tensor
    targets: torch.Tensor
    predicted: torch.Tensor
    probability: torch.Tensor
    layer: str
    feature_shape: tuple[int, ...]


def grad_cam(model: nn.Module, x: torch.Tensor, *, target: torch.Tensor | None = None,
             layer: str | None = None, min_size: int = 1) -> GradCAM:
    """Grad-CAM of ``model`` (put in eval mode for the call) on images ``x`` ``(N, C, H, W)``, for classes
    ``target`` (default: the predicted classes), at the output of submodule ``layer`` (default:
    ``last_feature_map(model, x, min_size)``). The model's parameters and mode are left as they were.

    Computed by Captum (``captum.attr.LayerGradCam`` with ReLU, then ``LayerAttribution.interpolate``, bilinear);
    a :class:`~nas.core.errors.ConfigError` naming the ``explain`` extra when Captum is not installed."""
    if x.dim() != 4:
        raise ValueError(f"grad_cam takes images (N, C, H, W), got shape {tuple(x.shape)}")
    name = layer or last_feature_map(model, x[:1], min_size)[0]
    module = dict(model.named_modules()).get(name)
    if module is None:
        raise ValueError(f"the model has no submodule {name!r}")
    attr = require("captum.attr", "Grad-CAM", "explain")
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            probs = model(x).softmax(dim=1)
        predicted = probs.argmax(dim=1)
        chosen = predicted if target is None else target.to(predicted.device)
        captured: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda m, i, out: captured.append(out.detach()))
        try:
            with torch.enable_grad():
                cam = attr.LayerGradCam(model, module).attribute(x, target=chosen, relu_attributions=True)
        finally:
            handle.remove()
    finally:
        model.train(was)
    cam = attr.LayerAttribution.interpolate(cam.detach(), tuple(x.shape[2:]), interpolate_mode="bilinear")[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return GradCAM(heatmaps=(cam / peak).cpu(), targets=chosen.detach().cpu(), predicted=predicted.detach().cpu(),
                   probability=probs.gather(1, predicted[:, None])[:, 0].detach().cpu(), layer=name,
                   feature_shape=tuple(captured[-1].shape[1:]))
