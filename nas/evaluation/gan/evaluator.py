"""``GanEvaluator``: a generator architecture -> trained against the fixed discriminator -> FID, density, coverage.

The score is ``-fid`` (higher is better in ranking; the ``fid`` metric itself is lower-is-better). FID is measured
between ``eval_samples`` generated images and the task's held-out validation images, in the features of a
classifier trained on the task (:mod:`nas.evaluation.gan.features`): Inception weights cannot be downloaded
offline, so these are not Inception FIDs and are comparable only with each other. ``fid_floor`` (validation vs
train images, the value a perfect generator would approach) is reported with every result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.evaluation.evaluators import EpochCallback, Evaluator, ModelCompiler, _failure
from nas.evaluation.gan.features import FeatureNet, extract_features, feature_net
from nas.evaluation.gan.fid import density_coverage, fid_from_features
from nas.evaluation.gan.trainer import GanConfig, train_gan
from nas.evaluation.measure import count_params
from nas.evaluation.tasks import Task, load_task
from nas.evaluation.training import seeded
from nas.trials.trial import Result, Status, Trial

__all__ = ["GanEvaluator", "FID_NOTE", "to_unit_range"]

#: said next to every FID this framework reports
FID_NOTE = ("FID on the features of a classifier trained on the task (not Inception-v3: its weights cannot be "
            "downloaded offline); comparable only with FIDs from the same task and feature network")


def to_unit_range(task: Task) -> dict[str, torch.Tensor]:
    """The task's image splits rescaled to ``[-1, 1]`` with the train split's min and max (clipped)."""
    lo, hi = float(task.x_train.min()), float(task.x_train.max())
    scale = (hi - lo) or 1.0
    return {split: torch.as_tensor(np.clip((x - lo) / scale * 2 - 1, -1, 1), dtype=torch.float32)
            for split, x in (("train", task.x_train), ("val", task.x_val), ("test", task.x_test))}


class GanEvaluator(Evaluator):
    """Train a generator per trial on ``task`` (an image task) and score it by FID.

    Args:
        compiler: compiles generator architectures (a space whose ``model_kind`` is ``"generator"``).
        task: an image task name; ``task_options`` go to :func:`~nas.evaluation.tasks.load_task`.
        gan: the :class:`GanConfig` (or its dict).
        eval_samples: generated images compared with the validation split (at most its size is useful).
        feature_epochs: epochs of the feature classifier; ``cache_dir`` keeps its weights across runs.
        data_seed: seed of the data split and of the feature classifier.
    """

    name = "gan"
    metrics = frozenset({"fid", "fid_floor", "density", "coverage", "params", "train_seconds", "diversity"})

    def __init__(self, *, compiler: ModelCompiler, task: str = "mnist", task_options: Mapping[str, Any] | None = None,
                 gan: GanConfig | Mapping[str, Any] | None = None, eval_samples: int = 1000, feature_epochs: int = 5,
                 cache_dir: str | Path | None = None, data_seed: int = 0, device: str = "cpu") -> None:
        self.compiler = compiler
        self.task_name = task
        self.task_options = dict(task_options or {})
        self.gan = gan if isinstance(gan, GanConfig) else GanConfig.from_dict(dict(gan or {}))
        self.eval_samples = eval_samples
        self.feature_epochs = feature_epochs
        self.cache_dir = cache_dir
        self.data_seed = data_seed
        self.device = device
        self._state: tuple[Task, dict[str, torch.Tensor], FeatureNet, np.ndarray, float] | None = None

    def __getstate__(self) -> dict[str, Any]:  # workers reload the task and feature network
        return {**self.__dict__, "_state": None}

    def prepared(self) -> tuple[Task, dict[str, torch.Tensor], FeatureNet, np.ndarray, float]:
        """The task, its images in ``[-1, 1]``, the feature network, the validation features and the FID floor
        (validation vs train), computed once per process."""
        if self._state is None:
            task = load_task(self.task_name, seed=self.data_seed, **self.task_options)
            images = to_unit_range(task)
            net = feature_net(images["train"].numpy(), task.y_train, task.num_classes, seed=self.data_seed,
                              epochs=self.feature_epochs, cache_dir=self.cache_dir)
            val = extract_features(net, images["val"])
            floor = fid_from_features(val, extract_features(net, images["train"]))
            self._state = (task, images, net, val, floor)
        return self._state

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        try:
            task, images, net, val_features, floor = self.prepared()
            start = time.perf_counter()
            with seeded(trial.seed):
                generator = self.compiler(trial.arch, task.input_shape, task.num_classes)
            params = count_params(generator)
            run = train_gan(generator, images["train"], self.gan, seed=trial.seed, device=self.device)
            seconds = time.perf_counter() - start
            info = {"signal": f"-FID on {self.task_name} ({FID_NOTE})", "metric": "fid", "direction": "minimize"}
            metrics = {"params": float(params), "train_seconds": seconds, "fid_floor": floor}
            if run.failure is not None:
                return Result.failed(run.failure, metrics=metrics, info=info, history=run.history[-1:])
            gen = torch.Generator().manual_seed(trial.seed + 1)
            with torch.no_grad():
                z = torch.randn(self.eval_samples, int(getattr(generator, "latent_dim")), generator=gen)  # noqa: B009
                fake = torch.cat([generator(z[i:i + 256].to(self.device)).cpu() for i in range(0, len(z), 256)])
            fake_features = extract_features(net, fake)
            fid = fid_from_features(val_features, fake_features)
            density, coverage = density_coverage(val_features, fake_features)
            metrics.update(fid=fid, density=density, coverage=coverage, diversity=run.diversity)
            return Result(Status.COMPLETE, score=-fid, metrics=metrics, info=info, history=run.history[-1:])
        except Exception as err:  # a bad candidate is data, not a crash
            return _failure(err)
