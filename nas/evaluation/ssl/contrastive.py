"""``contrastive``: SimCLR (Chen et al., 2020): two augmented views of each sample (:mod:`nas.evaluation.augment`),
a projection head, the NT-Xent loss; optionally MoCo's momentum encoder and queue of negatives (He et al., 2020)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError
from nas.evaluation.augment import IMAGE_AUGMENTATIONS, SEQUENCE_AUGMENTATIONS, make_augmenter
from nas.evaluation.ssl.base import WHERE, Pretext
from nas.evaluation.ssl.heads import ProjectionHead

__all__ = ["Contrastive", "nt_xent", "DEFAULT_VIEWS"]

#: the augmentations that make a view, by data kind (``augment`` option overrides)
DEFAULT_VIEWS = {"image": ("crop", "rotate", "cutout"), "sequence": ("jitter", "scaling", "time_shift", "window_warp")}


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR's NT-Xent loss of the paired projections ``z1[i]``, ``z2[i]`` (each view's positive is its pair, the
    other ``2N - 2`` views are negatives), and the fraction of views whose most similar view is their pair."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets), (sim.argmax(1) == targets).float().mean()


class Contrastive(Pretext):
    """Options: ``temperature`` (0.5), ``dim`` (128: the backbone's head outputs, then ``relu`` and a linear layer
    of that size: SimCLR's two-layer projection), ``augment`` (the view's augmentations, default
    :data:`DEFAULT_VIEWS`), ``momentum`` (None: SimCLR; e.g. 0.99: a momentum encoder, MoCo, encodes the second
    view) and ``queue`` (0; with ``momentum``, that many past keys as extra negatives).

    Validation: NT-Xent of the online encoder on two views of every validation sample (drawn from the fixed
    validation generator, batches of the training batch size), so SimCLR and MoCo candidates are scored alike;
    the score is minus that loss (``contrastive_loss``), ``contrastive_acc`` (%) is how often a view's nearest
    view is its pair."""

    name = "contrastive"
    kinds = ("image", "sequence")
    metric = "contrastive_loss"
    maximize = False
    OPTIONS: ClassVar[dict[str, Any]] = {"temperature": 0.5, "dim": 128, "augment": None, "momentum": None, "queue": 0}

    @classmethod
    def check(cls, input_shape: Sequence[int], kind: str, options: Mapping[str, Any]) -> None:
        super().check(input_shape, kind, options)
        opts = {**cls.OPTIONS, **options}
        check_number(f"{WHERE}.temperature", opts["temperature"], low=1e-3, high=10.0, finite=True)
        check_int(f"{WHERE}.dim", opts["dim"], minimum=2)
        check_int(f"{WHERE}.queue", opts["queue"], minimum=0)
        if opts["momentum"] is not None:
            value = check_number(f"{WHERE}.momentum", opts["momentum"], low=0.0, high=1.0, finite=True)
            if value >= 1.0:
                raise ConfigError(f"{WHERE}.momentum = {value!r}: must be below 1 (1 never updates the momentum "
                                  "encoder); MoCo uses 0.99 or 0.999")
        elif opts["queue"]:
            raise ConfigError(f"{WHERE}.queue = {opts['queue']!r} needs a momentum encoder (its keys fill the queue); "
                              "add momentum: 0.99, or remove queue")
        if opts["augment"] is not None:
            table = IMAGE_AUGMENTATIONS if kind == "image" else SEQUENCE_AUGMENTATIONS
            names = opts["augment"]
            if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
                raise ConfigError(f"{WHERE}.augment = {names!r}: give a non-empty list of {kind} augmentations from "
                                  f"{', '.join(table)}")
            for name in names:
                if name not in table:
                    raise ConfigError(f"{WHERE}.augment: {name!r} is not a {kind} augmentation; choose from "
                                      f"{', '.join(table)}")

    @classmethod
    def out_dim(cls, input_shape: Sequence[int], options: Mapping[str, Any]) -> int:
        return int({**cls.OPTIONS, **options}["dim"])

    def __init__(self, backbone: torch.nn.Module, *, kind: str, temperature: float = 0.5, dim: int = 128,
                 augment: Sequence[str] | None = None, momentum: float | None = None, queue: int = 0) -> None:
        super().__init__(backbone)
        self.projection = ProjectionHead(dim)
        self.temperature = float(temperature)
        self.views = make_augmenter(tuple(augment) if augment else DEFAULT_VIEWS[kind], kind)
        self.momentum = momentum
        self.key_encoder: torch.nn.Module | None = None
        if momentum is not None:
            self.key_encoder = copy.deepcopy(torch.nn.Sequential(backbone, self.projection))
            for p in self.key_encoder.parameters():
                p.requires_grad_(False)
        self.queue: torch.Tensor
        self.register_buffer("queue", torch.zeros(int(queue), dim))
        self.queued = 0  # keys in the queue so far (it fills before it cycles)
        self.pointer = 0
        self._last_keys: torch.Tensor | None = None

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(x))

    def loss(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        v1, v2 = self.views(x, gen), self.views(x, gen)
        if self.key_encoder is None:
            return nt_xent(self._project(v1), self._project(v2), self.temperature)[0]
        q = F.normalize(self._project(v1), dim=1)
        with torch.no_grad():
            self.key_encoder.train(self.training)
            k = F.normalize(self.key_encoder(v2), dim=1)
        keys = torch.cat([k, self.queue[: self.queued]]) if self.queued else k  # in-batch keys and past ones
        logits = q @ keys.T / self.temperature
        loss = F.cross_entropy(logits, torch.arange(len(q), device=q.device))
        self._last_keys = k
        return loss

    @torch.no_grad()
    def after_step(self) -> None:
        if self.key_encoder is None or self.momentum is None:
            return
        online = torch.nn.Sequential(self.backbone, self.projection)
        for key_p, p in zip(self.key_encoder.parameters(), online.parameters()):
            key_p.mul_(self.momentum).add_(p.detach(), alpha=1.0 - self.momentum)
        for key_b, b in zip(self.key_encoder.buffers(), online.buffers()):
            key_b.copy_(b)
        size = len(self.queue)
        keys = self._last_keys
        if size and keys is not None:
            keys = keys[-size:]
            idx = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
            self.queue[idx] = keys
            self.pointer = int((self.pointer + len(keys)) % size)
            self.queued = min(size, self.queued + len(keys))

    @torch.no_grad()
    def validate(self, x: torch.Tensor, gen: torch.Generator, batch_size: int) -> dict[str, float]:
        def sums(xb: torch.Tensor) -> Iterator[tuple[float, float, int]]:
            if len(xb) < 2:  # a lone sample has no negatives
                return
            batch_loss, batch_acc = nt_xent(self._project(self.views(xb, gen)), self._project(self.views(xb, gen)),
                                            self.temperature)
            yield float(batch_loss) * len(xb), float(batch_acc) * len(xb), len(xb)

        loss, acc, n = self.batch_sums(x, batch_size, sums) or (0.0, 0.0, 0)
        return {"contrastive_loss": loss / max(n, 1), "contrastive_acc": 100.0 * acc / max(n, 1)}
