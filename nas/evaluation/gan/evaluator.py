"""``GanEvaluator`` (registered as ``gan``): a generator architecture -> trained against the fixed discriminator ->
FID, density, coverage and a sample grid.

The score is ``-fid``: higher is better in the ranking, while the ``fid`` metric itself is lower-is-better (results
say so in ``info``: ``metric: fid, direction: min``, which ``nas status``, the report and the export read). FID is
measured between ``eval_samples`` generated images and the task's held-out validation images, in the features of a
classifier trained on the task (:mod:`nas.evaluation.gan.features`): Inception weights cannot be downloaded
offline, so these are not Inception FIDs and are comparable only with each other. ``fid_floor`` (validation vs
train images, the value a perfect generator would approach) is reported with every result.

A config selects it with ``evaluator: {name: gan, task: mnist, options: {...}}``; the options are the
:class:`~nas.evaluation.gan.trainer.GanConfig` fields (``loss``, ``steps``, ``batch_size``, ``lr``, ``betas``,
``n_critic``, ``gp_weight``, ``disc_width``, ``disc_norm``, ``spectral_norm``, ``collapse_ratio``,
``diversity_samples``) and :data:`EVALUATOR_OPTIONS` (``eval_samples``, ``feature_epochs``, ``cache_dir``,
``grid_samples``, ``device``). Divergence and mode collapse come back as FAILED results with the reason.

Every completed result carries a PNG sample grid (``info["samples_png"]``, base64) of ``grid_samples`` images
generated from the same fixed latent vectors for every trial (seed :data:`GRID_SEED`), so grids compare across
trials; the report embeds those of the top trials.

Class-conditional generation: ``conditional: true`` in the space's options (the generator adds a learned class
embedding to ``z``) goes with ``conditional: true`` here (the default follows the space in a config): the
discriminator becomes a projection discriminator, every training batch pairs real images with their labels and
fakes with the same labels, FID samples are class-balanced, and the grid shows one class per column.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from nas.core.errors import ConfigError, did_you_mean
from nas.evaluation.evaluators import (
    EpochCallback,
    Evaluator,
    ModelCompiler,
    check_task_name,
    failures_as_results,
    register_evaluator,
)
from nas.evaluation.gan.features import FeatureNet, extract_features, feature_net
from nas.evaluation.gan.fid import density_coverage, fid_from_features
from nas.evaluation.gan.trainer import GanConfig, train_gan
from nas.evaluation.measure import count_params
from nas.evaluation.tasks import Task, load_task, task_kind
from nas.evaluation.training import resolve_device, seeded
from nas.trials.trial import Result, Status, Trial

__all__ = ["GanEvaluator", "FID_NOTE", "GRID_SEED", "EVALUATOR_OPTIONS", "GAN_OPTIONS", "to_unit_range",
           "generate", "fixed_latents", "sample_grid", "png_bytes"]

#: said next to every FID this framework reports
FID_NOTE = ("FID on the features of a classifier trained on the task (not Inception-v3: its weights cannot be "
            "downloaded offline); comparable only with FIDs from the same task and feature network")
#: seed of the latent vectors (and labels) every sample grid and export check is drawn from
GRID_SEED = 0
#: the evaluator's own options (the others are GanConfig fields)
EVALUATOR_OPTIONS = ("eval_samples", "feature_epochs", "cache_dir", "grid_samples", "device", "threads")
#: the training options, the fields of GanConfig
GAN_OPTIONS = tuple(GanConfig.__dataclass_fields__)


def to_unit_range(task: Task) -> dict[str, torch.Tensor]:
    """The task's image splits rescaled to ``[-1, 1]`` with the train split's min and max (clipped)."""
    lo, hi = float(task.x_train.min()), float(task.x_train.max())
    scale = (hi - lo) or 1.0
    return {split: torch.as_tensor(np.clip((x - lo) / scale * 2 - 1, -1, 1), dtype=torch.float32)
            for split, x in (("train", task.x_train), ("val", task.x_val), ("test", task.x_test))}


def fixed_latents(latent_dim: int, n: int, num_classes: int = 0, seed: int = GRID_SEED
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` latent vectors ``(n, latent_dim)`` from ``seed`` and, with ``num_classes > 0``, labels cycling through
    the classes (``0, 1, ..., num_classes - 1, 0, ...``: a grid with ``num_classes`` columns shows one class per
    column). The same arguments give the same tensors everywhere."""
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    return z, (torch.arange(n) % num_classes if num_classes > 0 else None)


