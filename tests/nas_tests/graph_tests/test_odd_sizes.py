"""Every image side a space accepts builds: the residual reduction block's shortcut and its strided conv agree on
odd sides too (nb201, resnet20), so forward and backward run for sides 5..33."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.graph import references
from nas.graph.compiler import build_model
from nas.graph.ops.conv import ResNetBasicBlock
from search_spaces import get_space

SIDES = list(range(5, 34))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("height_only", [False, True])
def test_reduction_block_shapes_agree(side: int, height_only: bool) -> None:
    width = 8 if height_only else side
    block = ResNetBasicBlock(3, 4, 2)
    out = block(torch.randn(2, 3, side, width))
    assert out.shape == (2, 4, -(-side // 2), -(-width // 2))


@pytest.mark.parametrize("side", SIDES)
def test_nb201_builds_every_side(side: int) -> None:
    space = get_space("nb201", C=4, N=1)
    arch = space.sample(np.random.default_rng(side))
    model = space.compiler()(arch, (3, side, side), 10)
    out = model(torch.randn(2, 3, side, side))
    out.sum().backward()
    assert out.shape == (2, 10)


@pytest.mark.parametrize("side", SIDES)
def test_resnet20_builds_every_side(side: int) -> None:
    model = build_model(references.get("resnet20"), (1, side, side + 1), 3)
    out = model(torch.randn(2, 1, side, side + 1))
    out.sum().backward()
    assert out.shape == (2, 3)


def test_even_sides_unchanged() -> None:
    """On even sides the shortcut is the published 2x2 average pool."""
    block = ResNetBasicBlock(2, 2, 2)
    x = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(block.downsample[0](x), torch.nn.functional.avg_pool2d(x, 2))
