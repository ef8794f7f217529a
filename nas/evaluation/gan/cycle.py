"""The CycleGAN trainer (Zhu et al., ICCV 2017): unpaired image-to-image translation between domains A and B.

Two generators, ``G: A -> B`` and ``F: B -> A`` (any modules mapping images to images in ``[-1, 1]``, e.g. the
graph-encoded :func:`nas.graph.references.cyclegan_generator`), and two PatchGAN discriminators ``D_A``, ``D_B``
(:class:`~nas.evaluation.gan.patch.PatchDiscriminator`, built here from the seed). Per step, on an A batch and an
independently drawn B batch:

* generators (one Adam over both): least-squares GAN loss ``(D_B(G(a)) - 1)^2 + (D_A(F(b)) - 1)^2`` (means over
  the patch maps) + ``cycle_weight`` (lambda, 10) x ``(|F(G(a)) - a| + |G(F(b)) - b|)`` + optionally the identity
  loss ``identity_weight x cycle_weight x (|G(b) - b| + |F(a) - a|)`` (the paper's 0.5 when used; 0, off, by
  default: it would push G towards the identity, the wrong answer for inversion);
* discriminators (one Adam over both): ``0.5 (D(real) - 1)^2 + 0.5 D(fake)^2`` per domain, the fakes drawn from a
  history of ``pool_size`` generated images (50 in the paper; 0 uses the current fakes), as in the reference code.

Adam ``lr`` 2e-4, betas ``(0.5, 0.999)``; the rate stays constant for the first ``1 - decay_fraction`` of the steps,
then falls linearly towards 0 (the paper: 100 epochs constant, 100 decaying, ``decay_fraction = 0.5``).

Failures are results, not exceptions: a non-finite loss stops the run as ``diverged at step k``, and a generator
whose test-time outputs are less diverse than ``collapse_ratio`` x its target domain's (mean pairwise L2 distance)
is ``mode collapse``. All randomness (discriminator weights, batches, the history pool) comes from ``seed``; build
the generators under the seed too (``nas.evaluation.training.seeded``) for bit-identical runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError
from nas.evaluation.gan.patch import PatchDiscriminator
from nas.evaluation.gan.trainer import sample_diversity

__all__ = ["CycleConfig", "CycleRun", "train_cycle", "ImagePool", "lsgan_loss"]


@dataclass(frozen=True)
class CycleConfig:
    """How a CycleGAN pair is trained (see the module docstring for each setting's role)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    cycle_weight: float = 10.0
    identity_weight: float = 0.0
    pool_size: int = 50
    decay_fraction: float = 0.5
    disc_width: int = 16
    disc_layers: int = 1
    collapse_ratio: float = 0.25
    diversity_samples: int = 128

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "disc_width", "disc_layers", "diversity_samples"):
            check_int(f"cycle.{name}", getattr(self, name), minimum=1)
        check_int("cycle.pool_size", self.pool_size, minimum=0)  # 0: no history
        check_number("cycle.lr", self.lr, above=0)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"cycle.betas = {self.betas!r}: must be two numbers in [0, 1), e.g. [0.5, 0.999]")
        for name in ("cycle_weight", "identity_weight"):
            check_number(f"cycle.{name}", getattr(self, name), low=0)
        check_number("cycle.decay_fraction", self.decay_fraction, low=0, high=1)
        if not 0 <= self.collapse_ratio < 1:
            raise ConfigError(f"cycle.collapse_ratio = {self.collapse_ratio!r}: must be in [0, 1)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CycleConfig:
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"cycle has no setting {key!r}; its settings: {', '.join(sorted(known))}")
        if data.get("betas") is not None:
            data = {**data, "betas": tuple(data["betas"])}
        return cls(**data)


@dataclass
class CycleRun:
    """What a run produced: the generators ``g_ab`` (A -> B) and ``g_ba`` (B -> A) in eval mode, the
    discriminators, per-step losses, and ``failure`` (``None``, ``diverged ...`` or ``mode collapse ...``)."""

    g_ab: nn.Module
    g_ba: nn.Module
    d_a: nn.Module
    d_b: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    failure: str | None = None


def lsgan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """The least-squares GAN loss (Mao et al. 2017): mean of ``(logits - 1)^2`` for real, ``logits^2`` for fake."""
    return (logits - 1).square().mean() if real else logits.square().mean()


