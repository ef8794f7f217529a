"""Self-supervised evaluation: search without labels (``evaluator: {name: ssl, options: {pretext: ...}}``).

Pretexts (one module each): ``rotation`` (:mod:`~nas.evaluation.ssl.rotation`), ``contrastive`` (SimCLR, optionally
MoCo; :mod:`~nas.evaluation.ssl.contrastive`), ``masked`` (:mod:`~nas.evaluation.ssl.masked`); the shared heads
(:mod:`~nas.evaluation.ssl.heads`), the probe on a few labels (:mod:`~nas.evaluation.ssl.probe`), the training loop
(:mod:`~nas.evaluation.ssl.trainer`) and the evaluator (:mod:`~nas.evaluation.ssl.evaluator`, which registers
itself as ``ssl`` on import)."""

from __future__ import annotations

from nas.evaluation.ssl.base import Pretext
from nas.evaluation.ssl.contrastive import Contrastive, nt_xent
from nas.evaluation.ssl.evaluator import EXPORTED, SslEvaluator
from nas.evaluation.ssl.heads import embed, features
from nas.evaluation.ssl.masked import Masked, make_mask
from nas.evaluation.ssl.probe import ProbeSettings, knn_accuracy, labeled_subset, linear_accuracy
from nas.evaluation.ssl.rotation import Rotation
from nas.evaluation.ssl.trainer import PRETEXTS, SslReport, build_pretext, pretext_class, train_pretext

__all__ = ["Pretext", "Rotation", "Contrastive", "Masked", "PRETEXTS", "SslEvaluator", "SslReport", "ProbeSettings",
           "build_pretext", "pretext_class", "train_pretext", "features", "embed", "nt_xent", "make_mask",
           "knn_accuracy", "linear_accuracy", "labeled_subset", "EXPORTED"]
