"""An unpaired image-to-image task built offline, and how a translator pair is scored on it.

Domain A is the task's images (e.g. MNIST digits), domain B the same kind of images under a known transform
(``invert``: ``x -> -x`` in ``[-1, 1]``, white digits on black become black on white; ``rotate90``: a quarter turn
counter-clockwise). :func:`make_unpaired` splits the task's train images in two DISJOINT halves by a seeded
permutation: A gets the first half as they are, B the transform of the second half, so no image of A has its
counterpart in B (the unpaired setting of CycleGAN). The held-out test split is kept PAIRED (``test_b`` is the
transform of ``test_a``), which gives a ground truth the training never saw.

:func:`translation_scores` reports, on that test split:

* ``mse_ab`` / ``l1_ab``: ``G(a)`` against the true ``transform(a)`` (and ``mse_ba`` / ``l1_ba`` for ``F(b)``
  against ``a``), in ``[-1, 1]`` pixel units; ``identity_mse_ab``: the error of not translating at all;
* ``acc_ab``: accuracy of a digit classifier (trained on the task's train split, domain A) on
  ``inverse_transform(G(a))``: does ``G`` keep the digit's identity? ``acc_ba``: the same on ``F(b)``;
  ``acc_real``: the classifier on the real test images (the ceiling);
* ``cycle_l1_a`` / ``cycle_l1_b``: the cycle reconstruction errors ``|F(G(a)) - a|`` and ``|G(F(b)) - b|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.gan.evaluator import to_unit_range
from nas.evaluation.tasks import Task

__all__ = ["TRANSFORMS", "UnpairedData", "make_unpaired", "apply_transform", "inverse_transform",
           "translation_scores"]

TRANSFORMS = ("invert", "rotate90")


def _check(transform: str) -> None:
    if transform not in TRANSFORMS:
        raise ConfigError(f"translation transform = {transform!r}: choose from {', '.join(TRANSFORMS)}")


def apply_transform(images: torch.Tensor, transform: str) -> torch.Tensor:
    """Domain A -> domain B: ``invert`` (``-x``) or ``rotate90`` (a quarter turn counter-clockwise, square
    images) of ``images`` ``(N, C, H, W)`` in ``[-1, 1]``."""
    _check(transform)
    return -images if transform == "invert" else torch.rot90(images, 1, dims=(2, 3))


def inverse_transform(images: torch.Tensor, transform: str) -> torch.Tensor:
    """Domain B -> domain A, the exact inverse of :func:`apply_transform`."""
    _check(transform)
    return -images if transform == "invert" else torch.rot90(images, -1, dims=(2, 3))


@dataclass(frozen=True)
class UnpairedData:
    """Two disjoint unpaired training domains and a paired held-out test split (see the module docstring); all
    images ``(N, C, H, W)`` float32 in ``[-1, 1]``."""

    transform: str
    train_a: torch.Tensor
    train_b: torch.Tensor
    test_a: torch.Tensor
    test_b: torch.Tensor
    test_labels: torch.Tensor
    #: every train image of the task (both halves, untransformed) and its labels: the digit classifier's data
    classifier_images: torch.Tensor
    classifier_labels: torch.Tensor


def make_unpaired(task: Task, transform: str = "invert", *, seed: int = 0, test_limit: int | None = None
                  ) -> UnpairedData:
    """The unpaired task of ``task`` (an image task) under ``transform``; the train halves are drawn with ``seed``.
    The test split is shuffled with ``seed`` too (tasks store it grouped by class), and ``test_limit`` keeps that
    many of its images (quick runs), so every class stays represented."""
    _check(transform)
    if task.kind != "image":
        raise ConfigError(f"unpaired translation needs an image task, got {task.name!r} ({task.kind})")
    h, w = task.input_shape[1:]
    if transform == "rotate90" and h != w:
        raise ConfigError(f"transform rotate90 needs square images, task {task.name!r} has {h}x{w}; use invert")
    images = to_unit_range(task)
    train = images["train"]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    half = len(train) // 2
    test_order = torch.randperm(len(images["test"]), generator=torch.Generator().manual_seed(seed + 1))[:test_limit]
    test_a = images["test"][test_order]
    labels = torch.as_tensor(task.y_test, dtype=torch.int64)[test_order]
    return UnpairedData(transform=transform, train_a=train[order[:half]],
                        train_b=apply_transform(train[order[half:]], transform), test_a=test_a,
                        test_b=apply_transform(test_a, transform), test_labels=labels, classifier_images=train,
                        classifier_labels=torch.as_tensor(task.y_train, dtype=torch.int64))


@torch.no_grad()
def _map(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def _accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((_map(classifier, x, torch.device("cpu")).argmax(1) == y).double().mean())


@torch.no_grad()
def translation_scores(g_ab: nn.Module, g_ba: nn.Module, data: UnpairedData, classifier: nn.Module, *,
                       device: torch.device | str = "cpu") -> dict[str, float]:
    """The figures of the module docstring for generators ``g_ab`` (A -> B) and ``g_ba`` (B -> A), put in eval
    mode; ``classifier`` maps domain-A images to class logits (on the CPU)."""
    device = torch.device(device)
    g_ab, g_ba, classifier = g_ab.eval(), g_ba.eval(), classifier.eval()
    a, b = data.test_a, data.test_b
    fake_b, fake_a = _map(g_ab, a, device), _map(g_ba, b, device)
    rec_a, rec_b = _map(g_ba, fake_b, device), _map(g_ab, fake_a, device)
    y = data.test_labels
    return {
        "mse_ab": float((fake_b - b).square().mean()), "l1_ab": float((fake_b - b).abs().mean()),
        "mse_ba": float((fake_a - a).square().mean()), "l1_ba": float((fake_a - a).abs().mean()),
        "identity_mse_ab": float((a - b).square().mean()),
        "acc_ab": _accuracy(classifier, inverse_transform(fake_b, data.transform), y),
        "acc_ba": _accuracy(classifier, fake_a, y), "acc_real": _accuracy(classifier, a, y),
        "cycle_l1_a": float((rec_a - a).abs().mean()), "cycle_l1_b": float((rec_b - b).abs().mean()),
    }
