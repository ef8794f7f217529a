"""Fréchet distance and density / coverage between two sets of feature vectors.

FID here is the Fréchet distance of Gaussians fitted to the features of a small classifier the framework trains on
the task (:mod:`nas.evaluation.gan.features`), NOT of Inception-v3: Inception weights cannot be downloaded offline.
Its values are comparable between runs using the same feature network, never with published FIDs.

Density and coverage (Naeem et al., ICML 2020) make memorising or dropping modes visible: ``coverage`` is the share
of real samples whose k-NN ball (radius: distance to their k-th nearest real neighbour) holds at least one fake
sample; ``density`` counts how many real balls each fake sample falls in, divided by ``k`` (about 1 for samples
distributed like the real ones, above 1 for samples piled onto dense real regions).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg

__all__ = ["frechet_distance", "feature_stats", "fid_from_features", "density_coverage"]


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``features`` ``(N, D)``, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``. A singular product gets ``eps`` added to the
    diagonals (as in the reference implementation, Heusel et al. 2017); a tiny imaginary part from numerical error
    is dropped."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature statistics differ in shape: {mu1.shape}/{sigma1.shape} vs "
                         f"{mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(sigma1 @ sigma2)
        except linalg.LinAlgWarning:  # singular (e.g. dead ReLU features): regularise as the reference does
            covmean = np.full_like(sigma1, np.nan)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b``."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """``(density, coverage)`` of ``fake`` against ``real`` features with ``k`` nearest neighbours."""
    r = torch.as_tensor(np.asarray(real, dtype=np.float64))
    f = torch.as_tensor(np.asarray(fake, dtype=np.float64))
    if r.shape[0] <= k:
        raise ValueError(f"density/coverage with k={k} needs more than {k} real samples, got {r.shape[0]}")
    radii = torch.cdist(r, r).kthvalue(k + 1, dim=1).values  # the 0th neighbour is the sample itself
    inside = torch.cdist(r, f) < radii[:, None]  # (real, fake)
    density = inside.sum().item() / (k * f.shape[0])
    coverage = inside.any(dim=1).double().mean().item()
    return float(density), float(coverage)
