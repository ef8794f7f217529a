"""The GAN trainer: a generator against the fixed :class:`~nas.evaluation.gan.discriminator.Discriminator`,
alternating updates, seeded.

Per generator step the discriminator (critic) takes ``n_critic`` steps on a real batch and a detached fake batch,
then the generator one step on a fresh fake batch. Losses: ``ns`` (non-saturating, Adam betas ``(0.5, 0.999)``,
DCGAN) or ``wgan-gp`` (gradient penalty ``gp_weight``, Adam betas ``(0.0, 0.9)``, no batch norm in the critic).

Failures are results, not exceptions: a non-finite loss stops the run as ``diverged``, and a generator whose
samples are less diverse than ``collapse_ratio`` times the real images' (mean pairwise L2 distance of
``diversity_samples`` images) is ``mode collapse``. All randomness (weights, batches, latent vectors, penalty
interpolates) comes from ``seed``: the same seed gives the same generator, bit for bit on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
from torch import nn

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError
from nas.evaluation.gan.discriminator import NORMS, Discriminator
from nas.evaluation.gan.losses import LOSSES, ns_d_loss, ns_g_loss, wgan_g_loss, wgan_gp_d_loss

__all__ = ["GanConfig", "GanRun", "train_gan", "sample_diversity"]


@dataclass(frozen=True)
class GanConfig:
    """How a generator is trained. ``lr`` and ``betas`` default by ``loss`` (``None``: 2e-4 and (0.5, 0.999) for
    ``ns``, 1e-4 and (0.0, 0.9) for ``wgan-gp``); ``n_critic`` defaults to 1 for ``ns`` and 5 for ``wgan-gp``."""

    loss: str = "ns"
    steps: int = 300
    batch_size: int = 64
    lr: float | None = None
    betas: tuple[float, float] | None = None
    n_critic: int | None = None
    gp_weight: float = 10.0
    disc_width: int = 64
    spectral_norm: bool = False
    #: the discriminator's normalisation (:data:`~nas.evaluation.gan.discriminator.NORMS`); None: ``spectral`` with
    #: ``spectral_norm``, else ``batch`` for ``ns`` and ``none`` for ``wgan-gp`` (the penalty is per sample)
    disc_norm: str | None = None
    collapse_ratio: float = 0.25
    diversity_samples: int = 256
    #: class-conditional: the generator takes ``(z, y)``, the discriminator is a projection one (needs labels)
    conditional: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"gan.loss = {self.loss!r}: choose from {', '.join(LOSSES)}")
        for name in ("steps", "batch_size", "disc_width", "diversity_samples"):
            check_int(f"gan.{name}", getattr(self, name), minimum=1)
        if self.n_critic is not None:
            check_int("gan.n_critic", self.n_critic, minimum=1)
        if self.lr is not None:
            check_number("gan.lr", self.lr, above=0)
        if not isinstance(self.conditional, bool):
            raise ConfigError(f"gan.conditional = {self.conditional!r}: expected true or false")
        if self.disc_norm is not None and self.disc_norm not in NORMS:
            raise ConfigError(f"gan.disc_norm = {self.disc_norm!r}: choose from {', '.join(NORMS)}")
        if self.disc_norm == "batch" and self.wgan:
            raise ConfigError("gan.disc_norm = 'batch' with loss 'wgan-gp': the gradient penalty is per sample, batch "
                              "norm couples the samples; use none or spectral")
        if not 0 <= self.collapse_ratio < 1:
            raise ConfigError(f"gan.collapse_ratio = {self.collapse_ratio!r}: must be in [0, 1)")

    @property
    def wgan(self) -> bool:
        return self.loss == "wgan-gp"

    def resolved(self) -> GanConfig:
        """This config with the loss-dependent defaults filled in."""
        return replace(self, lr=self.lr or (1e-4 if self.wgan else 2e-4),
                       betas=self.betas or ((0.0, 0.9) if self.wgan else (0.5, 0.999)),
                       n_critic=self.n_critic or (5 if self.wgan else 1),
                       disc_norm=self.disc_norm or ("spectral" if self.spectral_norm
                                                    else ("none" if self.wgan else "batch")))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        known = set(cls.__dataclass_fields__)
        for key in data:
            if key not in known:
                raise ConfigError(f"gan has no setting {key!r}; its settings: {', '.join(sorted(known))}")
        if "betas" in data and data["betas"] is not None:
            data = {**data, "betas": tuple(data["betas"])}
        return cls(**data)


@dataclass
class GanRun:
    """What a training run produced: the trained generator (eval mode), the discriminator, per-step losses,
    and ``failure`` (``None``, or the reason: ``diverged ...`` / ``mode collapse ...``)."""

    generator: nn.Module
    discriminator: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    failure: str | None = None
    diversity: float = float("nan")
    real_diversity: float = float("nan")


@torch.no_grad()
def sample_diversity(images: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the flattened ``images`` (distinct pairs)."""
    flat = images.flatten(1).double()
    n = flat.shape[0]
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


