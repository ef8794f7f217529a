"""The attention space: dense sequence cells, positional encoding choice, the Transformer layer as a member."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas import references
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.graph.ops.attention import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from search_spaces import get_space
from search_spaces.transformer import POS_ENCODINGS, TRANSFORMER_OPS


def decisions_for(space, edges: dict[str, str], pos_encoding: str = "none") -> list[int]:
    out = []
    for name in space.decision_names():
        out.append(POS_ENCODINGS.index(pos_encoding) if name == "pos_encoding" else space.ops.index(edges[name]))
    return out


def uniform(space, op: str, pos_encoding: str = "none") -> list[int]:
    return [space.ops.index(op)] * (len(space.decision_sizes()) - 1) + [POS_ENCODINGS.index(pos_encoding)]


@pytest.mark.parametrize(("options", "size"), [
    ({}, 8**6 * 3),
    ({"nodes": 3}, 8**3 * 3),
    ({"nodes": 5, "ops": ["skip_connect", "ffn"]}, 2**10 * 3),
])
def test_size_formula(options: dict, size: int) -> None:
    assert get_space("transformer", **options).size() == size


def test_decisions() -> None:
    space = get_space("transformer")
    assert space.decision_names() == ["edge_0_1", "edge_0_2", "edge_1_2", "edge_0_3", "edge_1_3", "edge_2_3",
                                      "pos_encoding"]
    assert space.decision_sizes() == [len(TRANSFORMER_OPS)] * 6 + [3]


def test_pure_identity_cell() -> None:
    space = get_space("transformer", d_model=8, num_cells=1)
    arch = space.decode(uniform(space, "skip_connect"))
    cell = arch.cell("cell")
    assert cell.canonical_form() == "sequence|1|n|in0+in0+in0+in0"
    model = space.build_model(arch, (5, 3), 2)
    x = torch.randn(2, 5, 8)
    # node1 = x, node2 = x + node1, node3 = x + node1 + node2 = 4x
    assert torch.allclose(model.cells[0](x), 4 * x)
    assert not list(model.cells[0].parameters())


def test_pure_none_cell_outputs_zeros_and_still_trains() -> None:
    space = get_space("transformer", d_model=8, num_cells=1)
    arch = space.decode(uniform(space, "none"))
    model = space.build_model(arch, (5, 3), 2)
    assert not model.cells[0](torch.randn(2, 5, 8)).any()
    out = model(torch.randn(2, 5, 3))
    assert out.shape == (2, 2)
    out.sum().backward()
    assert model.classifier.bias.grad is not None


def test_transformer_encoder_layer_is_a_member() -> None:
    space = get_space("transformer")
    layer = {"edge_0_1": "mhsa_4", "edge_0_2": "skip_connect", "edge_1_2": "skip_connect",
             "edge_0_3": "skip_connect", "edge_1_3": "skip_connect", "edge_2_3": "ffn"}
    member = space.decode(decisions_for(space, layer, "pe_sinusoidal"))
    reference = references.get("transformer")
    assert member.cell("cell").canonical_form() == reference.cell("encoder").canonical_form()
    renamed = Architecture(space="reference", cells={"cell": reference.cell("encoder")},
                           macro={**reference.macro, "stack": ["cell", "cell"]})
    assert member.canonical_hash() == renamed.canonical_hash()
    assert not space.contains(renamed)  # same function, but the reference's cell is not in the dense layout


@pytest.mark.parametrize(("pos_encoding", "module"), [
    ("none", nn.Identity), ("pe_sinusoidal", SinusoidalPositionalEncoding), ("pe_learned", LearnedPositionalEncoding),
])
def test_positional_encoding_decision(pos_encoding: str, module: type) -> None:
    space = get_space("transformer", d_model=8, num_cells=1)
    arch = space.decode(uniform(space, "ffn", pos_encoding))
    assert arch.macro["pos_encoding"] == pos_encoding
    assert isinstance(space.build_model(arch, (5, 3), 2).pos, module)


def test_num_cells_and_pool_reach_the_model() -> None:
    space = get_space("transformer", d_model=8, num_cells=3, pool="last")
    arch = space.sample(np.random.default_rng(0))
    assert arch.macro["stack"] == ["cell"] * 3 and arch.macro["pool"] == "last"
    model = space.build_model(arch, (5, 3), 2)
    assert len(model.cells) == 3 and model.last


def test_d_model_constraints_follow_the_ops() -> None:
    assert get_space("transformer", d_model=3, ops=["skip_connect", "ffn", "lstm"]).d_model == 3
    assert get_space("transformer", d_model=6, ops=["mhsa_2", "ffn"]).d_model == 6
    with pytest.raises(ConfigError, match=r"divisible by every head count \[2, 4\]"):
        get_space("transformer", d_model=6)
    with pytest.raises(ConfigError, match=r"even for bidirectional ops"):
        get_space("transformer", d_model=3, ops=["skip_connect", "bilstm"])
