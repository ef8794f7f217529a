"""Class-conditional GAN generation on real digits (8x8, a few steps): the labels reach the generator (class
embedding) and a projection discriminator, training stays seeded, and the sample grid shows one class per column."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from matplotlib import image as mpl_image

from nas.evaluation.gan import Discriminator, GanConfig, GanEvaluator, train_gan
from nas.evaluation.gan.evaluator import fixed_latents, generate, to_unit_range
from nas.evaluation.tasks import load_task
from nas.evaluation.training import seeded
from nas.trials.trial import Status, Trial
from search_spaces import get_space

SPACE = get_space("gan", C=4, latent_dim=8, conditional=True)
TINY = {"steps": 3, "batch_size": 16, "disc_width": 8, "diversity_samples": 32, "collapse_ratio": 0.0,
        "conditional": True}


def test_conditional_training_is_seeded_and_uses_the_labels() -> None:
    task = load_task("digits", seed=0)
    images, labels = to_unit_range(task)["train"][:200], torch.as_tensor(task.y_train[:200])
    runs = []
    for seed in (3, 3):
        with seeded(seed):
            generator = SPACE.build_model(SPACE.sample(np.random.default_rng(0)), (1, 8, 8), 10)
        runs.append(train_gan(generator, images, GanConfig(**TINY), seed=seed, labels=labels, num_classes=10))
    assert all(r.failure is None for r in runs) and runs[0].history == runs[1].history
    assert isinstance(runs[0].discriminator, Discriminator) and runs[0].discriminator.embed is not None
    z, y = fixed_latents(8, 10, num_classes=10)
    assert y is not None and y.tolist() == list(range(10))
    a = generate(runs[0].generator, z, y)
    assert torch.equal(a, generate(runs[1].generator, z, y))
    assert not torch.equal(a, generate(runs[0].generator, z, (y + 1) % 10))  # the label changes the image
    with pytest.raises(ValueError, match="needs the real images' labels"):
        train_gan(runs[0].generator, images, GanConfig(**TINY), seed=0)


def test_conditional_evaluator_grid_has_a_column_per_class() -> None:
    evaluator = GanEvaluator(compiler=SPACE.compiler(), task="digits", eval_samples=100, feature_epochs=1,
                             grid_samples=15, device="cpu", **TINY)
    result = evaluator.evaluate(Trial(0, SPACE.sample(np.random.default_rng(1)), 0))
    assert result.status is Status.COMPLETE, result.error
    assert result.score == pytest.approx(-result.metrics["fid"])
    grid = mpl_image.imread(io.BytesIO(base64.b64decode(result.info["samples_png"])))
    # 15 samples round up to 2 rows of the 10 classes; 8x8 images with a 1-pixel border, drawn at 2x
    assert grid.shape[:2] == ((2 * 9 + 1) * 2, (10 * 9 + 1) * 2)
    unconditional = GanEvaluator(compiler=SPACE.compiler(), task="digits", eval_samples=100, feature_epochs=1,
                                 device="cpu", **{**TINY, "conditional": False})
    failed = unconditional.evaluate(Trial(0, SPACE.sample(np.random.default_rng(1)), 0))
    assert failed.status is Status.FAILED and "evaluator.options.conditional = False" in (failed.error or "")
