"""The report's Grad-CAM section: find a trained model of the best conv architecture, explain a few validation
images with :func:`nas.outputs.report.cam.grad_cam`, and draw them.

The model comes from ``DIR/export/`` when ``nas export`` wrote one (``manifest.json`` lists ``models`` with
``rank``, ``trial_id`` and ``files.json.path`` / ``files.weights.path`` relative to ``export/``; the weights are
a ``state_dict`` read with ``torch.load(weights_only=True)``); the manifest and files are read directly. Otherwise
the best trial's architecture is trained again with the experiment's evaluator: same training config, same
seed, so on the CPU the weights are those the search measured (``retrain_epochs`` caps the epochs to make it
quicker, at the cost of that equality).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from nas.evaluation.evaluators import Evaluator, TrainingEvaluator
from nas.evaluation.tasks import Task
from nas.evaluation.training import add_dropout, evaluate_split, seeded, train
from nas.graph.architecture import Architecture
from nas.graph.compiler import build_model
from nas.runtime.config import ExperimentConfig, build_evaluator, build_space
from nas.storage.store import StoredTrial
from search_spaces.base import SearchSpace

__all__ = ["ExperimentModels", "TrainedModel", "SkipSection", "exported_model", "retrained_model",
           "best_trained_model", "training_task", "pick_images", "gradcam_figure", "overlay_figure"]


class ExperimentModels:
    """What Grad-CAM needs of an experiment to find or train a model: its directory, and the search space and
    evaluator built from its config (each on first use)."""

    def __init__(self, *, directory: str | Path, config: ExperimentConfig) -> None:
        self.directory = Path(directory)
        self.config = config

    @functools.cached_property
    def space(self) -> SearchSpace:
        return build_space(self.config)

    @functools.cached_property
    def evaluator(self) -> Evaluator:
        return build_evaluator(self.config, self.space)


class SkipSection(Exception):  # noqa: N818 (a signal, not an error)
    """A report section cannot be drawn; the message says why (shown in the report instead)."""


@dataclass
class TrainedModel:
    """A trained model of an experiment's architecture, where it came from, and its validation accuracy now."""

    model: nn.Module
    trial_id: int
    arch: Architecture
    source: str
    val_acc: float


def _train_evaluator(exp: ExperimentModels) -> TrainingEvaluator:
    ev = exp.evaluator
    if exp.space.input_kind != "image":
        raise SkipSection(f"space {exp.space.name!r} builds {exp.space.input_kind} models; "
                          "Grad-CAM explains image models only")
    if not isinstance(ev, TrainingEvaluator):
        raise SkipSection(f"the experiment's evaluator ({getattr(ev, 'name', type(ev).__name__)}) trains no model, "
                          "so there are no trained weights to explain")
    return ev


def training_task(exp: ExperimentModels) -> Task:
    """The task the experiment's evaluator trains on (:class:`SkipSection` when it trains none, not images, or
    regression targets: Grad-CAM explains a class score)."""
    task = _train_evaluator(exp).task
    if task.regression:
        raise SkipSection(f"task {task.name!r} is regression; Grad-CAM explains classifiers only")
    return task


def _val_acc(model: nn.Module, task: Task) -> float:
    return evaluate_split(model, torch.as_tensor(task.x_val), torch.as_tensor(task.y_val))[1]


