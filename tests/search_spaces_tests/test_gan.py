"""The ``gan`` generator space beyond the shared conformance suite: image sizes, the cell's edge rules, the
conditional option and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError, InvalidArchitectureError, ShapeError
from nas.graph.architecture import Cell
from search_spaces import get_space


@pytest.mark.parametrize(("cells", "shape"), [(2, (1, 28, 28)), (2, (1, 8, 8)), (3, (3, 32, 32))])
def test_members_generate_images_of_the_task_size(cells: int, shape: tuple[int, int, int]) -> None:
    space = get_space("gan", cells=cells, C=8, latent_dim=16)
    for seed in range(3):
        model = space.build_model(space.sample(np.random.default_rng(seed)), shape, 10)
        out = model(torch.randn(3, 16))
        assert out.shape == (3, *shape) and out.abs().max() <= 1


def test_every_up_op_appears_and_the_space_size_is_the_product() -> None:
    space = get_space("gan", C=4, latent_dim=8)
    assert space.decision_sizes() == [3, 3, 3, 4] * 2 and space.size() == (3 * 3 * 3 * 4) ** 2
    ops = {op for seed in range(40) for c in space.sample(np.random.default_rng(seed)).cells.values()
           for _, _, op in c.edges}
    assert {"up_nearest", "up_bilinear", "up_deconv", "none", "conv_3x3", "conv_5x5", "skip_connect"} <= ops


def test_transposed_conv_edges_have_weights_and_interpolation_edges_do_not() -> None:
    space = get_space("gan", cells=1, C=4, latent_dim=8, conv_ops=["skip_connect"])
    counts = {}
    for up in range(3):
        arch = space.decode([up, 0, 0, 3])
        counts[space.up_ops[up]] = sum(p.numel() for p in space.build_model(arch, (1, 8, 8), 2).cells.parameters())
    assert counts["up_nearest"] == counts["up_bilinear"] == 8  # the BatchNorm of the pre-activation only
    assert counts["up_deconv"] == 8 + 4 * 4 * 4 * 4


def test_conditional_generator_takes_labels() -> None:
    space = get_space("gan", C=4, latent_dim=8, conditional=True)
    model = space.build_model(space.sample(np.random.default_rng(0)), (1, 8, 8), 10)
    z = torch.randn(2, 8)
    model.eval()
    a, b = model(z, torch.tensor([0, 0])), model(z, torch.tensor([3, 3]))
    assert a.shape == (2, 1, 8, 8) and not torch.equal(a, b)
    with pytest.raises(ShapeError, match=r"packed \[z, one_hot\(y\)\] \(N, 18\), or forward\(z, y\)"):
        model(z)


def test_errors_name_the_problem() -> None:
    space = get_space("gan", cells=3, C=4, latent_dim=8)
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(ShapeError, match="divisible by 8, got 28x28"):
        space.build_model(arch, (1, 28, 28), 10)
    model = space.build_model(arch, (1, 32, 32), 10)
    with pytest.raises(ShapeError, match=r"latent vectors \(N, 8\).*got a tensor of shape \(2, 7\)"):
        model(torch.randn(2, 7))
    with pytest.raises(ConfigError, match="gan option conditional = 'yes'"):
        get_space("gan", conditional="yes")
    bad = Cell(family="gen", inputs=1, nodes=4, output=(3,),
               edges=((0, 1, "conv_3x3"), (1, 2, "conv_3x3"), (2, 3, "conv_3x3"), (0, 3, "none")))
    with pytest.raises(InvalidArchitectureError, match="edge 0->1 runs 'conv_3x3'"):
        space.compiler()(arch.replace(cells={**arch.cells, "cell_0": bad}), (1, 32, 32), 10)


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_references_are_members_with_their_stated_parameter_counts() -> None:
    space = get_space("gan")  # C=64, latent 128, 2 cells
    arch = space.reference("dcgan")
    assert space.contains(arch) and arch == space.reference("wgan-gp")
    assert {op for c in arch.cells.values() for _, _, op in c.edges} == {"up_deconv", "skip_connect", "none"}
    # linear 128 -> 64x7x7, two (BN + 4x4 transposed conv 64 -> 64), BN + 3x3 conv to 1 channel: as in the README
    expected = 128 * 3136 + 3136 + 2 * (128 + 64 * 64 * 16) + 128 + 577
    assert _params(space.build_model(arch, (1, 28, 28), 10)) == expected == 536_577
    with pytest.raises(ConfigError, match=r"needs ops .*up_deconv"):
        get_space("gan", up_ops=["up_nearest"]).reference("dcgan")
    with pytest.raises(ConfigError, match="gan reference 'began': choose from dcgan, wgan-gp"):
        space.reference("began")
