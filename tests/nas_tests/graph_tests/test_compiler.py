"""nas.graph.compiler (and the cell modules of nas.graph.cells): skeletons, shape checks, macro errors, published
sizes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from nas.core.errors import InvalidArchitectureError, ShapeError
from nas.graph.architecture import Architecture, Cell
from nas.graph.cells import ConvCell, DartsRNNLayer, SequenceCell, darts_rnn_layer
from nas.graph.compiler import SKELETONS, build_model
from search_spaces import get_space

# -- helpers ------------------------------------------------------------------------------------


def chain(family: str, ops: list[str], **kw: Any) -> Cell:
    return Cell(family=family, inputs=1, nodes=len(ops) + 1, edges=tuple((i, i + 1, op) for i, op in enumerate(ops)),
                output=(len(ops),), **kw)


def image_arch(cells: dict[str, Cell] | None = None, **macro: Any) -> Architecture:
    m: dict[str, Any] = {"skeleton": "cells", "stem_channels": 4, "layers": [["c", 4]]}
    m.update(macro)
    return Architecture(space="test", cells=cells or {"c": chain("conv", ["nor_conv_3x3", "skip_connect"])}, macro=m)


def seq_arch(cells: dict[str, Cell] | None = None, **macro: Any) -> Architecture:
    m: dict[str, Any] = {"skeleton": "sequence", "d_model": 8, "stack": ["body"]}
    m.update(macro)
    return Architecture(space="test", cells=cells or {"body": chain("sequence", ["mhsa_2", "ffn"])}, macro=m)


RNN_CELL = Cell(family="rnn", inputs=1, nodes=4, edges=((0, 1, "tanh"), (1, 2, "relu"), (1, 3, "sigmoid")),
                output=(1, 2, 3), combine="mean", fan_in=1)


def run(model: nn.Module, x: torch.Tensor, classes: int) -> torch.Tensor:
    """Forward + backward; checks the output shape and that every parameter gets a gradient."""
    out = model(x)
    assert out.shape == (x.shape[0], classes)
    assert torch.isfinite(out).all()
    out.logsumexp(dim=1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    return out


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- the cells skeleton ---------------------------------------------------------------------------

CELLS_VARIANTS = {
    "stem": {},
    "no-stem": {"stem_channels": 0},
    "stem-5x5": {"stem_kernel": 5},
    "preact-hidden": {"head_preact": True, "head_hidden": [6, 5]},
    "flatten": {"head_pool": "flatten", "head_hidden": [12]},
    "resblock": {"layers": [["c", 4], ["resblock", 8], ["c", 8]]},
    "reduction-cell": {"layers": [["c", 4], ["pool", 4], ["c", 6]]},
}


@pytest.mark.parametrize("variant", CELLS_VARIANTS)
def test_cells_skeleton_builds_and_trains(variant: str) -> None:
    cells = {"c": chain("conv", ["nor_conv_3x3", "skip_connect"]),
             "pool": chain("conv", ["max_pool_3x3"], reduction=True)}
    arch = image_arch(cells, **CELLS_VARIANTS[variant])
    model = build_model(arch, (3, 8, 8), 7)
    run(model, torch.randn(2, 3, 8, 8), 7)


def test_cells_skeleton_tracks_channels_of_concat_cells() -> None:
    cat = Cell(family="conv", inputs=1, nodes=3, edges=((0, 1, "nor_conv_1x1"), (0, 2, "nor_conv_3x3")),
               output=(1, 2), combine="concat")
    arch = image_arch({"cat": cat}, layers=[["cat", 4], ["cat", 5]])
    model = build_model(arch, (3, 8, 8), 3)
    assert [m.out_channels for m in model.body] == [8, 10]
    assert model.classifier.mlp[-1].in_features == 10
    run(model, torch.randn(2, 3, 8, 8), 3)


def test_cells_skeleton_flatten_head_sees_the_final_resolution() -> None:
    cells = {"c": chain("conv", ["conv_3x3"]), "pool": chain("conv", ["max_pool_3x3"], reduction=True)}
    arch = image_arch(cells, stem_channels=0, layers=[["c", 4], ["pool", 4]], head_pool="flatten")
    model = build_model(arch, (1, 9, 9), 10)
    assert model.classifier.mlp[0].in_features == 4 * 5 * 5
    run(model, torch.randn(2, 1, 9, 9), 10)


# -- the darts skeleton ---------------------------------------------------------------------------


def test_darts_skeleton_layout() -> None:
    space = get_space("darts", C=4, layers=8)
    model = build_model(space.named("DARTS_V2"), (3, 8, 8), 10)
    shapes: list[tuple[int, ...]] = []
    for cell in model.cells:
        cell.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    run(model, torch.randn(2, 3, 8, 8), 10)
    # reductions at 1/3 and 2/3 depth double C; cells concatenate their 4 intermediate nodes
    assert shapes == [(16, 8, 8), (16, 8, 8), (32, 4, 4), (32, 4, 4), (32, 4, 4), (64, 2, 2), (64, 2, 2), (64, 2, 2)]
    assert model.stem[0].out_channels == 3 * 4


def test_darts_v2_has_the_published_parameter_count() -> None:
    """quark0/darts train.py prints 'param size = 3.349342MB' for DARTS_V2 at C=36, 20 layers, CIFAR-10."""
    arch = get_space("darts", C=36, layers=20).named("DARTS_V2")
    model = build_model(arch, (3, 32, 32), 10)
    assert n_params(model) == 3_349_342


def test_darts_drop_path_is_random_in_training_only() -> None:
    model = build_model(get_space("darts", C=4, layers=3).named("DARTS_V1"), (3, 8, 8), 5)
    x = torch.randn(4, 3, 8, 8)
    model.set_drop_path(0.5)
    assert all(cell.cell.drop_prob == 0.5 for cell in model.cells)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    b = model(x)
    assert a.shape == b.shape == (4, 5) and not torch.allclose(a, b)


def test_darts_skeleton_needs_a_reduction_cell() -> None:
    arch = get_space("darts", C=4, layers=3).named("DARTS_V2")
    swapped = arch.replace(cells={"normal": arch.cell("reduce"), "reduce": arch.cell("normal")})
    with pytest.raises(InvalidArchitectureError, match=r"cell 'reduce' must be a reduction cell and 'normal' not"):
        build_model(swapped, (3, 8, 8), 10)
    with pytest.raises(InvalidArchitectureError, match=r"skeleton uses cell 'normal'.*unknown cell 'normal'"):
        build_model(arch.replace(cells={"reduce": arch.cell("reduce")}), (3, 8, 8), 10)


# -- the sequence skeleton ------------------------------------------------------------------------


@pytest.mark.parametrize(("pos_encoding", "pool"),
                         [("none", "mean"), ("pe_sinusoidal", "last"), ("pe_learned", "mean")])
def test_sequence_skeleton_builds_and_trains(pos_encoding: str, pool: str) -> None:
    arch = seq_arch(pos_encoding=pos_encoding, pool=pool)
    model = build_model(arch, (6, 3), 4)
    run(model, torch.randn(2, 6, 3), 4)


def test_sequence_skeleton_runs_rnn_cells() -> None:
    body = chain("sequence", ["cell:r", "gru"])
    arch = seq_arch({"body": body, "r": RNN_CELL}, stack=["body", "body"])
    model = build_model(arch, (5, 3), 2)
    assert sum(isinstance(m, DartsRNNLayer) for m in model.modules()) == 2
    run(model, torch.randn(2, 5, 3), 2)


def test_sequence_last_pooling_reads_the_last_step_only() -> None:
    arch = seq_arch({"body": chain("sequence", ["skip_connect"])}, pool="last")
    model = build_model(arch, (5, 3), 2).eval()
    x = torch.randn(2, 5, 3)
    y = x.clone()
    y[:, :-1] = torch.randn(2, 4, 3)
    assert torch.allclose(model(x), model(y))
    mean_model = build_model(arch.replace(macro={**arch.macro, "pool": "mean"}), (5, 3), 2).eval()
    assert not torch.allclose(mean_model(x), mean_model(y))


def test_sequence_models_accept_other_lengths() -> None:
    model = build_model(seq_arch({"body": chain("sequence", ["lstm"])}), (6, 3), 2)
    assert model(torch.randn(2, 11, 3)).shape == (2, 2)


# -- cell modules -------------------------------------------------------------------------------


@pytest.mark.parametrize(("combine", "factor"), [("sum", 2.0), ("mean", 1.0)])
def test_conv_cell_combines_outputs(combine: str, factor: float) -> None:
    cell = Cell(family="conv", inputs=1, nodes=3, edges=((0, 1, "skip_connect"), (0, 2, "skip_connect")),
                output=(1, 2), combine=combine)
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(ConvCell(cell, [4], 4)(x), factor * x)


def test_conv_cell_concat_and_zero_nodes() -> None:
    cell = Cell(family="conv", inputs=1, nodes=3, edges=((0, 1, "skip_connect"), (0, 2, "none")),
                output=(1, 2), combine="concat")
    module = ConvCell(cell, [4], 4)
    x = torch.randn(2, 4, 5, 5)
    out = module(x)
    assert module.out_channels == 8 and out.shape == (2, 8, 5, 5)
    assert torch.equal(out[:, :4], x) and not out[:, 4:].any()
    with pytest.raises(ValueError, match="cell has 1 inputs, got 2 input widths"):
        ConvCell(cell, [4, 4], 4)


def test_sequence_cell_projects_concat_back_to_d_model() -> None:
    cell = Cell(family="sequence", inputs=1, nodes=3, edges=((0, 1, "ffn"), (0, 2, "skip_connect")), output=(1, 2),
                combine="concat")
    module = SequenceCell(cell, 8, 5)
    assert module.project is not None and module.project.in_features == 16
    assert module(torch.randn(2, 5, 8)).shape == (2, 5, 8)


def test_darts_rnn_layer_is_causal() -> None:
    layer = darts_rnn_layer(RNN_CELL, 3, 6)
    x = torch.randn(2, 5, 3)
    out = layer(x)
    assert out.shape == (2, 5, 6)
    y = x.clone()
    y[:, -1] += 1.0
    changed = layer(y)
    assert torch.allclose(out[:, :-1], changed[:, :-1]) and not torch.allclose(out[:, -1], changed[:, -1])


# -- input shape errors -------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "shape", "layout"), [
    (image_arch(), (32, 32), "(channels, height, width)"),
    (image_arch(), (3, 32, 32, 1), "(channels, height, width)"),
    (image_arch(), (3, 0, 32), "(channels, height, width)"),
    (image_arch(), (3, 32.0, 32), "(channels, height, width)"),
    (seq_arch(), (3, 32, 32), "(time steps, features)"),
    (seq_arch(), (30,), "(time steps, features)"),
])
def test_wrong_input_shape_at_build_names_the_expected_layout(arch: Architecture, shape: tuple, layout: str) -> None:
    with pytest.raises(ShapeError) as info:
        build_model(arch, shape, 10)
    msg = str(info.value)
    assert layout in msg and repr(tuple(shape)) in msg and repr(arch.macro["skeleton"]) in msg


def test_wrong_number_of_classes() -> None:
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ShapeError, match="num_classes must be a positive integer"):
            build_model(image_arch(), (3, 8, 8), bad)


def test_wrong_channel_count_at_forward_time() -> None:
    model = build_model(image_arch(), (3, 8, 8), 10)
    with pytest.raises(ShapeError, match=r"expects input \(N, C, H, W\) built for input_shape \(3, 8, 8\), "
                                         r"got a tensor of shape \(2, 1, 8, 8\)"):
        model(torch.randn(2, 1, 8, 8))
    with pytest.raises(ShapeError, match=r"got a tensor of shape \(3, 8, 8\)"):
        model(torch.randn(3, 8, 8))  # batch dimension missing
    darts = build_model(get_space("darts", C=4, layers=3).named("DARTS_V2"), (3, 8, 8), 10)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        darts(torch.randn(2, 4, 8, 8))


def test_wrong_feature_count_at_forward_time() -> None:
    model = build_model(seq_arch(), (6, 3), 4)
    with pytest.raises(ShapeError, match=r"expects input \(N, T, C\) built for input_shape \(6, 3\), "
                                         r"got a tensor of shape \(2, 6, 4\)"):
        model(torch.randn(2, 6, 4))
    with pytest.raises(ShapeError, match=r"\(N, T, C\)"):
        model(torch.randn(6, 3))


# -- macro and architecture errors ------------------------------------------------------------------


def test_skeletons() -> None:
    assert sorted(SKELETONS) == ["cells", "darts", "generator", "sequence", "translator"]


def test_unknown_or_missing_skeleton() -> None:
    with pytest.raises(InvalidArchitectureError, match=r"macro setting 'skeleton': unknown skeleton 'cell'.*"
                                                       r"did you mean 'cells'"):
        build_model(image_arch(skeleton="cell"), (3, 8, 8), 10)
    arch = image_arch()
    no_skeleton = arch.replace(macro={k: v for k, v in arch.macro.items() if k != "skeleton"})
    with pytest.raises(InvalidArchitectureError,
                       match=r"unknown skeleton None; known: cells, darts, generator, sequence"):
        build_model(no_skeleton, (3, 8, 8), 10)


def _without(arch: Architecture, key: str) -> Architecture:
    return arch.replace(macro={k: v for k, v in arch.macro.items() if k != key})


@pytest.mark.parametrize(("arch", "key", "skeleton"), [
    (get_space("darts", C=4, layers=3).named("DARTS_V2"), "C", "darts"),
    (get_space("darts", C=4, layers=3).named("DARTS_V2"), "layers", "darts"),
    (image_arch(), "layers", "cells"),
    (seq_arch(), "d_model", "sequence"),
    (seq_arch(), "stack", "sequence"),
])
def test_missing_macro_setting(arch: Architecture, key: str, skeleton: str) -> None:
    shape = (6, 3) if skeleton == "sequence" else (3, 8, 8)
    with pytest.raises(InvalidArchitectureError, match=rf"macro setting '{key}' is missing for skeleton '{skeleton}'"):
        build_model(_without(arch, key), shape, 10)


@pytest.mark.parametrize(("arch", "match"), [
    (image_arch(layers=[]), r"'layers' is empty"),
    (image_arch(layers="c"), r"macro setting 'layers' = 'c' has the wrong type"),
    (image_arch(layers=[["c"]]), r"'layers'\[0\] = \['c'\]; expected \[cell_name, channels\]"),
    (image_arch(layers=[["c", 0]]), r"'layers\[0\] channels' must be a positive integer, got 0"),
    (image_arch(stem_channels="4"), r"'stem_channels' = '4' has the wrong type"),
    (image_arch(stem_kernel=0), r"'stem_kernel' must be a positive integer"),
    (image_arch(head_pool="max"), r"'head_pool' = 'max'; expected 'avg' or 'flatten'"),
    (image_arch(head_hidden=[0]), r"'head_hidden' must be a positive integer"),
    (image_arch(head_preact=1), r"'head_preact' = 1 has the wrong type"),
    (image_arch(layers=[["d", 4]]), r"skeleton uses cell 'd'.*unknown cell 'd'"),
    (seq_arch(stack=[]), r"'stack' is empty"),
    (seq_arch(pos_encoding="sinusoidal"), r"'pos_encoding' = 'sinusoidal'; expected 'none', 'pe_sinusoidal'"),
    (seq_arch(pos_encoding="lstm"), r"'pos_encoding' = 'lstm'"),
    (seq_arch(pool="max"), r"'pool' = 'max'; expected 'mean' or 'last'"),
    (seq_arch(d_model=0), r"'d_model' must be a positive integer"),
    (get_space("darts", C=4, layers=3).named("DARTS_V2").replace(
        macro={"skeleton": "darts", "C": "4", "layers": 3}), r"'C' = '4' has the wrong type"),
])
def test_bad_macro_settings(arch: Architecture, match: str) -> None:
    shape = (6, 3) if arch.macro["skeleton"] == "sequence" else (3, 8, 8)
    with pytest.raises(InvalidArchitectureError, match=match):
        build_model(arch, shape, 10)


def test_cell_of_the_wrong_family() -> None:
    seq_cell = chain("sequence", ["lstm"])
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c' is a sequence cell; this skeleton needs a conv cell"):
        build_model(image_arch({"c": seq_cell}), (3, 8, 8), 10)
    with pytest.raises(InvalidArchitectureError, match=r"cell 'body' is a conv cell; this skeleton needs a sequence"):
        build_model(seq_arch({"body": chain("conv", ["conv_3x3"])}), (6, 3), 10)
    with pytest.raises(InvalidArchitectureError, match=r"cell 'body' is a rnn cell; this skeleton needs a sequence"):
        build_model(seq_arch({"body": RNN_CELL}), (6, 3), 10)


def test_cell_with_the_wrong_number_of_inputs() -> None:
    two = Cell(family="conv", inputs=2, nodes=3, edges=((0, 2, "skip_connect"), (1, 2, "conv_1x1")), output=(2,))
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c' has 2 input nodes; this skeleton needs 1"):
        build_model(image_arch({"c": two}), (3, 8, 8), 10)


def test_rnn_cell_cannot_concat() -> None:
    concat_rnn = Cell(family="rnn", inputs=1, nodes=3, edges=((0, 1, "tanh"), (1, 2, "relu")), output=(1, 2),
                      combine="concat", fan_in=1)
    arch = seq_arch({"body": chain("sequence", ["cell:r"]), "r": concat_rnn})
    with pytest.raises(InvalidArchitectureError, match=r"rnn cell 'r' must combine by mean or sum, not concat"):
        build_model(arch, (6, 3), 10)


def test_cell_references_only_in_the_sequence_skeleton() -> None:
    cells = {"c": chain("conv", ["conv_3x3"]), "s": chain("sequence", ["cell:r"]), "r": RNN_CELL}
    with pytest.raises(InvalidArchitectureError, match=r"cell 's': 'cell:r' works only in the sequence skeleton"):
        build_model(image_arch(cells), (3, 8, 8), 10)


def test_build_model_validates_first() -> None:
    cyclic = Cell(family="conv", inputs=1, nodes=4, output=(3,),
                  edges=((0, 1, "conv_3x3"), (1, 2, "conv_3x3"), (2, 3, "conv_3x3"), (3, 1, "conv_3x3")))
    with pytest.raises(InvalidArchitectureError, match=r"has a cycle 1 -> 2 -> 3 -> 1"):
        build_model(image_arch({"c": cyclic}), (3, 8, 8), 10)
    with pytest.raises(InvalidArchitectureError, match=r"unknown conv op 'conv_3x4'"):
        build_model(image_arch({"c": chain("conv", ["conv_3x4"])}), (3, 8, 8), 10)


def test_every_build_is_a_fresh_model() -> None:
    arch = image_arch()
    a, b = build_model(arch, (3, 8, 8), 10), build_model(arch, (3, 8, 8), 10)
    assert a is not b
    assert n_params(a) == n_params(b)
    assert not any(pa is pb for pa, pb in zip(a.parameters(), b.parameters()))
    assert any(not torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))
