"""The architecture step of bilevel one-shot search (quark0/darts ``architect.py``).

First order: ``grad_alpha L_val(w, alpha)``. Second order (DARTS' unrolled step): the gradient of
``L_val(w', alpha)`` with ``w' = w - xi * (m + grad_w L_train(w, alpha) + wd * w)``, where ``m`` is the weight
optimiser's momentum buffer times its momentum (zero before the first weight step), i.e.

    grad_alpha L_val(w', alpha) - xi * grad2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)

where the Hessian-vector product is the central finite difference
``(grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)``, ``w+- = w +- eps * v``,
``eps = 0.01 / ||v||``, as in quark0/darts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Architect", "unrolled_alpha_grad", "Batch"]

Batch = tuple[torch.Tensor, torch.Tensor]
Regulariser = Callable[[], torch.Tensor]
#: makes the context forward passes and losses run in (an autocast for mixed precision)
Autocast = Callable[[], AbstractContextManager[object]]


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``d loss / d params`` with zeros for parameters the loss does not reach."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _squared_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum of squares of every entry of ``tensors`` (at least one), added tensor by tensor."""
    total = (tensors[0] * tensors[0]).sum()
    for t in tensors[1:]:
        total = total + (t * t).sum()
    return total


def _loss(model: nn.Module, batch: Batch, amp: Autocast = contextlib.nullcontext
          ) -> tuple[torch.Tensor, torch.Tensor]:
    with amp():
        logits = model(batch[0])
        return F.cross_entropy(logits, batch[1]), logits


def unrolled_alpha_grad(model: nn.Module, weights: Sequence[nn.Parameter], alphas: Sequence[nn.Parameter],
                        train: Batch, val: Batch, *, xi: float, weight_decay: float, r: float = 0.01,
                        momentum: Sequence[torch.Tensor | None] | None = None,
                        amp: Autocast = contextlib.nullcontext
                        ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """DARTS' second-order architecture gradient (see the module docstring); ``momentum`` is ``m`` per weight
    (None: zero). The weights are restored exactly afterwards. Returns (gradient per alpha, validation loss at
    ``w'``, its logits). Forward passes run in ``amp()``."""
    backup = [w.detach().clone() for w in weights]
    g_train = _grads(_loss(model, train, amp)[0], weights)
    moments = list(momentum) if momentum is not None else [None] * len(weights)
    with torch.no_grad():
        for w, g, m in zip(weights, g_train, moments):
            w.sub_(xi * ((m if m is not None else 0.0) + g + weight_decay * w))
    val_loss, logits = _loss(model, val, amp)
    grads = _grads(val_loss, list(alphas) + list(weights))
    d_alpha, v = grads[: len(alphas)], grads[len(alphas):]
    norm = torch.sqrt(_squared_norm(v))
    eps = r / max(float(norm), 1e-12)
    hvp = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, b, g in zip(weights, backup, v):
                w.copy_(b + sign * eps * g)
        hvp.append(_grads(_loss(model, train, amp)[0], alphas))
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    out = [da - xi * (p - n) / (2 * eps) for da, p, n in zip(d_alpha, hvp[0], hvp[1])]
    return out, val_loss.detach(), logits.detach()


class Architect:
    """Updates the architecture parameters ``alphas`` with Adam on validation batches.

    ``order`` 1 or 2 (see the module docstring); ``regulariser()`` (e.g. beta-decay) is added to the
    validation loss with weight ``reg_weight`` given per step; ``weight_optimizer`` (SGD) lends the unrolled
    step its momentum buffers; forward passes run in ``amp()`` (an autocast for mixed precision)."""

    def __init__(self, model: nn.Module, weights: Sequence[nn.Parameter], alphas: Sequence[nn.Parameter], *,
                 lr: float, weight_decay: float, order: int = 1, betas: tuple[float, float] = (0.5, 0.999),
                 regulariser: Regulariser | None = None, weight_optimizer: Any = None,
                 amp: Autocast = contextlib.nullcontext) -> None:
        self.model = model
        self.amp = amp
        self.weight_optimizer = weight_optimizer
        self.weights = list(weights)
        self.alphas = list(alphas)
        self.order = order
        self.regulariser = regulariser
        self.optimizer = torch.optim.Adam(self.alphas, lr=lr, betas=betas, weight_decay=weight_decay)

    def step(self, train: Batch, val: Batch, *, xi: float, weight_decay: float, reg_weight: float = 0.0
             ) -> tuple[float, torch.Tensor]:
        """One update; returns (validation loss, validation logits)."""
        if self.order == 2:
            grads, loss, logits = unrolled_alpha_grad(self.model, self.weights, self.alphas, train, val, xi=xi,
                                                      weight_decay=weight_decay, momentum=self._moments(),
                                                      amp=self.amp)
        else:
            loss, logits = _loss(self.model, val, self.amp)
            grads = _grads(loss, self.alphas)
            loss, logits = loss.detach(), logits.detach()
        if self.regulariser is not None and reg_weight > 0.0:
            grads = [g + r for g, r in zip(grads, _grads(reg_weight * self.regulariser(), self.alphas))]
        for a, g in zip(self.alphas, grads):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss), logits

    def _moments(self) -> list[torch.Tensor | None] | None:
        opt = self.weight_optimizer
        if opt is None:
            return None
        factor = opt.param_groups[0].get("momentum", 0.0)
        out: list[torch.Tensor | None] = []
        for w in self.weights:
            buf = opt.state.get(w, {}).get("momentum_buffer")
            out.append(None if buf is None or not factor else buf * factor)
        return out
