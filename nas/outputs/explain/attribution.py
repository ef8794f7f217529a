"""Attributions of a classifier's predicted class over its input, through Captum: every method returns a tensor the
shape of the input (pixels and channels of an image ``(N, C, H, W)``, time steps and channels of a sequence
``(N, T, C)``), larger meaning more evidence for the class.

============================ ====================================================================================
``gradcam``                  ``captum.attr.LayerGradCam`` at the last feature map before the classifier (images:
                             the last map at least :data:`GRADCAM_MIN_SIZE` wide, as the report's Grad-CAM;
                             sequences: the last ``(N, T, D)`` output, read channels-first), ReLU, upsampled to
                             the input with ``LayerAttribution.interpolate`` and repeated over the input channels
``saliency``                 ``captum.attr.Saliency``: ``|d logit / d x|`` (Simonyan et al. 2014)
``integrated_gradients``     ``captum.attr.IntegratedGradients`` from the all-zero input (the train-split mean of
                             standardised data), :data:`IG_STEPS` steps (Sundararajan et al. 2017)
``lime``                     ``captum.attr.Lime`` on the class probability over the groups of
                             :func:`feature_mask`, features off = 0, a ridge regression (alpha 1) as the
                             interpretable model, as the lime package fits (Ribeiro et al. 2016)
``kernel_shap``              ``captum.attr.KernelShap`` likewise (Lundberg and Lee 2017)
============================ ====================================================================================

The perturbation methods draw their samples from an owned generator seeded by ``seed`` (Captum samples with
torch's global RNG, so the draw runs inside ``torch.random.fork_rng`` and leaves the caller's RNG untouched).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from nas.core.requires import require
from nas.outputs.report.cam import last_feature_map

__all__ = ["METHODS", "GRADCAM_MIN_SIZE", "IG_STEPS", "PERTURBATION_SAMPLES", "attribute", "feature_mask",
           "sequence_layer"]

METHODS = ("gradcam", "saliency", "integrated_gradients", "lime", "kernel_shap")
#: Grad-CAM of images uses the last feature map at least this high and wide (8x8 digits end at 2x2)
GRADCAM_MIN_SIZE = 4
IG_STEPS = 32
#: perturbed samples drawn per input by LIME and KernelSHAP
PERTURBATION_SAMPLES = 200
#: LIME / KernelSHAP features: about this many groups along each spatial axis or along time
GROUPS_PER_AXIS = 8


def feature_mask(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Integer groups for the perturbation methods, broadcastable over ``x``: images in square patches of
    ``ceil(H / 8)`` pixels over all channels (8x8 digits: single pixels; 28x28: 4x4 patches, 49 groups);
    sequences in ``ceil(T / 8)`` consecutive time steps per channel (so both time and channel are attributed)."""
    if kind == "image":
        _, _, height, width = x.shape
        size = max(1, math.ceil(max(height, width) / GROUPS_PER_AXIS))
        rows = torch.arange(height) // size
        cols = torch.arange(width) // size
        per_row = math.ceil(width / size)
        return (rows[:, None] * per_row + cols[None, :])[None, None].expand(1, x.shape[1], height, width).clone()
    _, steps, channels = x.shape
    size = max(1, math.ceil(steps / GROUPS_PER_AXIS))
    segments = torch.arange(steps) // size
    n_segments = int(segments.max()) + 1
    return (torch.arange(channels)[None, :] * n_segments + segments[:, None])[None]


def sequence_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The module whose output sequence Grad-CAM uses: the last ``(N, T, D)`` output (``T`` the input's time
    steps, ``D > 1``) of a child or grandchild of the model before ``model.classifier`` runs. ``ValueError`` when
    there is none (the model keeps no per-time-step features)."""
    seen: list[str] = []
    stopped = [False]
    handles = []
    steps = x.shape[1]

    def record(name: str) -> Any:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if (not stopped[0] and isinstance(output, torch.Tensor) and output.dim() == 3
                    and output.shape[1] == steps and output.shape[2] > 1 and output is not x):
                seen.append(name)
        return hook

    def stop(module: nn.Module, inputs: object) -> None:
        stopped[0] = True

    for name, module in model.named_modules():
        if name and name.count(".") <= 1:
            handles.append(module.register_forward_hook(record(name)))
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Module):
        handles.append(head.register_forward_pre_hook(stop))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError("the model produces no per-time-step output (N, T, D) before its classifier; "
                         "Grad-CAM needs one")
    return seen[-1]


class _Transpose(nn.Module):
    """Swaps dimensions 1 and 2: ``(N, T, D)`` to ``(N, D, T)`` and back, so Captum's channel axis is ``D``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


