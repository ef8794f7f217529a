"""Sanity checks of attributions.

* Model randomisation (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): an explanation that
  reflects what the model learned must change when the learned weights are replaced by random ones. As Adebayo
  et al. do, the weights are re-initialised: every module of a copy of the model runs its own initialiser
  (``reset_parameters``: the network as it was before training), a parameter no module initialises is re-drawn
  from ``N(0, s^2)`` (``s`` the trained tensor's standard deviation), from torch's RNG seeded by ``seed`` inside
  ``fork_rng``. The same inputs are attributed for the same classes, and the Spearman rank correlation of the two
  attributions is taken per input: of their magnitudes for methods whose maps are magnitudes (Grad-CAM,
  saliency), of the signed values for methods whose sign is part of the explanation (Integrated Gradients, LIME,
  KernelSHAP); both are recorded, as Adebayo et al. report both. A random network is one draw of many:
  :data:`DRAWS` re-initialisations are made (seeds ``seed``, ``seed + 1``, ...); per draw the correlation is
  averaged over the inputs, and the check decides on the mean over the draws of its absolute value, passing when
  that is below :data:`RANDOMISATION_THRESHOLD`. The absolute value per draw matters for signed maps: a map
  that is ``+/- c (x - baseline)`` for every network ranks the inputs' elements by the input alone, and its sign,
  set by the draw, would otherwise average a correlation of +0.8 in one draw and -0.8 in the next to a pass. A
  map that is constant on either side shares no ranking with the other and counts as correlation 0.
  :func:`cascading_randomisation`
  re-initialises the top-level modules from the output down, one more at a time, as in Adebayo et al.'s
  cascade, to show where a map stops depending on the weights.
* Deletion and insertion (Petsiuk et al., "RISE", BMVC 2018): input elements are removed (set to 0, the
  train-split mean of standardised data) from the most to the least attributed, or inserted into an all-zero
  input in that order; the area under the curve of the explained class's probability over the fraction changed
  is the score (deletion: lower is better; insertion: higher is better). The same curves for a random order
  are the reference a faithful explanation must beat.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

__all__ = ["RANDOMISATION_THRESHOLD", "CURVE_STEPS", "DRAWS", "Randomisation", "Faithfulness", "randomised_copy",
           "rank_correlation", "randomisation_check", "cascading_randomisation", "deletion_insertion"]

#: the model-randomisation check passes when the mean rank correlation is below this
RANDOMISATION_THRESHOLD = 0.5
#: re-initialisations the randomisation check averages over
DRAWS = 3
#: points of the deletion and insertion curves (fractions 0, 1/steps, ..., 1)
CURVE_STEPS = 20


@dataclass(frozen=True)
class Randomisation:
    """The Spearman correlation the check decides on (of magnitudes or of signed values, see the module doc):
    trained against re-initialised model, averaged over the inputs per draw, then the mean over the ``draws``
    re-initialisations of its absolute value (``per_input``: the compared kind averaged over the draws);
    ``magnitudes`` and ``signed``: both kinds, plain means over inputs and draws; ``*_per_draw``: per draw, the
    mean over the inputs; ``passed`` when ``correlation`` is below ``threshold``."""

    correlation: float
    per_input: list[float]
    threshold: float
    magnitudes: float = float("nan")
    signed: float = float("nan")
    draws: int = 1
    magnitudes_per_draw: list[float] = field(default_factory=list)
    signed_per_draw: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.correlation < self.threshold


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion AUCs (probability of the explained class, mean over inputs) in the attribution's
    order and in a random order."""

    deletion: float
    insertion: float
    random_deletion: float
    random_insertion: float


def randomised_copy(model: nn.Module, seed: int, layers: Sequence[str] | None = None) -> nn.Module:
    """A copy of ``model`` whose parameters (those of the submodules named ``layers`` only, when given) are
    re-initialised: each module's own ``reset_parameters`` (the initialiser it was built with), and ``N(0, s^2)``
    (``s`` the trained tensor's standard deviation, or 0.1 for single values and constant tensors) for a
    parameter no module initialises; torch's RNG seeded by ``seed`` inside ``fork_rng``, so the caller's RNG is
    untouched. Buffers (batch-norm statistics) are kept. ``model`` is not changed."""
    twin = copy.deepcopy(model)
    roots = [twin] if layers is None else [twin.get_submodule(name) for name in layers]
    done: set[int] = set()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for root in roots:
            for module in root.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
                    done.update(id(p) for p in module.parameters(recurse=False))
        generator = torch.Generator().manual_seed(seed)
        for root in roots:
            for p in root.parameters():
                if id(p) in done:
                    continue
                scale = float(p.std()) if p.numel() > 1 else 0.0
                scale = scale if scale > 0 else 0.1
                p.copy_(torch.randn(p.shape, generator=generator).to(p) * scale)
    return twin