@torch.no_grad()
def generate(generator: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Images of ``generator`` (eval mode) for latent vectors ``z`` (and labels ``y`` for a conditional one), on
    the CPU."""
    generator.eval()
    out = []
    for i in range(0, len(z), batch_size):
        args = [z[i:i + batch_size].to(device)] + ([] if y is None else [y[i:i + batch_size].to(device)])
        out.append(generator(*args).cpu())
    return torch.cat(out)


def sample_grid(images: torch.Tensor, columns: int = 8) -> np.ndarray:
    """Images ``(N, C, H, W)`` in ``[-1, 1]`` tiled row-major into one ``uint8`` picture (``(rows*H', cols*W')``
    for one channel, ``(..., 3)`` for RGB) with a 1-pixel border."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    n, c, h, w = x.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * (h + 1) + 1, columns * (w + 1) + 1, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, columns)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + k * (w + 1):1 + k * (w + 1) + w] = x[i].transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def png_bytes(grid: np.ndarray, scale: int = 2) -> bytes:
    """``grid`` (from :func:`sample_grid`) as PNG bytes (8-bit grey or RGB), each pixel repeated ``scale`` times per
    side. Pillow (a dependency of matplotlib) writes it."""
    big = np.ascontiguousarray(grid.repeat(scale, axis=0).repeat(scale, axis=1))
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG", optimize=True)  # uint8: grey (H, W) or RGB (H, W, 3)
    return buf.getvalue()


class GanEvaluator(Evaluator):
    """Train a generator per trial on ``task`` (an image classification task) and score it by ``-FID``.

    Args:
        compiler: compiles generator architectures (a space whose ``model_kind`` is ``"generator"``).
        task: an image task name; ``task_options`` go to :func:`~nas.evaluation.tasks.load_task`.
        gan: the :class:`GanConfig` (or its dict); ``gan_options`` (keyword arguments named after its fields, as a
            config's ``evaluator.options`` gives them) override it.
        eval_samples: generated images compared with the validation split (at most its size is useful).
        feature_epochs: epochs of the feature classifier; ``cache_dir`` keeps its weights across runs (a relative
            one is taken from the process's working directory here; a config resolves it against the config
            file's folder, or the experiment directory, first).
        grid_samples: images of the sample grid in each result's ``info["samples_png"]`` (0: none).
        data_seed: seed of the data split and of the feature classifier.
        device: where generators train (``auto``, the default: CUDA when available).
        threads: torch's CPU threads while a trial trains (None: torch's default; a config's
            ``execution.threads_per_trial`` when unset). One thread is much faster on a loaded machine.
    """

    name = "gan"
    metrics = frozenset({"fid", "fid_floor", "density", "coverage", "params", "train_seconds", "diversity"})

    def __init__(self, *, compiler: ModelCompiler, task: str = "mnist", task_options: Mapping[str, Any] | None = None,
                 gan: GanConfig | Mapping[str, Any] | None = None, eval_samples: int = 1000, feature_epochs: int = 5,
                 cache_dir: str | Path | None = None, grid_samples: int = 32, data_seed: int = 0,
                 device: str = "auto", threads: int | None = None, **gan_options: Any) -> None:
        problem = check_task_name(task, task_options)
        kind = task_kind(task)
        if problem != "classification" or kind not in (None, "image"):
            raise ConfigError(f"evaluator.task = {task!r} holds {kind or problem} data; the gan evaluator needs a "
                              "labelled image task (its FID features come from a classifier trained on the labels): "
                              "use mnist, digits or an image npz")
        known = (*GAN_OPTIONS, *EVALUATOR_OPTIONS)
        for key in gan_options:
            if key not in GAN_OPTIONS:
                raise ConfigError(f"evaluator.options.{key} is not an option of the gan evaluator"
                                  + did_you_mean(str(key), known) + f"; options: {', '.join(known)}")
        base = gan if isinstance(gan, GanConfig) else GanConfig.from_dict(dict(gan or {}))
        try:
            self.gan = GanConfig.from_dict({**{k: getattr(base, k) for k in GAN_OPTIONS}, **gan_options})
        except ConfigError as err:
            raise ConfigError(str(err).replace("gan.", "evaluator.options.", 1)) from None
        for key, value, low in (("eval_samples", eval_samples, 2), ("feature_epochs", feature_epochs, 1),
                                ("grid_samples", grid_samples, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"evaluator.options.{key} = {value!r}: must be an integer >= {low}")
        if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
            raise ConfigError(f"evaluator.options.cache_dir = {cache_dir!r}: must be a folder path (a string)")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"evaluator.options.threads = {threads!r}: must be a positive integer")
        self.threads = threads
        if device not in ("cpu", "cuda", "auto") and not str(device).startswith("cuda:"):
            raise ConfigError(f"evaluator.options.device = {device!r}: use cpu, cuda, cuda:N or auto")
        self.compiler = compiler
        self.task_name = task
        self.task_options = dict(task_options or {})
        self.eval_samples = eval_samples
        self.feature_epochs = feature_epochs
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir not in (None, "") else None
        self.grid_samples = grid_samples
        self.data_seed = data_seed
        self.device = device
        self._state: tuple[Task, dict[str, torch.Tensor], FeatureNet, np.ndarray, float] | None = None

    def with_training(self, **gan_options: Any) -> GanEvaluator:
        """A copy of this evaluator (same task, feature network and evaluation settings) whose training settings
        (:class:`GanConfig` fields) ``gan_options`` override: how a baseline trains with its published loss. A
        loss-dependent default (``lr``, ``betas``, ``n_critic``, ``disc_norm`` left unset) follows the new loss."""
        copy = GanEvaluator.__new__(GanEvaluator)
        copy.__dict__.update(self.__dict__)
        try:
            copy.gan = dataclasses.replace(self.gan, **gan_options)
        except (TypeError, ConfigError) as err:
            raise ConfigError(f"gan training override {gan_options}: {err}") from None
        return copy

    def __getstate__(self) -> dict[str, Any]:  # workers reload the task and feature network
        return {**self.__dict__, "_state": None}

    def prepared(self) -> tuple[Task, dict[str, torch.Tensor], FeatureNet, np.ndarray, float]:
        """The task, its images in ``[-1, 1]``, the feature network, the validation features and the FID floor
        (validation vs train), computed once per process."""
        if self._state is None:
            task = load_task(self.task_name, seed=self.data_seed, **self.task_options)
            if task.kind != "image":
                raise ConfigError(f"evaluator.task = {self.task_name!r} holds {task.kind} data; the gan evaluator "
                                  "needs images")
            images = to_unit_range(task)
            net = feature_net(images["train"].numpy(), task.y_train, task.num_classes, seed=self.data_seed,
                              epochs=self.feature_epochs, cache_dir=self.cache_dir)
            val = extract_features(net, images["val"])
            floor = fid_from_features(val, extract_features(net, images["train"]))
            self._state = (task, images, net, val, floor)
        return self._state

    def train(self, trial: Trial) -> tuple[nn.Module, Any, Task]:
        """Compile and train ``trial``'s generator as :meth:`evaluate` does (the same seed: the same weights on the
        CPU): the generator, the :class:`~nas.evaluation.gan.trainer.GanRun` and the task. Export retrains the
        best generators with it."""
        task, images, *_ = self.prepared()
        if self.threads:
            torch.set_num_threads(self.threads)
        with seeded(trial.seed):
            generator = self.compiler(trial.arch, task.input_shape, task.num_classes)
        if bool(getattr(generator, "conditional", False)) != self.gan.conditional:
            raise ConfigError(f"evaluator.options.conditional = {self.gan.conditional} but the space's generator is "
                              f"{'' if self.gan.conditional else 'class-'}conditional; set both to the same value")
        labels = torch.as_tensor(task.y_train, dtype=torch.long) if self.gan.conditional else None
        run = train_gan(generator, images["train"], self.gan, seed=trial.seed, device=resolve_device(self.device),
                        labels=labels, num_classes=task.num_classes)
        return generator, run, task

    def grid(self, generator: nn.Module, num_classes: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """The fixed inputs of the sample grid (the same for every trial, and the export's check): latent vectors,
        labels (a conditional generator: one class per column) and the number of columns."""
        latent = int(getattr(generator, "latent_dim"))  # noqa: B009
        if not self.gan.conditional:
            return (*fixed_latents(latent, self.grid_samples), 8)
        n = -(-self.grid_samples // num_classes) * num_classes
        return (*fixed_latents(latent, n, num_classes), num_classes)

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        def attempt() -> Result:
            _, _, net, val_features, floor = self.prepared()
            start = time.perf_counter()
            generator, run, task = self.train(trial)
            seconds = time.perf_counter() - start
            device = resolve_device(self.device)
            info = {"signal": f"-FID on {self.task_name} (classifier features, not Inception; lower FID is better)",
                    "metric": "fid",
                    "direction": "min", "loss": self.gan.loss, "budget": f"{self.gan.steps} generator steps",
                    "fid_note": FID_NOTE}
            metrics = {"params": float(count_params(generator)), "train_seconds": seconds, "fid_floor": floor}
            if run.failure is not None:
                return Result.failed(run.failure, metrics=metrics, info=info, history=run.history[-1:])
            gen = torch.Generator().manual_seed(trial.seed + 1)
            z = torch.randn(self.eval_samples, int(getattr(generator, "latent_dim")), generator=gen)  # noqa: B009
            y = torch.arange(self.eval_samples) % task.num_classes if self.gan.conditional else None
            fake = generate(generator, z, y, device=device)
            fake_features = extract_features(net, fake)
            fid = fid_from_features(val_features, fake_features)
            density, coverage = density_coverage(val_features, fake_features)
            metrics.update(fid=fid, density=density, coverage=coverage, diversity=run.diversity)
            if self.grid_samples:
                z, y, columns = self.grid(generator, task.num_classes)
                grid = sample_grid(generate(generator, z, y, device=device), columns)
                info["samples_png"] = base64.b64encode(png_bytes(grid)).decode("ascii")
            return Result(Status.COMPLETE, score=-fid, metrics=metrics, info=info, history=run.history[-1:])

        return failures_as_results(attempt)


register_evaluator(GanEvaluator)
