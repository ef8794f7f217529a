"""The recurrent space: DARTS-RNN cells and layer choices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError, UnknownNameError
from nas.graph.cells import DartsRNNLayer
from search_spaces import get_space
from search_spaces.rnn import ACTIVATIONS, RNN_GENOTYPES, RNN_LAYER_OPS


@pytest.mark.parametrize(("options", "size"), [
    ({}, math.factorial(8) * 4**8 * 5**2),
    ({"steps": 3, "num_layers": 2}, math.factorial(3) * 4**3 * 5**2),
    ({"steps": 1, "num_layers": 3, "layer_ops": ["lstm", "cell:rnn"]}, 1 * 4 * 2**3),
])
def test_size_formula(options: dict, size: int) -> None:
    space = get_space("rnn", **options)
    assert space.size() == size


def test_decisions() -> None:
    space = get_space("rnn", steps=3, num_layers=2)
    assert space.decision_sizes() == [1, 4, 2, 4, 3, 4, 5, 5]
    assert space.decision_names() == ["rnn_node1_input", "rnn_node1_activation", "rnn_node2_input",
                                      "rnn_node2_activation", "rnn_node3_input", "rnn_node3_activation",
                                      "layer0", "layer1"]
    assert ACTIVATIONS == ("tanh", "relu", "sigmoid", "identity")
    assert RNN_LAYER_OPS == ("cell:rnn", "lstm", "gru", "bilstm", "bigru")


@pytest.mark.parametrize("name", sorted(RNN_GENOTYPES))
def test_named_cells(name: str) -> None:
    space = get_space("rnn")
    arch = space.named(name)
    assert arch.validate() is arch and space.contains(arch)
    rnn = arch.cell("rnn")
    assert rnn.combine == "mean" and rnn.output == tuple(range(1, 9)) and rnn.fan_in == 1
    assert [rnn.in_edges(node) for node in range(1, 9)] == [[(pred, act)] for act, pred in RNN_GENOTYPES[name]]
    assert arch.cell("body").ops() == ["cell:rnn", "cell:rnn"]
    decisions = space.encode(arch)
    assert decisions[:16:2] == [pred for _, pred in RNN_GENOTYPES[name]]


def test_darts_v2_runs_on_sequences() -> None:
    space = get_space("rnn", d_model=16)
    arch = space.named("DARTS_V2")
    model = space.build_model(arch, (7, 3), 4)
    assert sum(isinstance(m, DartsRNNLayer) for m in model.modules()) == 2
    x = torch.randn(2, 7, 3)
    out = model(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_named_with_other_layers() -> None:
    space = get_space("rnn", d_model=8)
    arch = space.named("DARTS_V1", layers=["lstm", "cell:rnn"])
    assert arch.cell("body").ops() == ["lstm", "cell:rnn"] and space.contains(arch)
    model = space.build_model(arch, (5, 2), 3)
    assert sum(isinstance(m, DartsRNNLayer) for m in model.modules()) == 1
    assert model(torch.randn(2, 5, 2)).shape == (2, 3)


def test_named_errors() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown DARTS recurrent genotype 'DARTS_V'.*did you mean"):
        get_space("rnn").named("DARTS_V")
    with pytest.raises(ConfigError, match=r"genotype DARTS_V2 has 8 nodes; build the space with steps=8, not 3"):
        get_space("rnn", steps=3).named("DARTS_V2")


def test_layers_without_the_cell_ignore_it_in_the_hash() -> None:
    space = get_space("rnn")
    v1, v2 = space.named("DARTS_V1"), space.named("DARTS_V2")
    assert v1.canonical_hash() != v2.canonical_hash()
    v1_lstm, v2_lstm = space.named("DARTS_V1", ["lstm", "gru"]), space.named("DARTS_V2", ["lstm", "gru"])
    assert v1_lstm != v2_lstm
    assert v1_lstm.canonical_hash() == v2_lstm.canonical_hash()


def test_pool_option_reaches_the_macro() -> None:
    arch = get_space("rnn", pool="last").sample(np.random.default_rng(0))
    assert arch.macro["pool"] == "last" and arch.macro["skeleton"] == "sequence"
    assert arch.macro["stack"] == ["body"] and arch.macro["pos_encoding"] == "none"
