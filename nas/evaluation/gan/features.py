"""The feature network FID and density/coverage are computed on: a small CNN the framework trains on the task's
images once and caches.

Inception-v3 weights cannot be downloaded here, so FIDs are NOT Inception FIDs: they are Fréchet distances in the
128-d penultimate layer of this classifier (trained on the task's train split, images scaled to ``[-1, 1]``). They
rank generators on the same task and feature network; they are not comparable with published numbers.

The network depends only on the task's train images, labels, the seed and :data:`FEATURE_VERSION`; with a
``cache_dir`` its weights are written once (atomically) and read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nas.core.io import atomic_write

__all__ = ["FeatureNet", "feature_net", "extract_features", "FEATURE_VERSION", "FEATURE_DIM"]

FEATURE_VERSION = 1
FEATURE_DIM = 128


class FeatureNet(nn.Module):
    """Conv(32)-ReLU-pool, Conv(64)-ReLU-pool, linear to :data:`FEATURE_DIM` (the features), linear classifier."""

    def __init__(self, image_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * (h // 4) * (w // 4), FEATURE_DIM), nn.ReLU())
        self.classifier = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def _key(images: np.ndarray, labels: np.ndarray, seed: int, epochs: int) -> str:
    h = hashlib.sha256()
    for part in (np.ascontiguousarray(images, dtype=np.float32), np.ascontiguousarray(labels, dtype=np.int64)):
        h.update(str(part.shape).encode())
        h.update(part.tobytes())
    h.update(f"{seed}/{epochs}/{FEATURE_VERSION}".encode())
    return h.hexdigest()[:16]


def feature_net(images: np.ndarray, labels: np.ndarray, num_classes: int, *, seed: int = 0, epochs: int = 5,
                cache_dir: str | Path | None = None) -> FeatureNet:
    """The feature network for ``images`` ``(N, C, H, W)`` in ``[-1, 1]`` and their ``labels``: trained
    (Adam 1e-3, batch 64, ``epochs`` epochs, seeded by ``seed``) or, when ``cache_dir`` holds it, loaded. In eval
    mode, on the CPU."""
    net_rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureNet(images.shape[1:], num_classes)
    path = Path(cache_dir) / f"featnet-{_key(images, labels, seed, epochs)}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return net.eval()
    x, y = torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.int64)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=net_rng)
        for i in range(0, len(y), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = net.state_dict()
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    return net


@torch.no_grad()
def extract_features(net: FeatureNet, images: torch.Tensor | np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The :data:`FEATURE_DIM`-d features of ``images`` ``(N, C, H, W)`` in ``[-1, 1]``, as float64 numpy."""
    x = torch.as_tensor(images, dtype=torch.float32).cpu()
    net = net.eval()
    return torch.cat([net.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).double().numpy()
