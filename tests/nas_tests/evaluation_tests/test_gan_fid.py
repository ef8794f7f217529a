"""FID and density/coverage (nas.evaluation.gan.fid) against hand computations on small Gaussian features, and the
WGAN-GP gradient penalty against its closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.evaluation.gan.fid import density_coverage, feature_stats, fid_from_features, frechet_distance
from nas.evaluation.gan.losses import gradient_penalty


def test_fid_of_1d_gaussians_is_the_squared_mean_and_std_differences() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, (400, 1)), rng.normal(1.5, 2.0, (300, 1))
    m1, m2 = a.mean(), b.mean()
    s1, s2 = a.std(ddof=1), b.std(ddof=1)
    assert fid_from_features(a, b) == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-9)


def test_fid_of_2d_gaussians_matches_the_closed_form_square_root_of_a_2x2_matrix() -> None:
    rng = np.random.default_rng(1)
    a = rng.multivariate_normal([0, 0], [[1.0, 0.6], [0.6, 2.0]], size=500)
    b = rng.multivariate_normal([1, -2], [[0.5, -0.2], [-0.2, 1.5]], size=500)
    (mu1, s1), (mu2, s2) = feature_stats(a), feature_stats(b)
    # for M = S1 S2 with positive eigenvalues, Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M))
    tr_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    hand = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    assert fid_from_features(a, b) == pytest.approx(hand, rel=1e-9)
    assert fid_from_features(b, a) == pytest.approx(hand, rel=1e-9)


def test_fid_approaches_the_population_value_and_is_zero_for_identical_sets() -> None:
    rng = np.random.default_rng(2)
    mu = np.array([1.0, -1.0, 0.5])
    a, b = rng.normal(0, 1, (20000, 3)), mu + 2 * rng.normal(0, 1, (20000, 3))
    # population: |mu|^2 + sum (sqrt(1) - sqrt(4))^2 = 2.25 + 3
    assert fid_from_features(a, b) == pytest.approx(2.25 + 3.0, abs=0.15)
    assert abs(fid_from_features(a, a)) < 1e-6
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="differ in shape"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_density_and_coverage_separate_matching_collapsed_and_distant_samples() -> None:
    rng = np.random.default_rng(3)
    real = rng.normal(0, 1, (500, 4))
    density, coverage = density_coverage(real, rng.normal(0, 1, (500, 4)))
    assert 0.8 < density < 1.2 and coverage > 0.9
    density_c, coverage_c = density_coverage(real, np.zeros((500, 4)))  # every sample on one dense point
    assert coverage_c < 0.1 and density_c > 1
    assert density_coverage(real, rng.normal(10, 1, (500, 4))) == (0.0, 0.0)


def test_density_and_coverage_by_hand_on_a_line() -> None:
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1: every radius is 1 (strict ball)
    fake = np.array([[0.5], [10.0]])
    # 0.5 lies within 1 of reals 0 and 1 -> density (2 balls) / (k * 2 fakes) = 1.0; 2 of 4 reals covered
    assert density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_gradient_penalty_of_a_linear_critic() -> None:
    critic = nn.Linear(4, 1, bias=False)
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8, 0.0, 0.0]]))  # gradient norm 1 everywhere
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        critic.weight.mul_(3)  # gradient norm 3 -> (3 - 1)^2
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(4.0, rel=1e-5)