def _with_channels_first(model: nn.Module, name: str) -> tuple[nn.Module, nn.Module]:
    """A copy of ``model`` whose module ``name`` is followed by a transpose to ``(N, D, T)`` (the layer Captum
    reads) and one back, so the network computes exactly what it did."""
    twin = copy.deepcopy(model)
    parent_name, _, child = name.rpartition(".")
    parent = twin.get_submodule(parent_name) if parent_name else twin
    first = _Transpose()
    setattr(parent, child, nn.Sequential(getattr(parent, child), first, _Transpose()))
    return twin, first


def _gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    attr = require("captum.attr", "Grad-CAM", "explain")
    if kind == "image":
        name = last_feature_map(model, x[:1], GRADCAM_MIN_SIZE)[0]
        cam = attr.LayerGradCam(model, model.get_submodule(name)).attribute(x, target=target, relu_attributions=True)
        cam = attr.LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
        return cam.expand_as(x)
    name = sequence_layer(model, x)
    twin, layer = _with_channels_first(model, name)
    twin.eval()
    cam = attr.LayerGradCam(twin, layer).attribute(x, target=target, relu_attributions=True)  # (N, 1, T)
    return cam.transpose(1, 2).expand_as(x)


class Probabilities(nn.Module):
    """The model's softmax output: what LIME and KernelSHAP explain (a probability, as the lime package does)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(dim=1)


def attribute(model: nn.Module, x: torch.Tensor, method: str, *, target: torch.Tensor, kind: str,
              seed: int = 0, samples: int = PERTURBATION_SAMPLES) -> torch.Tensor:
    """Attributions of ``method`` (one of :data:`METHODS`) for class ``target[i]`` of input ``x[i]``, the shape
    of ``x``, detached on the CPU. ``kind`` is ``"image"`` or ``"sequence"``. The model is put in eval mode for the
    call and left in its mode with its parameters unchanged; ``samples`` is the perturbation budget of LIME and
    KernelSHAP. Raises ``ValueError`` for an unknown method or kind and
    :class:`~nas.core.errors.ConfigError` when Captum is not installed."""
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; known: {', '.join(METHODS)}")
    if kind not in ("image", "sequence"):
        raise ValueError(f"explanations cover image and sequence models, not {kind!r} inputs")
    attr = require("captum.attr", f"explanation method {method!r}", "explain")
    was = model.training
    model.eval()
    x = x.detach().clone().float()
    try:
        with torch.enable_grad():
            if method == "gradcam":
                out = _gradcam(model, x, target, kind)
            elif method == "saliency":
                out = attr.Saliency(model).attribute(x.requires_grad_(), target=target, abs=True)
            elif method == "integrated_gradients":
                out = attr.IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target,
                                                                n_steps=IG_STEPS, internal_batch_size=64)
            else:
                if method == "lime":  # a ridge surrogate as the lime package fits (Captum's default Lasso
                    # zeroes every small effect); Captum's exponential cosine-distance kernel weighs the samples
                    ridge = require("captum._utils.models.linear_model", "LIME", "explain").SkLearnRidge(alpha=1.0)
                    explainer = attr.Lime(Probabilities(model), interpretable_model=ridge)
                else:
                    explainer = attr.KernelShap(Probabilities(model))
                mask = feature_mask(x, kind)
                with torch.random.fork_rng(devices=[]), torch.no_grad():
                    torch.manual_seed(seed)
                    rows = [explainer.attribute(x[i:i + 1], baselines=0.0, target=int(target[i]),
                                                feature_mask=mask, n_samples=samples, perturbations_per_eval=50)
                            for i in range(len(x))]
                out = torch.cat(rows)
    finally:
        model.train(was)
    return out.detach().float().cpu()
