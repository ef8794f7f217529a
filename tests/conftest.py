"""Shared test setup: one intra-op thread and a fixed torch seed for every test.

The models under test are tiny; on small CI machines torch's thread pool costs far more than it saves
(a 2x1x8x8 ResNet-20 forward pass takes ~1 s with 2 threads and a few ms with 1).
"""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same torch seed and one thread (a test may change either)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
