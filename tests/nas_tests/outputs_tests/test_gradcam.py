"""Grad-CAM: the heat map of a model whose evidence is known, the choice of feature map on compiled networks,
and that the model is left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas.outputs.report.cam import feature_maps, grad_cam, last_feature_map
from search_spaces import get_space


class Evidence(nn.Module):
    """Class 0's logit is the mean of a non-negative feature map equal to the image; class 1's is its negative.
    So class 0's evidence is exactly where the image is bright, and class 1 has no positive evidence."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(1, 2)
        with torch.no_grad():
            self.features[0].weight.fill_(1.0)
            self.features[0].bias.zero_()
            self.classifier.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.classifier.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def _blobs() -> torch.Tensor:
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 1, 6] = 1.0  # top right
    x[1, 0, 5:7, 1:3] = 0.5  # bottom left, 2x2
    return x


def test_the_heat_map_is_where_the_evidence_is() -> None:
    model = Evidence()
    x = _blobs()
    cam = grad_cam(model, x)
    assert cam.layer == "features" and cam.feature_shape == (1, 8, 8)
    assert cam.predicted.tolist() == [0, 0] and cam.targets.tolist() == [0, 0]
    assert cam.heatmaps.shape == (2, 8, 8)
    assert torch.allclose(cam.heatmaps, x[:, 0] / x.flatten(1).amax(dim=1)[:, None, None])  # the image, scaled
    assert float(cam.heatmaps.amax()) == pytest.approx(1.0) and float(cam.heatmaps.amin()) == 0.0
    # class 1 has only negative evidence: Grad-CAM's ReLU leaves nothing
    against = grad_cam(model, x, target=torch.tensor([1, 1]))
    assert against.targets.tolist() == [1, 1] and float(against.heatmaps.abs().sum()) == 0.0


def test_the_model_is_left_as_it_was() -> None:
    model = Evidence().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad_cam(model, _blobs())
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model.classifier._forward_pre_hooks
    assert all(not m._forward_hooks for m in model.modules())


def test_compiled_networks_use_the_last_map_before_the_classifier() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 8, 8)
    nb201 = get_space("nb201", C=4, N=1)
    model = nb201.build_model(nb201.sample(np.random.default_rng(0)), (1, 8, 8), 10)
    maps = feature_maps(model, x[:1])
    assert maps[-1] == ("lastact", (1, 16, 2, 2))  # BN-ReLU after the last stage, before pooling
    assert "lastact.1" not in [name for name, _ in maps]  # its ReLU passes the same tensor on: listed once
    assert "check" not in [name for name, _ in maps]  # the input check returns its input
    assert ("body.3.conv_a.op.0", (1, 8, 4, 4)) in maps  # a ReLU deep in the next stage, not a stage output
    assert last_feature_map(model, x[:1], min_size=4) == ("body.2", (1, 8, 4, 4))
    cam = grad_cam(model, x, min_size=4)
    assert cam.layer == "body.2" and cam.heatmaps.shape == (3, 8, 8)
    assert torch.all((cam.heatmaps >= 0) & (cam.heatmaps <= 1))
    darts = get_space("darts", C=4, layers=3)
    model = darts.build_model(darts.sample(np.random.default_rng(0)), (1, 8, 8), 10)
    assert last_feature_map(model, x[:1])[0] == "cells.2"
    assert last_feature_map(model, x[:1], min_size=4) == ("cells.1", (1, 32, 4, 4))


def test_a_model_without_spatial_maps_is_refused() -> None:
    rnn = get_space("rnn", steps=2, d_model=8)
    model = rnn.build_model(rnn.sample(np.random.default_rng(0)), (12, 1), 2)
    with pytest.raises(ValueError, match="Grad-CAM needs a convolutional model"):
        last_feature_map(model, torch.randn(1, 12, 1))
    with pytest.raises(ValueError, match="takes images"):
        grad_cam(model, torch.randn(1, 12, 1))
