"""The GAN trainer and evaluator on real offline data (digits, 8x8) at tiny budgets: seeded determinism, divergence
and mode collapse recorded as failures with reasons (by the trainer, and as FAILED results by the evaluator), FID
scoring, the cached feature network."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.gan import GanConfig, GanEvaluator, train_gan
from nas.evaluation.gan.evaluator import to_unit_range
from nas.evaluation.tasks import load_task
from nas.evaluation.training import seeded
from nas.graph.architecture import Architecture
from nas.trials.trial import Status, Trial
from search_spaces import get_space

SPACE = get_space("gan", C=4, latent_dim=8)
#: 3 steps leave a generator near its (low-diversity) initialisation: the collapse check is off except where tested
TINY = {"steps": 3, "batch_size": 16, "disc_width": 8, "diversity_samples": 32, "collapse_ratio": 0.0}


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return to_unit_range(load_task("digits", seed=0))["train"][:200]


def _generator(seed: int, arch_seed: int = 0) -> nn.Module:
    with seeded(seed):
        return SPACE.build_model(SPACE.sample(np.random.default_rng(arch_seed)), (1, 8, 8), 10)


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_training_is_seeded(digits: torch.Tensor, loss: str) -> None:
    config = GanConfig(loss=loss, **TINY)
    runs = [train_gan(_generator(s), digits, config, seed=s) for s in (5, 5, 6)]
    assert all(r.failure is None for r in runs)
    assert runs[0].history == runs[1].history and len(runs[0].history) == 3
    a, b, c = (dict(r.generator.state_dict()) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    z = torch.randn(4, 8)
    assert torch.equal(runs[0].generator(z), runs[1].generator(z))


def test_loss_defaults_follow_the_papers() -> None:
    ns, wgan = GanConfig().resolved(), GanConfig(loss="wgan-gp").resolved()
    assert (ns.lr, ns.betas, ns.n_critic) == (2e-4, (0.5, 0.999), 1)
    assert (wgan.lr, wgan.betas, wgan.n_critic) == (1e-4, (0.0, 0.9), 5)
    with pytest.raises(ConfigError, match=r"gan\.loss = 'hinge': choose from ns, wgan-gp"):
        GanConfig(loss="hinge")
    with pytest.raises(ConfigError, match="gan has no setting 'step'"):
        GanConfig.from_dict({"step": 3})


def test_divergence_is_a_failure_with_its_step(digits: torch.Tensor) -> None:
    poisoned = digits.clone()
    poisoned[:, 0, 0, 0] = float("nan")  # every real batch carries a NaN pixel: the losses go non-finite
    run = train_gan(_generator(0), poisoned, GanConfig(**TINY), seed=0)
    assert run.failure is not None and run.failure.startswith("diverged at step 1: d_loss=nan")


class _Fixed(nn.Module):
    """A generator that gives one image whatever its latent vector, ``tanh(image + z_weight * sum(z))``:
    ``z_weight=0`` is the extreme of mode collapse; ``z_weight=nan`` is a faulty candidate whose images are NaN (as a
    generator whose weights blew up would give)."""

    latent_dim = 8

    def __init__(self, z_weight: float = 0.0) -> None:
        super().__init__()
        self.z_weight = z_weight
        self.image = nn.Parameter(torch.zeros(1, 1, 8, 8))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.image + self.z_weight * z.sum()).expand(z.shape[0], 1, 8, 8)


def test_mode_collapse_is_a_failure_with_the_diversities(digits: torch.Tensor) -> None:
    run = train_gan(_Fixed(), digits, GanConfig(**{**TINY, "collapse_ratio": 0.25}), seed=0)
    assert run.failure is not None and run.failure.startswith("mode collapse: sample diversity 0.000 is below 0.25")
    assert run.real_diversity > 1


def test_evaluator_scores_by_fid_and_caches_the_feature_network(tmp_path: Path) -> None:
    def evaluator() -> GanEvaluator:
        return GanEvaluator(compiler=SPACE.compiler(), task="digits", gan=TINY, eval_samples=64, feature_epochs=1,
                            cache_dir=tmp_path)

    first = evaluator()
    result = first.evaluate(Trial(id=0, arch=SPACE.sample(np.random.default_rng(1)), seed=3))
    assert result.status is Status.COMPLETE, result.error
    m = result.metrics
    assert result.score == -m["fid"] and m["fid"] > m["fid_floor"] > 0
    assert 0 <= m["coverage"] <= 1 and m["density"] >= 0 and m["params"] > 0
    assert "not Inception" in result.info["signal"]
    cached = list(tmp_path.glob("featnet-*.pt"))
    assert len(cached) == 1
    again = evaluator().evaluate(Trial(id=0, arch=SPACE.sample(np.random.default_rng(1)), seed=3))
    assert again.metrics["fid"] == m["fid"] and list(tmp_path.glob("featnet-*.pt")) == cached


def test_a_bad_candidate_is_recorded_failed() -> None:
    space = get_space("gan", cells=4, C=4, latent_dim=8)  # 8x8 digits cannot be reached with 4 doublings
    ev = GanEvaluator(compiler=space.compiler(), task="digits", gan=TINY, eval_samples=32, feature_epochs=1)
    result = ev.evaluate(Trial(id=0, arch=space.sample(np.random.default_rng(0)), seed=0))
    assert result.status is Status.FAILED and "divisible by 16, got 8x8" in (result.error or "")


class _ExplodingCompiler:
    """Compiles every architecture to a :class:`_Fixed` generator of NaN images."""

    name = "gan"
    input_kind = "image"

    def __call__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Module:
        return _Fixed(float("nan"))


def test_a_diverging_candidate_is_a_failed_result_with_the_reason() -> None:
    ev = GanEvaluator(compiler=_ExplodingCompiler(), task="digits", gan=TINY, eval_samples=32, feature_epochs=1)
    result = ev.evaluate(Trial(id=0, arch=SPACE.sample(np.random.default_rng(0)), seed=0))
    assert result.status is Status.FAILED and (result.error or "").startswith("diverged at step 1: d_loss=nan")
    assert result.metrics["params"] == 64 and result.score is None