def _latent(model: nn.Module, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(n, int(getattr(model, "latent_dim")), generator=gen).to(device)  # noqa: B009


def train_gan(generator: nn.Module, real: torch.Tensor, config: GanConfig, *, seed: int = 0,
              device: torch.device | str = "cpu", labels: torch.Tensor | None = None,
              num_classes: int = 0) -> GanRun:
    """Train ``generator`` (a module with ``latent_dim`` mapping ``z`` to images in ``[-1, 1]``) on ``real`` images
    ``(N, C, H, W)`` in ``[-1, 1]``; see the module docstring. The discriminator is built here from ``seed``.

    With ``config.conditional`` the generator takes ``(z, y)`` and the discriminator is a projection one over
    ``num_classes``: every step draws a real batch with its ``labels`` and generates the fake batch for the same
    labels."""
    cfg = config.resolved()
    if cfg.conditional and (labels is None or num_classes < 1):
        raise ValueError("conditional GAN training needs the real images' labels and num_classes")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        disc = Discriminator(real.shape[1:], width=cfg.disc_width, norm=cfg.disc_norm or "batch",
                             num_classes=num_classes if cfg.conditional else 0)
    generator, disc = generator.to(device).train(), disc.to(device).train()
    assert cfg.lr is not None and cfg.betas is not None and cfg.n_critic is not None  # set by resolved()
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)
    run = GanRun(generator, disc)
    n = real.shape[0]
    bs = min(cfg.batch_size, n)
    y_all = labels.to(torch.long) if labels is not None else None

    def fakes(k: int, y: torch.Tensor | None) -> torch.Tensor:
        z = _latent(generator, k, gen, device)
        return generator(z, y) if cfg.conditional else generator(z)

    for step in range(cfg.steps):
        d_loss = torch.zeros(())
        for _ in range(cfg.n_critic):
            idx = torch.randint(n, (bs,), generator=gen)
            batch = real[idx].to(device)
            y = y_all[idx].to(device) if cfg.conditional and y_all is not None else None
            d = partial(disc, y=y) if y is not None else disc
            with torch.no_grad():
                fake = fakes(bs, y)
            opt_d.zero_grad(set_to_none=True)
            d_loss = (wgan_gp_d_loss(d, batch, fake, cfg.gp_weight, gen) if cfg.wgan
                      else ns_d_loss(d, batch, fake))
            d_loss.backward()
            opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        y = (y_all[torch.randint(n, (bs,), generator=gen)].to(device)
             if cfg.conditional and y_all is not None else None)
        fake = fakes(bs, y)
        d = partial(disc, y=y) if y is not None else disc
        g_loss = wgan_g_loss(d, fake) if cfg.wgan else ns_g_loss(d, fake)
        g_loss.backward()
        opt_g.step()
        dl, gl = float(d_loss.detach()), float(g_loss.detach())
        run.history.append({"step": float(step + 1), "d_loss": dl, "g_loss": gl})
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            run.failure = f"diverged at step {step + 1}: d_loss={dl}, g_loss={gl}"
            break
    generator.eval()
    if run.failure is None:
        with torch.no_grad():
            k = min(cfg.diversity_samples, n)
            y = (torch.arange(k, device=device) % num_classes) if cfg.conditional else None
            samples = fakes(k, y).cpu()
            if not torch.isfinite(samples).all():
                run.failure = "diverged: the trained generator outputs non-finite pixels"
            else:
                run.diversity = sample_diversity(samples)
                run.real_diversity = sample_diversity(real[torch.randperm(n, generator=gen)[:k]])
                if run.diversity < cfg.collapse_ratio * run.real_diversity:
                    run.failure = (f"mode collapse: sample diversity {run.diversity:.3f} is below "
                                   f"{cfg.collapse_ratio} x the real images' {run.real_diversity:.3f}")
    return run
