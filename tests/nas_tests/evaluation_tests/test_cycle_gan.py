"""The CycleGAN trainer and the unpaired translation task on real offline data (digits, 8x8) with tiny graph-encoded
generators: seeded determinism, falling losses over a few dozen steps, divergence and collapse recorded as failures,
disjoint unpaired domains with a paired held-out truth, the PatchGAN's size and receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.gan.cycle import CycleConfig, ImagePool, train_cycle
from nas.evaluation.gan.patch import PatchDiscriminator, patch_discriminator_params, receptive_field
from nas.evaluation.gan.translation_data import (
    UnpairedData,
    apply_transform,
    inverse_transform,
    make_unpaired,
    translation_scores,
)
from nas.evaluation.measure import count_params
from nas.evaluation.tasks import load_task
from nas.evaluation.training import seeded
from nas.graph.compiler import build_model
from nas.graph.references import cyclegan_generator

TINY = {"batch_size": 8, "disc_width": 4, "pool_size": 4, "diversity_samples": 16, "collapse_ratio": 0.0}


@pytest.fixture(scope="module")
def data() -> UnpairedData:
    return make_unpaired(load_task("digits", seed=0), "invert", seed=0, test_limit=60)


def _pair(seed: int) -> tuple[nn.Module, nn.Module]:
    arch = cyclegan_generator(channels=4, res_blocks=1)
    with seeded(seed):
        return build_model(arch, (1, 8, 8), 1), build_model(arch, (1, 8, 8), 1)


def test_unpaired_domains_are_disjoint_and_the_test_split_is_paired(data: UnpairedData) -> None:
    a, b_originals = data.train_a.flatten(1), inverse_transform(data.train_b, "invert").flatten(1)
    assert abs(len(a) - len(b_originals)) <= 1
    shared = (torch.cdist(a, b_originals) == 0).any(dim=1)  # digits has a few exact duplicate images
    assert shared.double().mean() < 0.02
    assert torch.equal(data.test_b, -data.test_a) and len(data.test_a) == len(data.test_labels) == 60
    assert len(set(data.test_labels.tolist())) == 10  # the limited test split is a shuffled one, not classes 0..k
    assert data.train_a.min() >= -1 and data.train_a.max() <= 1 and data.train_b.mean() > 0 > data.train_a.mean()
    x = data.test_a[:5]
    for transform in ("invert", "rotate90"):
        assert torch.equal(inverse_transform(apply_transform(x, transform), transform), x)
    assert torch.equal(apply_transform(x, "rotate90")[0, 0, 0], x[0, 0, :, -1])  # counter-clockwise quarter turn
    with pytest.raises(ConfigError, match="translation transform = 'flip': choose from invert, rotate90"):
        apply_transform(x, "flip")


def test_training_is_seeded(data: UnpairedData) -> None:
    config = CycleConfig(steps=3, **TINY)
    runs = [train_cycle(*_pair(s), data.train_a, data.train_b, config, seed=s) for s in (5, 5, 6)]
    assert all(r.failure is None for r in runs)
    assert runs[0].history == runs[1].history and len(runs[0].history) == 3
    assert runs[0].history != runs[2].history
    for attr in ("g_ab", "g_ba", "d_a", "d_b"):
        a, b = getattr(runs[0], attr).state_dict(), getattr(runs[1], attr).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(runs[0].g_ab(data.test_a[:4]), runs[1].g_ab(data.test_a[:4]))


def test_losses_fall_and_translations_improve_over_a_few_dozen_steps(data: UnpairedData) -> None:
    g_ab, g_ba = _pair(0)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # accuracy is not the point here
    before = translation_scores(g_ab, g_ba, data, classifier)
    run = train_cycle(g_ab, g_ba, data.train_a, data.train_b, CycleConfig(steps=30, lr=1e-3, **TINY), seed=0)
    assert run.failure is None
    first, last = run.history[:5], run.history[-5:]
    for key in ("cycle", "g_loss"):
        assert sum(h[key] for h in last) < 0.9 * sum(h[key] for h in first), key
    after = translation_scores(run.g_ab, run.g_ba, data, classifier)
    assert after["cycle_l1_a"] < before["cycle_l1_a"] and after["cycle_l1_b"] < before["cycle_l1_b"]
    # the translation error against the true (paired) translation, both directions together: at 30 tiny steps one
    # direction may still stand still while the other improves (data order decides which)
    assert after["mse_ab"] + after["mse_ba"] < 0.9 * (before["mse_ab"] + before["mse_ba"])


class _Exact(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x


def test_scores_of_the_exact_translation(data: UnpairedData) -> None:
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    scores = translation_scores(_Exact(), _Exact(), data, classifier)
    assert scores["mse_ab"] == scores["l1_ab"] == scores["mse_ba"] == scores["cycle_l1_a"] == 0
    assert scores["acc_ab"] == scores["acc_ba"] == scores["acc_real"]
    assert scores["identity_mse_ab"] == pytest.approx(float((2 * data.test_a).square().mean()))


def test_divergence_is_a_failure_with_its_step(data: UnpairedData) -> None:
    poisoned = data.train_b.clone()
    poisoned[:, 0, 0, 0] = float("nan")
    run = train_cycle(*_pair(0), data.train_a, poisoned, CycleConfig(steps=3, **TINY), seed=0)
    assert run.failure is not None and run.failure.startswith("diverged at step 1: g_loss=nan")
    assert len(run.history) == 1


class _Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.zeros(1, 1, 8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.image + 0 * x.sum()).expand(x.shape[0], 1, 8, 8)


def test_mode_collapse_is_a_failure_with_the_diversities(data: UnpairedData) -> None:
    config = CycleConfig(steps=2, **{**TINY, "collapse_ratio": 0.25})
    run = train_cycle(_Constant(), _Constant(), data.train_a, data.train_b, config, seed=0)
    assert run.failure is not None and run.failure.startswith("mode collapse: G: A->B output diversity 0.000")


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"cycle\.pool_size = -1: must be an integer >= 0"):
        CycleConfig(pool_size=-1)
    with pytest.raises(ConfigError, match=r"cycle\.betas = \(0\.5, 1\.5\)"):
        CycleConfig.from_dict({"betas": [0.5, 1.5]})
    with pytest.raises(ConfigError, match="cycle has no setting 'lambda'"):
        CycleConfig.from_dict({"lambda": 10})
    defaults = CycleConfig()
    assert (defaults.lr, defaults.betas, defaults.cycle_weight) == (2e-4, (0.5, 0.999), 10.0)


def test_image_pool_keeps_a_seeded_history() -> None:
    pools = [ImagePool(3, torch.Generator().manual_seed(1)) for _ in range(2)]
    batches = [torch.full((2, 1, 2, 2), float(i)) for i in range(6)]
    outs = [[pool.query(b) for b in batches] for pool in pools]
    assert all(torch.equal(x, y) for x, y in zip(*outs))
    assert torch.equal(outs[0][0], batches[0])  # filling up: the new images come back
    assert len(pools[0].images) == 3
    assert torch.equal(ImagePool(0, torch.Generator()).query(batches[1]), batches[1])


@pytest.mark.parametrize(("layers", "shape"), [(1, (1, 28, 28)), (2, (3, 40, 40))])
def test_patch_discriminator_size_and_receptive_field(layers: int, shape: tuple[int, int, int]) -> None:
    disc = PatchDiscriminator(shape, width=4, layers=layers)
    assert count_params(disc) == patch_discriminator_params(image_channels=shape[0], width=4, layers=layers)
    for module in disc.net:  # instance norm mixes the whole image; without it one logit sees one patch
        if isinstance(module, nn.InstanceNorm2d):
            disc.net[list(disc.net).index(module)] = nn.Identity()
    x = torch.randn(1, *shape, requires_grad=True)
    out = disc(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()  # type: ignore[union-attr]  # set by backward
    assert int(rows.max() - rows.min()) + 1 == receptive_field(layers)
    assert receptive_field(3) == 70  # the paper's 70x70 PatchGAN
    with pytest.raises(ValueError, match="too small"):
        PatchDiscriminator((1, 8, 8), layers=3)
