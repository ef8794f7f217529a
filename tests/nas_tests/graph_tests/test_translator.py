"""The ``translator`` skeleton and the graph-encoded CycleGAN generator: compiled by the common compiler, image in,
image of the same shape out, parameter counts equal to the stated formula, bad graphs refused with reasons."""

from __future__ import annotations

import pytest
import torch

from nas.core.errors import InvalidArchitectureError, ShapeError
from nas.evaluation.measure import count_params
from nas.graph.architecture import Architecture, Cell
from nas.graph.compiler import build_model
from nas.graph.generator import TranslatorNetwork
from nas.graph.references import cyclegan_generator, cyclegan_generator_params


def test_cyclegan_generator_compiles_from_its_graph_and_maps_28_to_28() -> None:
    arch = cyclegan_generator(channels=4, res_blocks=2)
    again = Architecture.from_json(arch.to_json())
    assert again == arch and again.canonical_hash() == arch.canonical_hash()
    model = build_model(again, (1, 28, 28), 1)
    assert isinstance(model, TranslatorNetwork)
    x = torch.rand(3, 1, 28, 28, requires_grad=True) * 2 - 1
    out = model(x)
    assert out.shape == (3, 1, 28, 28) and out.abs().max() <= 1
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("channels", "res_blocks", "downsamplings", "shape"),
                         [(16, 3, 2, (1, 28, 28)), (4, 0, 1, (3, 10, 6)), (8, 1, 3, (3, 32, 32))])
def test_parameter_count_follows_the_formula(channels: int, res_blocks: int, downsamplings: int,
                                             shape: tuple[int, int, int]) -> None:
    model = build_model(cyclegan_generator(channels=channels, res_blocks=res_blocks, downsamplings=downsamplings),
                        shape, 1)
    assert count_params(model) == cyclegan_generator_params(image_channels=shape[0], channels=channels,
                                                            res_blocks=res_blocks, downsamplings=downsamplings)
    assert model(torch.zeros(1, *shape)).shape == (1, *shape)


def test_the_papers_size_matches_the_reference_codes_resnet_9blocks() -> None:
    """k = 64 with 9 residual blocks on RGB is the CycleGAN code's ``resnet_9blocks`` (11,378,179 parameters,
    as its training log prints: "Total number of parameters : 11.378 M")."""
    assert cyclegan_generator_params(image_channels=3, channels=64, res_blocks=9) == 11_378_179
    model = build_model(cyclegan_generator(channels=64, res_blocks=9), (3, 64, 64), 1)
    assert count_params(model) == 11_378_179


def _translator(layers: list[list[object]], cells: dict[str, Cell]) -> Architecture:
    return Architecture(space="t", cells=cells, macro={"skeleton": "translator", "layers": layers})


def _chain(*ops: str) -> Cell:
    return Cell(family="gen", inputs=1, nodes=len(ops) + 1, output=(len(ops),),
                edges=tuple((i, i + 1, op) for i, op in enumerate(ops)))


def test_bad_translator_graphs_are_refused_with_reasons() -> None:
    down, up = _chain("down_conv_3x3_in"), _chain("up_deconv_3x3_in")
    with pytest.raises(InvalidArchitectureError, match=r"change the resolution by x0.5 in all.*as many up_\* as down_"):
        build_model(_translator([["down", 4]], {"down": down}), (1, 8, 8), 1)
    with pytest.raises(ShapeError, match="downsampling to 1/4 needs an image size divisible by 4, got 10x10"):
        build_model(_translator([["down", 4], ["down", 4], ["up", 4], ["up", 4]], {"down": down, "up": up}),
                    (1, 10, 10), 1)
    mixed = Cell(family="gen", inputs=1, nodes=3, output=(2,),
                 edges=((0, 1, "down_conv_3x3_in"), (1, 2, "conv_3x3_in"), (0, 2, "conv_3x3_in")))
    with pytest.raises(InvalidArchitectureError, match="edges into node 2 change the resolution differently"):
        build_model(_translator([["m", 4]], {"m": mixed}), (1, 8, 8), 1)
    with pytest.raises(InvalidArchitectureError, match=r"'layers'\[0\] = \['down', 0\]"):
        build_model(_translator([["down", 0]], {"down": down}), (1, 8, 8), 1)
    model = build_model(_translator([["down", 2], ["up", 2]], {"down": down, "up": up}), (1, 8, 8), 1)
    with pytest.raises(ShapeError, match=r"takes images \(N, 1, 8, 8\), got \(2, 1, 8, 6\)"):
        model(torch.zeros(2, 1, 8, 6))
