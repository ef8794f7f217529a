"""GAN evaluation: the fixed DCGAN discriminator, non-saturating and WGAN-GP losses, the seeded trainer, FID and
density/coverage on the features of a task-trained classifier (not Inception: its weights are not available
offline), and :class:`GanEvaluator` tying them together for generator spaces (``gan``)."""

from __future__ import annotations

from nas.evaluation.gan.discriminator import Discriminator
from nas.evaluation.gan.evaluator import FID_NOTE, GanEvaluator, to_unit_range
from nas.evaluation.gan.features import FeatureNet, extract_features, feature_net
from nas.evaluation.gan.fid import density_coverage, feature_stats, fid_from_features, frechet_distance
from nas.evaluation.gan.trainer import GanConfig, GanRun, sample_diversity, train_gan

__all__ = ["Discriminator", "GanConfig", "GanRun", "train_gan", "sample_diversity", "FeatureNet", "feature_net",
           "extract_features", "frechet_distance", "feature_stats", "fid_from_features", "density_coverage",
           "GanEvaluator", "FID_NOTE", "to_unit_range"]
