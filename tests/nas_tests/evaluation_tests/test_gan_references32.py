"""The DCGAN and WGAN-GP references at 32x32 (the ``mnist32`` task: MNIST zero-padded to 32x32): graph-encoded
generators (``gan`` space with three upsampling cells, 4x4 -> 32x32) and their fixed discriminators, with parameter
counts checked against the closed-form formulas the docs state, trained through the same path as at 28x28."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.evaluation.gan import Discriminator, GanConfig, train_gan
from nas.evaluation.gan.evaluator import to_unit_range
from nas.evaluation.measure import count_params
from nas.evaluation.tasks import load_task
from nas.evaluation.training import seeded
from search_spaces import get_space
from search_spaces.gan import GAN_REFERENCES


def generator_params(*, latent: int, C: int, cells: int, image: tuple[int, int, int]) -> int:
    """DCGAN generator in the ``generator`` skeleton: linear ``z -> C x b x b`` (``b = H / 2^cells``), per cell
    BN(C) + a bias-free 4x4 transposed conv ``C -> C``, head BN(C) + 3x3 conv ``C -> c`` with bias."""
    c, h, _ = image
    b = h // 2 ** cells
    return (latent + 1) * C * b * b + cells * (2 * C + 16 * C * C) + 2 * C + 9 * C * c + c


def discriminator_params(*, width: int, image: tuple[int, int, int], norm: str) -> int:
    """The fixed DCGAN discriminator: 4x4 conv ``c -> w`` (bias), 4x4 conv ``w -> 2w`` (bias only without batch
    norm), BN(2w) with batch norm, linear ``2w x H/4 x W/4 -> 1``."""
    c, h, w = image
    batch = norm == "batch"
    return (16 * c * width + width) + 32 * width * width + (4 * width if batch else 2 * width) \
        + 2 * width * (h // 4) * (w // 4) + 1


@pytest.mark.parametrize("name", list(GAN_REFERENCES))
def test_references_at_32x32_have_the_stated_shapes_and_sizes(name: str) -> None:
    space = get_space("gan", cells=3, C=8, latent_dim=16)
    with seeded(0):
        gen = space.build_model(space.reference(name), (1, 32, 32), 10)
    norm = "none" if GAN_REFERENCES[name][1] == "wgan-gp" else "batch"
    disc = Discriminator((1, 32, 32), width=8, norm=norm)
    assert count_params(gen) == generator_params(latent=16, C=8, cells=3, image=(1, 32, 32))
    assert count_params(disc) == discriminator_params(width=8, image=(1, 32, 32), norm=norm)
    z = torch.randn(4, 16)
    fake = gen(z)
    assert fake.shape == (4, 1, 32, 32) and fake.abs().max() <= 1
    out = disc(fake)
    assert out.shape == (4,)
    out.sum().backward()
    assert all(p.grad is not None for p in gen.parameters())


def test_the_documented_sizes() -> None:
    """README / RESULTS figures: the defaults (C=64, latent 128) at 28x28 and 32x32, width-64 discriminators."""
    assert generator_params(latent=128, C=64, cells=2, image=(1, 28, 28)) == 536_577
    assert generator_params(latent=128, C=64, cells=3, image=(1, 32, 32)) == 329_793
    assert discriminator_params(width=64, image=(1, 28, 28), norm="batch") == 138_689
    assert discriminator_params(width=64, image=(1, 32, 32), norm="batch") == 140_609
    assert discriminator_params(width=64, image=(1, 32, 32), norm="none") == 140_481
    space = get_space("gan", cells=3, C=64, latent_dim=128)
    assert count_params(space.build_model(space.reference("dcgan"), (1, 32, 32), 10)) == 329_793


def test_both_references_train_at_32x32_through_the_same_path() -> None:
    """Real images, cheaply: the digits upscaled 4x to 32x32 (``mnist32`` itself is checked with the other tasks)."""
    digits = to_unit_range(load_task("digits", seed=0))["train"][:64]
    images = torch.kron(digits, torch.ones(1, 1, 4, 4))
    assert images.shape == (64, 1, 32, 32)
    space = get_space("gan", cells=3, C=4, latent_dim=8)
    for name, (_, loss) in GAN_REFERENCES.items():
        with seeded(0):
            gen = space.build_model(space.reference(name), (1, 32, 32), 10)
        config = GanConfig(loss=loss, steps=2, batch_size=8, disc_width=4, n_critic=1, diversity_samples=16,
                           collapse_ratio=0.0)
        run = train_gan(gen, images, config, seed=0)
        assert run.failure is None and len(run.history) == 2
        assert all(np.isfinite(v) for h in run.history for v in h.values())
