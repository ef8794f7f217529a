"""Supernets (``nas.oneshot.supernet.build_supernet(space, ...)`` / ``space.derive``): forward and backward in
every mode for every space that has one, partial channels, Gumbel sampling of one op per edge, derivation of
valid members (and of the expected member from chosen alphas), and the collapse signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.oneshot.supernet import alpha_entropy, build_supernet, channel_shuffle, parameter_free_share
from search_spaces import get_space
from search_spaces.slots import Slot, SupernetSpec

#: (space, options, input shape, partial-channel settings to try)
SPACES = [
    ("nb201", {"C": 4, "N": 1}, (1, 8, 8), [1, 2]),
    ("darts", {"C": 4, "layers": 3, "steps": 2}, (1, 8, 8), [1, 2]),
    ("transformer", {"d_model": 8, "num_cells": 1, "nodes": 3}, (12, 2), [1]),
]
CASES = [(n, o, s, k, mode) for n, o, s, ks in SPACES for k in ks for mode in ("softmax", "gumbel")]


@pytest.mark.parametrize(("name", "options", "shape", "partial", "mode"), CASES,
                         ids=[f"{c[0]}-k{c[3]}-{c[4]}" for c in CASES])
def test_supernet_forward_and_backward_reach_weights_and_alphas(name, options, shape, partial, mode):
    space = get_space(name, **options)
    net = build_supernet(space, shape, 3, seed=0, partial_channels=partial)
    net.mode, net.tau = mode, 1.0
    out = net(torch.randn(4, *shape))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0])).backward()
    for slot, alpha in net.alphas.items():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, slot
    assert sum(int(p.grad is not None and bool(p.grad.abs().sum() > 0)) for p in net.weight_parameters()) > 0


def test_alpha_slots_have_one_row_per_edge_and_one_column_per_op():
    nb = build_supernet(get_space("nb201", C=4, N=1), (1, 8, 8), 2)
    assert {k: tuple(v.shape) for k, v in nb.alphas.items()} == {"cell": (6, 5)}
    darts = build_supernet(get_space("darts", C=4, layers=3), (1, 8, 8), 2)
    assert {k: tuple(v.shape) for k, v in darts.alphas.items()} == {"normal": (14, 8), "reduce": (14, 8)}
    tr = build_supernet(get_space("transformer", d_model=8, nodes=4), (12, 2), 2)
    assert {k: tuple(v.shape) for k, v in tr.alphas.items()} == {"cell": (6, 8), "pos_encoding": (1, 3)}


def test_same_seed_same_supernet_and_alphas():
    space = get_space("nb201", C=4, N=1)
    a, b = build_supernet(space, (1, 8, 8), 3, seed=5), build_supernet(space, (1, 8, 8), 3, seed=5)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert not torch.equal(a.alphas["cell"], build_supernet(space, (1, 8, 8), 3, seed=6).alphas["cell"])


def test_gumbel_mode_runs_one_op_per_edge_with_one_hot_weights():
    space = get_space("nb201", C=4, N=1)
    net = build_supernet(space, (1, 8, 8), 3, seed=0)
    net.mode = "gumbel"
    calls = []
    mixed = [m for m in net.modules() if type(m).__name__ == "MixedOp"]
    for m in mixed:
        for i, op in enumerate(m.ops):
            op.register_forward_hook(lambda mod, inp, out, i=i: calls.append(i))
    net(torch.randn(2, 1, 8, 8))
    assert len(calls) == len(mixed)  # exactly one candidate op ran per mixed op
    w = net.holder.weights["cell"].detach()
    assert torch.allclose(w.sum(dim=1), torch.ones(6))
    assert torch.allclose(w.max(dim=1).values, torch.ones(6))
    assert net.holder.index["cell"] == w.argmax(dim=1).tolist()


def test_gumbel_samples_replay_from_a_saved_generator_state():
    net = build_supernet(get_space("nb201", C=4, N=1), (1, 8, 8), 3, seed=0)
    net.mode = "gumbel"
    state = net.generator.get_state()
    draws = []
    for _ in range(5):
        net(torch.randn(1, 1, 8, 8))
        draws.append(list(net.holder.index["cell"]))
    net.generator.set_state(state)
    again = []
    for _ in range(5):
        net(torch.randn(1, 1, 8, 8))
        again.append(list(net.holder.index["cell"]))
    assert draws == again and len({tuple(d) for d in draws}) > 1


def test_partial_channels_cut_mixed_op_parameters():
    space = get_space("nb201", C=8, N=1)
    full = sum(p.numel() for p in build_supernet(space, (1, 8, 8), 3, partial_channels=1).weight_parameters())
    half = sum(p.numel() for p in build_supernet(space, (1, 8, 8), 3, partial_channels=2).weight_parameters())
    quarter = sum(p.numel() for p in build_supernet(space, (1, 8, 8), 3, partial_channels=4).weight_parameters())
    assert full > half > quarter


def test_partial_channels_are_rejected_where_they_cannot_apply():
    with pytest.raises(ConfigError, match=r"partial_channels = 3.*divisible by 3"):
        build_supernet(get_space("nb201", C=8, N=1), (1, 8, 8), 3, partial_channels=3)
    with pytest.raises(ConfigError, match="only conv spaces"):
        build_supernet(get_space("transformer", d_model=8), (12, 2), 3, partial_channels=2)
    with pytest.raises(ConfigError, match="partial_channels = 0"):
        build_supernet(get_space("nb201", C=8, N=1), (1, 8, 8), 3, partial_channels=0)


def test_channel_shuffle_is_a_permutation_of_channels():
    x = torch.arange(2 * 8 * 1 * 1, dtype=torch.float32).view(2, 8, 1, 1)
    y = channel_shuffle(x, 2)
    assert y[0, :, 0, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert sorted(y.flatten().tolist()) == x.flatten().tolist()


def test_spaces_without_a_supernet_say_so():
    with pytest.raises(ConfigError, match="space 'rnn' has no supernet"):
        build_supernet(get_space("rnn"), (12, 2), 3)


@pytest.mark.parametrize(("name", "options"), [(n, o) for n, o, _, _ in SPACES])
def test_derive_gives_valid_members_for_random_alphas(name, options):
    space = get_space(name, **options)
    net = build_supernet(space, (1, 8, 8) if space.input_kind == "image" else (12, 2), 3, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        alphas = {k: rng.normal(size=v.shape) for k, v in net.alpha_arrays().items()}
        arch = space.derive(alphas)
        assert space.contains(arch)


def test_nb201_derive_takes_the_strongest_op_of_every_edge():
    space = get_space("nb201")
    want = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    target = space.encode(space.from_string(want))
    alphas = np.zeros((6, 5))
    alphas[np.arange(6), target] = 1.0
    assert space.to_string(space.derive({"cell": alphas})) == want


def test_transformer_derive_chooses_the_positional_encoding_too():
    space = get_space("transformer", d_model=8, nodes=3)
    cell = np.zeros((3, len(space.ops)))
    cell[:, space.ops.index("mhsa_2")] = 1.0
    arch = space.derive({"cell": cell, "pos_encoding": np.array([[0.0, 0.0, 2.0]])})
    assert arch.macro["pos_encoding"] == "pe_learned"
    assert {op for _, _, op in arch.cell("cell").edges} == {"mhsa_2"}


def test_darts_derive_keeps_the_two_strongest_non_none_edges_per_node():
    space = get_space("darts", C=4, layers=3, steps=2)
    edges = [(s, d) for d in range(2, 4) for s in range(d)]  # (0,2) (1,2) (0,3) (1,3) (2,3)
    ops = ["none", *space.ops]
    alphas = {}
    for cell in ("normal", "reduce"):
        a = np.zeros((5, 8))
        a[:, 0] = 10.0  # `none` dominates everywhere, and is never chosen
        a[edges.index((0, 2)), ops.index("sep_conv_3x3")] = 3.0
        a[edges.index((1, 2)), ops.index("skip_connect")] = 2.0
        a[edges.index((2, 3)), ops.index("max_pool_3x3")] = 4.0
        a[edges.index((0, 3)), ops.index("dil_conv_5x5")] = 3.0
        a[edges.index((1, 3)), ops.index("avg_pool_3x3")] = 1.0  # weakest edge into node 3: dropped
        alphas[cell] = a
    genotype = space.to_genotype(space.derive(alphas))
    assert genotype["normal"] == [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 0), ("max_pool_3x3", 2)]


def test_derive_rejects_misshapen_or_missing_alphas():
    space = get_space("nb201")
    with pytest.raises(InvalidArchitectureError, match="lack slot 'cell'"):
        space.derive({})
    with pytest.raises(InvalidArchitectureError, match=r"\(6, 5\)"):
        space.derive({"cell": np.zeros((6, 4))})
    with pytest.raises(InvalidArchitectureError, match="finite"):
        space.derive({"cell": np.full((6, 5), np.nan)})


def test_parameter_free_share_and_entropy():
    space = get_space("nb201")
    arch = space.from_string("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|")
    assert parameter_free_share(arch, ("cell",)) == pytest.approx(4 / 6)
    assert alpha_entropy({"cell": np.zeros((6, 5))}) == pytest.approx(1.0)
    peaked = np.zeros((6, 5))
    peaked[:, 0] = 100.0
    assert alpha_entropy({"cell": peaked}) == pytest.approx(0.0, abs=1e-6)


def test_edge_normalization_weights_edges_per_destination_and_learns():
    space = get_space("darts", C=4, layers=3, steps=2)
    net = build_supernet(space, (1, 8, 8), 3, seed=0, edge_normalization=True)
    assert {k: tuple(v.shape) for k, v in net.betas.items()} == {"normal": (5,), "reduce": (5,)}
    out = net(torch.randn(4, 1, 8, 8))
    scale = net.holder.edges["normal"].detach()
    # edges (0,2) (1,2) into node 2, (0,3) (1,3) (2,3) into node 3: each group sums to one
    assert torch.allclose(scale[:2].sum(), torch.tensor(1.0)) and torch.allclose(scale[2:].sum(), torch.tensor(1.0))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0])).backward()
    assert all(b.grad is not None and b.grad.abs().sum() > 0 for b in net.betas.values())
    arrays = net.alpha_arrays()
    assert set(arrays) == {"normal", "reduce", "normal.edges", "reduce.edges"}
    assert space.contains(space.derive(arrays))
    arrays["normal.edges"][:] = 0.5
    net.load_arrays(arrays)
    assert torch.allclose(net.betas["normal"].detach(), torch.full((5,), 0.5))


def test_darts_derive_ranks_edges_by_op_weight_times_edge_weight():
    space = get_space("darts", C=4, layers=3, steps=2)
    edges = [(s, d) for d in range(2, 4) for s in range(d)]
    ops = ["none", *space.ops]
    a = np.zeros((5, 8))
    for row in range(5):
        a[row, ops.index("sep_conv_3x3")] = 2.0  # every edge equally strong by its ops
    betas = np.zeros(5)
    betas[edges.index((1, 3))] = -3.0  # ... but edge 1->3 weighs little
    alphas = {"normal": a, "reduce": a, "normal.edges": betas, "reduce.edges": np.zeros(5)}
    node3 = [src for op, src in space.to_genotype(space.derive(alphas))["normal"][2:]]
    assert node3 == [0, 2]
    alphas["normal.edges"] = np.zeros(5)
    alphas["normal.edges"][edges.index((2, 3))] = -3.0
    assert [src for op, src in space.to_genotype(space.derive(alphas))["normal"][2:]] == [0, 1]


def test_build_supernet_compiles_any_spec_and_checks_macro_sites():
    spec = get_space("nb201", C=4, N=1).supernet_spec()
    small = SupernetSpec(spec.template, {"cell": Slot(("skip_connect", "nor_conv_3x3"), spec.slots["cell"].edges)})
    net = build_supernet(small, (1, 8, 8), 3, seed=0)
    assert {k: tuple(v.shape) for k, v in net.alphas.items()} == {"cell": (6, 2)}
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    wrong = SupernetSpec(spec.template.replace(macro={**spec.template.macro, "pos_encoding": "none"}),
                         {**spec.slots, "pos": Slot(("none", "pe_learned"), macro="pos_encoding")})
    with pytest.raises(ConfigError, match="'pos_encoding' is searchable in the 'sequence' skeleton, not in 'cells'"):
        build_supernet(wrong, (1, 8, 8), 3)
