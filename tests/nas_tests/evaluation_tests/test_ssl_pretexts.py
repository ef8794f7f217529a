"""The self-supervised pieces on their own: NT-Xent, rotations, masks, the feature hook and the probes, on real
(tiny) tensors whose right answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.ssl import (
    Contrastive,
    Masked,
    ProbeSettings,
    Rotation,
    features,
    knn_accuracy,
    labeled_subset,
    linear_accuracy,
    make_mask,
    nt_xent,
)
from nas.evaluation.ssl.rotation import rotate_batch


def test_nt_xent_is_low_for_matching_views_and_chance_for_random_ones() -> None:
    z = torch.eye(8) * 10
    loss, acc = nt_xent(z, z.clone(), temperature=0.5)  # each view's pair is identical, the 14 others orthogonal
    assert acc == 1.0 and abs(float(loss) - math.log(1 + 14 * math.exp(-2))) < 1e-5
    assert nt_xent(z, z.clone(), temperature=0.05)[0] < 1e-6
    gen = torch.Generator().manual_seed(0)
    loss, _ = nt_xent(torch.randn(64, 16, generator=gen), torch.randn(64, 16, generator=gen), temperature=1.0)
    assert abs(float(loss) - math.log(127)) < 0.3  # no information: about log(2N - 1)


def test_rotations_turn_each_image_by_its_own_count() -> None:
    x = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 1, 3, 3)
    out = rotate_batch(x, torch.tensor([1, 2]))
    assert torch.equal(out[0], torch.rot90(x[0], 1, dims=(1, 2)))
    assert torch.equal(out[1], torch.rot90(x[1], 2, dims=(1, 2)))
    with pytest.raises(ConfigError, match=r"evaluator.options.pretext = 'rotation' needs square images"):
        Rotation.check((1, 8, 6), "image", {})
    with pytest.raises(ConfigError, match=r"needs image data, but the task holds sequence data"):
        Rotation.check((24, 1), "sequence", {})


def test_masks_hide_the_asked_fraction_in_patches_and_spans() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = make_mask((5, 3, 8, 8), "image", 2, 0.5, gen)
    assert mask.shape == (5, 3, 8, 8) and torch.all(mask.mean(dim=(1, 2, 3)) == 0.5)
    assert torch.equal(mask[:, 0], mask[:, 2])  # a patch is hidden across channels
    assert torch.equal(mask[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3), mask)  # 2x2 patches
    spans = make_mask((4, 20, 2), "sequence", 5, 0.25, gen)
    assert torch.all(spans.sum(dim=(1, 2)) == 10) and torch.equal(spans[:, ::5].repeat_interleave(5, 1), spans)


def test_pretext_options_are_checked_with_their_field() -> None:
    with pytest.raises(ConfigError, match=r"evaluator.options.queue = 64 needs a momentum encoder"):
        Contrastive.check((1, 8, 8), "image", {"queue": 64})
    with pytest.raises(ConfigError, match=r"evaluator.options.momentum = 1.0: must be below 1"):
        Contrastive.check((1, 8, 8), "image", {"momentum": 1.0})
    with pytest.raises(ConfigError, match=r"evaluator.options.augment: 'jitter' is not a image augmentation"):
        Contrastive.check((1, 8, 8), "image", {"augment": ["jitter"]})
    with pytest.raises(ConfigError, match=r"evaluator.options.temprature: not an option of pretext 'contrastive'"
                                          r".*did you mean 'temperature'"):
        Contrastive.check((1, 8, 8), "image", {"temprature": 0.1})
    with pytest.raises(ConfigError, match=r"evaluator.options.patch = 9: must be an integer in 1..8"):
        Masked.check((1, 8, 8), "image", {"patch": 9})
    with pytest.raises(ConfigError, match=r"evaluator.options.probe.labels = 0: must be a fraction in \(0, 1\]"):
        ProbeSettings.from_dict({"labels": 0})
    with pytest.raises(ConfigError, match=r"evaluator.options.probe.method = 'svm': choose from knn, linear"):
        ProbeSettings.from_dict({"labels": 0.1, "method": "svm"})


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.classifier = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def test_features_are_what_the_head_receives() -> None:
    net, x = _Net(), torch.randn(5, 4)
    assert torch.allclose(features(net, x), net.body(x))
    assert not net.classifier._forward_pre_hooks  # the hook is removed again


def test_probes_separate_separable_features_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    centres = rng.normal(size=(3, 8)) * 5
    f = torch.as_tensor(centres[y] + rng.normal(size=(120, 8)), dtype=torch.float32)
    idx = labeled_subset(y, 0.5, 0)
    assert sorted(np.bincount(y[idx])) == [20, 20, 20]
    rest = np.setdiff1d(np.arange(120), idx)
    yt = torch.as_tensor(y)
    assert knn_accuracy(f[idx], yt[idx], f[rest], yt[rest], 3, k=5) > 95
    assert linear_accuracy(f[idx], yt[idx], f[rest], yt[rest], 3) > 95
    noise = torch.as_tensor(rng.normal(size=(120, 8)), dtype=torch.float32)
    assert knn_accuracy(noise[idx], yt[idx], noise[rest], yt[rest], 3, k=5) < 60