class ImagePool:
    """The history of generated images (Shrivastava et al. 2017) the discriminators are shown: until ``size``
    images are held each new one is kept and returned; then, with probability 1/2, a new image replaces a random
    held one, which is returned in its place. Seeded by ``generator``; ``size`` 0 returns the batch as it is."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.gen = generator
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif float(torch.rand((), generator=self.gen)) < 0.5:
                i = int(torch.randint(self.size, (), generator=self.gen))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


def _set_grad(modules: tuple[nn.Module, ...], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def train_cycle(g_ab: nn.Module, g_ba: nn.Module, domain_a: torch.Tensor, domain_b: torch.Tensor,
                config: CycleConfig, *, seed: int = 0, device: torch.device | str = "cpu") -> CycleRun:
    """Train ``g_ab`` (A -> B) and ``g_ba`` (B -> A) on unpaired images ``domain_a`` and ``domain_b``
    ``(N, C, H, W)`` in ``[-1, 1]`` (their sizes may differ); see the module docstring."""
    cfg = config
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    shape = domain_a.shape[1:]
    if domain_b.shape[1:] != shape:
        raise ConfigError(f"the two domains hold images of different shapes: {tuple(shape)} and "
                          f"{tuple(domain_b.shape[1:])}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        d_a: nn.Module = PatchDiscriminator(shape, width=cfg.disc_width, layers=cfg.disc_layers)
        d_b: nn.Module = PatchDiscriminator(shape, width=cfg.disc_width, layers=cfg.disc_layers)
    g_ab, g_ba, d_a, d_b = (m.to(device).train() for m in (g_ab, g_ba, d_a, d_b))
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=cfg.lr, betas=cfg.betas)
    constant = round(cfg.steps * (1 - cfg.decay_fraction))
    decaying = max(cfg.steps - constant, 1)

    def rate(step: int) -> float:  # multiplier of lr for step (0-based): 1, then linearly down to 1/decaying
        return 1.0 if step < constant else 1.0 - (step - constant) / decaying

    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, rate) for opt in (opt_g, opt_d)]
    pool_a, pool_b = ImagePool(cfg.pool_size, gen), ImagePool(cfg.pool_size, gen)
    run = CycleRun(g_ab, g_ba, d_a, d_b)
    na, nb = len(domain_a), len(domain_b)
    bs = min(cfg.batch_size, na, nb)
    for step in range(cfg.steps):
        a = domain_a[torch.randint(na, (bs,), generator=gen)].to(device)
        b = domain_b[torch.randint(nb, (bs,), generator=gen)].to(device)
        # generators
        _set_grad((d_a, d_b), False)
        opt_g.zero_grad(set_to_none=True)
        fake_b, fake_a = g_ab(a), g_ba(b)
        adv = lsgan_loss(d_b(fake_b), True) + lsgan_loss(d_a(fake_a), True)
        cycle = F.l1_loss(g_ba(fake_b), a) + F.l1_loss(g_ab(fake_a), b)
        loss_g = adv + cfg.cycle_weight * cycle
        identity = torch.zeros((), device=device)
        if cfg.identity_weight > 0:
            identity = F.l1_loss(g_ab(b), b) + F.l1_loss(g_ba(a), a)
            loss_g = loss_g + cfg.identity_weight * cfg.cycle_weight * identity
        loss_g.backward()
        opt_g.step()
        # discriminators
        _set_grad((d_a, d_b), True)
        opt_d.zero_grad(set_to_none=True)
        old_b, old_a = pool_b.query(fake_b.detach()), pool_a.query(fake_a.detach())
        loss_d_a = 0.5 * (lsgan_loss(d_a(a), True) + lsgan_loss(d_a(old_a), False))
        loss_d_b = 0.5 * (lsgan_loss(d_b(b), True) + lsgan_loss(d_b(old_b), False))
        (loss_d_a + loss_d_b).backward()
        opt_d.step()
        for schedule in schedules:
            schedule.step()
        record = {"step": float(step + 1), "g_adv": float(adv.detach()), "cycle": float(cycle.detach()),
                  "identity": float(identity.detach()), "g_loss": float(loss_g.detach()),
                  "d_a": float(loss_d_a.detach()), "d_b": float(loss_d_b.detach())}
        run.history.append(record)
        if not all(torch.isfinite(t) for t in (loss_g, loss_d_a, loss_d_b)):
            run.failure = (f"diverged at step {step + 1}: g_loss={record['g_loss']}, d_a={record['d_a']}, "
                           f"d_b={record['d_b']}")
            break
    g_ab.eval()
    g_ba.eval()
    if run.failure is None:
        run.failure = _collapse(run, domain_a, domain_b, cfg, gen, device)
    return run


@torch.no_grad()
def _collapse(run: CycleRun, domain_a: torch.Tensor, domain_b: torch.Tensor, cfg: CycleConfig,
              gen: torch.Generator, device: torch.device) -> str | None:
    """The failure reason when a generator's outputs are non-finite or collapsed, else ``None``."""
    for name, model, source, target in (("G: A->B", run.g_ab, domain_a, domain_b),
                                        ("F: B->A", run.g_ba, domain_b, domain_a)):
        k = min(cfg.diversity_samples, len(source), len(target))
        out = model(source[torch.randperm(len(source), generator=gen)[:k]].to(device)).cpu()
        if not torch.isfinite(out).all():
            return f"diverged: the trained generator {name} outputs non-finite pixels"
        if k < 2:
            continue
        ours, theirs = sample_diversity(out), sample_diversity(target[torch.randperm(len(target), generator=gen)[:k]])
        if ours < cfg.collapse_ratio * theirs:
            return (f"mode collapse: {name} output diversity {ours:.3f} is below {cfg.collapse_ratio} x the target "
                    f"domain's {theirs:.3f}")
    return None