def exported_model(exp: ExperimentModels) -> TrainedModel | None:
    """The rank-1 model of ``DIR/export/`` with its weights, or ``None`` when there is no export.
    Raises :class:`SkipSection` only for a non-image or untrained experiment; an export that cannot be read
    raises ``ValueError`` saying what is wrong with it."""
    ev = _train_evaluator(exp)
    root = Path(exp.directory) / "export"
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        entry = min(manifest["models"], key=lambda m: m["rank"])
        arch = Architecture.from_json((root / entry["files"]["json"]["path"]).read_text())
        weights_path = root / entry["files"]["weights"]["path"]
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable export (missing file, bad JSON, bad pickle) falls back the same way
        raise ValueError(f"export/manifest.json or its files cannot be read ({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    task = ev.task
    model = build_model(arch, task.input_shape, task.num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        add_dropout(model, ev.config_for(arch).dropout or 0.5)  # trained with dropout: the head is wrapped
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"weights {weights_path.name} do not fit the exported architecture: "
                             f"{str(err).splitlines()[0]}") from None
    rel = weights_path.relative_to(exp.directory).as_posix()
    model = model.cpu().eval()
    val = _val_acc(model, task)
    return TrainedModel(model, int(entry.get("trial_id", -1)), arch,
                        f"the exported model of rank {entry['rank']} ({rel}), validation accuracy {val:.2f}", val)


def retrained_model(exp: ExperimentModels, trial: StoredTrial, retrain_epochs: int | None = None) -> TrainedModel:
    """Train ``trial``'s architecture again as the evaluator did (its training config and seed); with
    ``retrain_epochs`` at most that many epochs."""
    ev = _train_evaluator(exp)
    cfg = ev.config_for(trial.arch)
    if retrain_epochs is not None:
        cfg = cfg.replace(epochs=max(1, min(retrain_epochs, cfg.epochs)))
    task = ev.task
    with seeded(trial.seed):
        model = exp.space.build_model(trial.arch, task.input_shape, task.num_classes)
        report = train(model, task, cfg, seed=trial.seed, metric=getattr(ev, "metric", None))  # as the search chose
    model = model.cpu().eval()
    recorded = trial.metrics.get("val_acc")
    note = f" (the search measured {recorded:.2f})" if isinstance(recorded, float) else ""
    return TrainedModel(model, trial.id, trial.arch,
                        f"retrained for this report because export/ holds no exported model: {report.epochs_run} "
                        f"epochs with the search's training config and seed, validation accuracy "
                        f"{report.val_acc:.2f}{note}", report.val_acc)


def best_trained_model(exp: ExperimentModels, ranked: list[StoredTrial],
                       retrain_epochs: int | None = None) -> TrainedModel:
    """The exported rank-1 model if there is one that loads, else the best trial retrained
    (:class:`SkipSection` when neither is possible)."""
    if not ranked:
        raise SkipSection("no completed trial")
    try:
        found = exported_model(exp)
    except ValueError as err:
        found = None
        problem = str(err)
    else:
        problem = ""
    if found is not None:
        return found
    model = retrained_model(exp, ranked[0], retrain_epochs)
    if problem:
        model.source += f" (the export was not used: {problem})"
    return model


def pick_images(task: Task, count: int) -> list[int]:
    """Indices into the validation split: the first image of each class, classes in order, then the following
    images, until ``count`` are chosen (deterministic)."""
    y = np.asarray(task.y_val)
    chosen: list[int] = []
    for cls in range(task.num_classes):
        hits = np.flatnonzero(y == cls)
        if len(hits) and len(chosen) < count:
            chosen.append(int(hits[0]))
    for i in range(len(y)):
        if len(chosen) >= count:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen


def display_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A ``(C, H, W)`` standardised image scaled to ``[0, 1]`` for display, and its colour map."""
    lo, hi = float(image.min()), float(image.max())
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    if scaled.shape[0] == 3:
        return np.transpose(scaled, (1, 2, 0)), None
    return scaled[0], "gray"


def overlay_figure(images: np.ndarray, heatmaps: Sequence[np.ndarray], titles: Sequence[str],
                   captions: Sequence[str], *, cmap: str = "jet", vmin: float = 0.0, vmax: float = 1.0,
                   alpha: float = 0.5, interpolation: str = "bilinear", title: str | None = None) -> Figure:
    """The two-row layout of every image explanation (the report's Grad-CAM, ``nas explain``'s maps): on top the
    images ``(N, C, H, W)`` (:func:`display_image`) titled ``titles``; below each image again with its heat map
    ``(H, W)`` drawn over it in ``cmap`` between ``vmin`` and ``vmax``, titled ``captions``; ``title`` above
    all."""
    n = len(images)
    fig = Figure(figsize=(1.6 * n + 0.4, 3.6 + (0.4 if title else 0.0)), dpi=100)
    axes = np.atleast_2d(fig.subplots(2, n, squeeze=False))
    for i in range(n):
        shown, image_cmap = display_image(images[i])
        height, width = shown.shape[:2]
        extent = (0, width, height, 0)
        axes[0, i].imshow(shown, cmap=image_cmap, interpolation="nearest", extent=extent)
        axes[0, i].set_title(titles[i], fontsize=8)
        axes[1, i].imshow(shown, cmap=image_cmap, interpolation="nearest", extent=extent)
        axes[1, i].imshow(heatmaps[i], cmap=cmap, alpha=alpha, interpolation=interpolation, extent=extent,
                          vmin=vmin, vmax=vmax)
        axes[1, i].set_title(captions[i], fontsize=8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def gradcam_figure(images: np.ndarray, labels: list[str], cam: Any, class_names: tuple[str, ...]) -> Figure:
    """Two rows (:func:`overlay_figure`): the images (with their true class) and the Grad-CAM heat maps over them
    (with the predicted class and its probability)."""
    captions = [f"pred {class_names[int(p)]} ({100 * float(q):.0f}%)" for p, q in zip(cam.predicted, cam.probability)]
    return overlay_figure(images, [h.numpy() for h in cam.heatmaps], [f"true {label}" for label in labels], captions)
