"""GAN losses: the non-saturating loss (Goodfellow et al., 2014) and WGAN-GP (Gulrajani et al., 2017).

Each ``*_d_loss(D, real, fake)`` returns the discriminator's (critic's) loss to minimise, each ``*_g_loss(D, fake)``
the generator's. ``fake`` passed to the discriminator losses should be detached.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: a discriminator / critic: images -> one logit or value per image (a module, or a module with its labels bound)
Critic = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["LOSSES", "ns_d_loss", "ns_g_loss", "wgan_gp_d_loss", "wgan_g_loss", "gradient_penalty"]

LOSSES = ("ns", "wgan-gp")


def ns_d_loss(disc: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``-log D(real) - log(1 - D(fake))`` with ``D = sigmoid(logit)``, written with softplus for stability."""
    return F.softplus(-disc(real)).mean() + F.softplus(disc(fake)).mean()


def ns_g_loss(disc: Critic, fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss ``-log D(fake)``."""
    return F.softplus(-disc(fake)).mean()


def gradient_penalty(disc: Critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None
                     = None) -> torch.Tensor:
    """``E[(||grad D(x_hat)||_2 - 1)^2]`` on random interpolates ``x_hat`` of real and fake images."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


def wgan_gp_d_loss(disc: Critic, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The critic's ``E[D(fake)] - E[D(real)] + gp_weight * GP``."""
    return disc(fake).mean() - disc(real).mean() + gp_weight * gradient_penalty(disc, real, fake, generator)


def wgan_g_loss(disc: Critic, fake: torch.Tensor) -> torch.Tensor:
    """The WGAN generator loss ``-E[D(fake)]``."""
    return -disc(fake).mean()
