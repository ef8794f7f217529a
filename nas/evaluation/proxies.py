"""Zero-cost proxies: scores of an untrained network that correlate with its trained accuracy.

* ``synflow`` (Tanaka et al., NeurIPS 2020; as a NAS proxy: Abdelfattah et al., ICLR 2021): data-free.
  Parameters are replaced by their absolute values, batch norm is removed, an all-ones input is passed in
  double precision and the score is ``sum(|theta * dR/dtheta|)`` of ``R = sum(output)``; reported as log.
* ``naswot`` (Mellor et al., ICML 2021, "NAS without training"): data-based. The binary ReLU activation
  codes of a minibatch give a kernel ``K = C C^T + (1-C)(1-C)^T``; the score is ``log|det K|``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

__all__ = ["synflow", "naswot", "PROXIES"]


def _strip_batchnorm(model: nn.Module) -> None:
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            _strip_batchnorm(child)


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """log synflow score of ``model`` for inputs shaped like ``x`` (only the shape of ``x`` is used)."""
    net = copy.deepcopy(model).double().eval()
    _strip_batchnorm(net)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    ones = torch.ones(1, *x.shape[1:], dtype=torch.float64, device=x.device)
    torch.sum(net(ones)).backward()
    total = sum((p * p.grad).abs().sum().item() for p in net.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """NASWOT score of ``model`` on the minibatch ``x``."""
    codes: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        codes.append((out.detach().reshape(out.shape[0], -1) > 0).double())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    was = model.training
    model.train()  # batch statistics, as in the paper's code
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    if not codes:
        return 0.0
    c = torch.cat(codes, dim=1)
    k = c @ c.t() + (1 - c) @ (1 - c).t()
    sign, logdet = torch.linalg.slogdet(k)
    return float(logdet) if sign != 0 else -math.inf


PROXIES = {"synflow": synflow, "naswot": naswot}