def rank_correlation(a: np.ndarray, b: np.ndarray, absolute: bool = True) -> float:
    """Spearman correlation of two attribution maps (flattened), of their magnitudes when ``absolute``; 0 when
    either is constant."""
    x, y = np.ravel(a), np.ravel(b)
    if absolute:
        x, y = np.abs(x), np.abs(y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def _compare(ours: np.ndarray, theirs: np.ndarray) -> tuple[list[float], list[float]]:
    """Per input: the rank correlation of the magnitudes and of the signed values."""
    return ([rank_correlation(a, b, True) for a, b in zip(ours, theirs)],
            [rank_correlation(a, b, False) for a, b in zip(ours, theirs)])


def randomisation_check(explain: Callable[[nn.Module], torch.Tensor], model: nn.Module, seed: int,
                        trained: torch.Tensor | None = None,
                        threshold: float = RANDOMISATION_THRESHOLD, absolute: bool = True,
                        draws: int = DRAWS) -> Randomisation:
    """Run ``explain`` (the attribution of fixed inputs and classes, given a model) on ``model`` (unless its
    result ``trained`` is passed) and on ``draws`` :func:`randomised_copy` of it (seeds ``seed``, ``seed + 1``,
    ...), and compare per input; the check decides on magnitudes when ``absolute``, else on signed values, by
    the mean over draws of the absolute per-draw correlation (module doc)."""
    ours = (trained if trained is not None else explain(model)).numpy()
    magnitudes, signed = [], []
    for k in range(draws):
        mags, signs = _compare(ours, explain(randomised_copy(model, seed + k)).numpy())
        magnitudes.append(mags)
        signed.append(signs)
    compared = np.asarray(magnitudes if absolute else signed)  # (draws, inputs)
    per_draw_m, per_draw_s = np.mean(magnitudes, axis=1), np.mean(signed, axis=1)
    return Randomisation(float(np.mean(np.abs(compared.mean(axis=1)))), [float(v) for v in compared.mean(axis=0)],
                         threshold, magnitudes=float(np.mean(magnitudes)), signed=float(np.mean(signed)),
                         draws=draws, magnitudes_per_draw=[float(v) for v in per_draw_m],
                         signed_per_draw=[float(v) for v in per_draw_s])


def cascading_randomisation(explain: Callable[[nn.Module], torch.Tensor], model: nn.Module, seed: int,
                            trained: torch.Tensor | None = None) -> list[tuple[str, float, float]]:
    """Adebayo et al.'s cascade: the top-level modules that hold parameters, from the output side (the last
    registered) down, re-initialised one more at a time (:func:`randomised_copy` with ``seed``); per stage the
    name of the module re-initialised last and the mean rank correlation of magnitudes and of signed values with
    the trained model's attributions."""
    ours = (trained if trained is not None else explain(model)).numpy()
    names = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
    out = []
    for k in range(1, len(names) + 1):
        layers = names[len(names) - k:]
        mags, signs = _compare(ours, explain(randomised_copy(model, seed, layers)).numpy())
        out.append((layers[0], float(np.mean(mags)), float(np.mean(signs))))
    return out


def _curve(model: nn.Module, x: torch.Tensor, target: torch.Tensor, order: torch.Tensor, insert: bool,
           steps: int) -> np.ndarray:
    """Probability of ``target`` as the elements of each input are deleted (or inserted) in ``order``."""
    n, size = x.shape[0], x[0].numel()
    flat = x.reshape(n, size)
    probs = []
    with torch.no_grad():
        for k in range(steps + 1):
            count = round(k * size / steps)
            chosen = torch.zeros(n, size, dtype=torch.bool)
            chosen.scatter_(1, order[:, :count], True)
            keep = chosen if insert else ~chosen
            changed = torch.where(keep, flat, torch.zeros_like(flat)).reshape(x.shape)
            p = model(changed).softmax(dim=1).gather(1, target[:, None])[:, 0]
            probs.append(p.numpy())
    return np.stack(probs, axis=1)  # (n, steps + 1)


def _auc(curve: np.ndarray) -> float:
    """Trapezoid area of curves over ``[0, 1]``, averaged over inputs."""
    dx = 1.0 / (curve.shape[1] - 1)
    return float(np.mean((curve[:, 1:] + curve[:, :-1]).sum(axis=1) * dx / 2))


def deletion_insertion(model: nn.Module, x: torch.Tensor, target: torch.Tensor, attributions: torch.Tensor,
                       seed: int, steps: int = CURVE_STEPS) -> Faithfulness:
    """The deletion and insertion AUCs of ``attributions`` (shape of ``x``) for classes ``target``, and of one
    random order per input (from a generator seeded by ``seed``). The model is put in eval mode for the call."""
    was = model.training
    model.eval()
    try:
        n = x.shape[0]
        ranked = torch.argsort(attributions.reshape(n, -1), dim=1, descending=True, stable=True)
        generator = torch.Generator().manual_seed(seed)
        shuffled = torch.stack([torch.randperm(ranked.shape[1], generator=generator) for _ in range(n)])
        x = x.detach().float()
        return Faithfulness(
            deletion=_auc(_curve(model, x, target, ranked, False, steps)),
            insertion=_auc(_curve(model, x, target, ranked, True, steps)),
            random_deletion=_auc(_curve(model, x, target, shuffled, False, steps)),
            random_insertion=_auc(_curve(model, x, target, shuffled, True, steps)))
    finally:
        model.train(was)
