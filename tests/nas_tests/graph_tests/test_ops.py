"""nas.graph.ops: every op of every family builds with its family signature, has the documented shapes and trains."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas.core.errors import ShapeError, UnknownNameError
from nas.graph.ops import CONV_OPS, GEN_OPS, OP_TABLES, RNN_ACTIVATIONS, SEQUENCE_OPS, get_op_table
from nas.graph.ops.attention import SelfAttention
from nas.graph.ops.conv import FactorizedReduce
from nas.graph.ops.generator import resolution_scale
from nas.graph.ops.recurrent import RecurrentLayer

ALL_OPS = [(family, name) for family in OP_TABLES for name in OP_TABLES.get(family).names()]

# conv: C_in != C_out and an odd resolution, so stride 2 must give ceil(9 / 2) = 5
N, C_IN, C_OUT, HW = 2, 3, 6, 9
# sequence: (N, T, d); d = 8 takes every head count of the table (1, 2, 4, 8)
T, D = 5, 8


def _params(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _check_backward(module: nn.Module, out: torch.Tensor, x: torch.Tensor) -> None:
    (out.square().mean() + out.mean()).backward()
    params = _params(module)
    assert all(p.grad is not None for p in params), "a parameter got no gradient"
    if params:
        assert any(p.grad.abs().sum() > 0 for p in params), "every gradient is zero"
    assert x.grad is not None and x.grad.shape == x.shape


def check_conv(name: str, stride: int) -> None:
    op = CONV_OPS.create(name, C_IN, C_OUT, stride, True)
    assert isinstance(op, nn.Module)
    x = torch.randn(N, C_IN, HW, HW, requires_grad=True)
    out = op(x)
    side = math.ceil(HW / stride)
    assert out.shape == (N, C_OUT, side, side)
    assert torch.isfinite(out).all()
    _check_backward(op, out, x)


def check_sequence(name: str) -> None:
    op = SEQUENCE_OPS.create(name, D, T)
    x = torch.randn(N, T, D, requires_grad=True)
    out = op(x)
    assert out.shape == (N, T, D)
    assert torch.isfinite(out).all()
    _check_backward(op, out, x)


def check_rnn(name: str) -> None:
    act = RNN_ACTIVATIONS.create(name)
    x = torch.randn(N, D, requires_grad=True)
    out = act(x)
    assert out.shape == x.shape
    expected = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda v: v}[name]
    assert torch.allclose(out, expected(x))
    _check_backward(act, out, x)


def check_gen(name: str) -> None:
    """Generator-cell ops: ``up_*`` and ``none`` double the resolution, ``down_*`` halve it (rounding up), the
    others keep it; widths change except for ``skip_connect``."""
    c_out = C_IN if name == "skip_connect" else C_OUT
    op = GEN_OPS.create(name, C_IN, c_out)
    x = torch.randn(N, C_IN, HW, HW, requires_grad=True)
    out = op(x)
    side = 2 * HW if name.startswith("up_") or name == "none" else (math.ceil(HW / 2) if name.startswith("down_")
                                                                     else HW)
    assert side == math.ceil(HW * resolution_scale(name))
    assert out.shape == (N, c_out, side, side) and torch.isfinite(out).all()
    _check_backward(op, out, x)


CHECKS = {"conv": lambda name: [check_conv(name, s) for s in (1, 2)], "sequence": check_sequence, "rnn": check_rnn,
          "gen": check_gen}


@pytest.mark.parametrize(("family", "name"), ALL_OPS, ids=[f"{f}:{n}" for f, n in ALL_OPS])
def test_every_op_builds_runs_and_trains(family: str, name: str) -> None:
    assert family in CHECKS, f"op family {family!r} has no test; add one to CHECKS"
    CHECKS[family](name)


def test_families_and_signatures() -> None:
    assert sorted(OP_TABLES) == ["conv", "gen", "rnn", "sequence"]
    assert get_op_table("gen") is GEN_OPS and GEN_OPS.signature == "factory(C_in, C_out)"
    assert get_op_table("conv") is CONV_OPS and get_op_table("sequence") is SEQUENCE_OPS
    assert get_op_table("rnn") is RNN_ACTIVATIONS
    assert CONV_OPS.signature == "factory(C_in, C_out, stride, affine)"
    assert SEQUENCE_OPS.signature == "factory(d_model, seq_len)"
    assert RNN_ACTIVATIONS.signature == "factory()"
    for family in OP_TABLES:
        table = get_op_table(family)
        assert table.family == family
        assert all(table.get(n).name == n for n in table.names())


def test_unknown_family_and_op_errors_suggest_a_close_match() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown op family 'sequense'.*did you mean 'sequence'"):
        get_op_table("sequense")
    with pytest.raises(UnknownNameError, match=r"unknown conv op 'sep_conv_3x4'.*did you mean 'sep_conv_3x3'"):
        CONV_OPS.create("sep_conv_3x4", 4, 4, 1, True)
    with pytest.raises(UnknownNameError, match=r"unknown sequence op 'mhsa_3'.*did you mean"):
        SEQUENCE_OPS.create("mhsa_3", 8, 4)


@pytest.mark.parametrize(("family", "name"), ALL_OPS, ids=[f"{f}:{n}" for f, n in ALL_OPS])
def test_parameter_free_flag(family: str, name: str) -> None:
    """The flag describes the op between equal widths at stride 1 (changing width or stride may add a projection)."""
    spec = OP_TABLES.get(family).get(name)
    if family == "conv":
        op = CONV_OPS.create(name, 4, 4, 1, True)
    elif family == "sequence":
        op = SEQUENCE_OPS.create(name, D, T)
    elif family == "gen":
        op = GEN_OPS.create(name, 4, 4)
    else:
        op = RNN_ACTIVATIONS.create(name)
    assert (len(list(op.parameters())) == 0) == spec.parameter_free


def test_zero_and_identity_ops() -> None:
    zero_ops = sorted((f, n) for f, n in ALL_OPS if OP_TABLES.get(f).get(n).zero)
    identity_ops = sorted((f, n) for f, n in ALL_OPS if OP_TABLES.get(f).get(n).identity)
    assert zero_ops == [("conv", "none"), ("gen", "none"), ("sequence", "none")]
    assert identity_ops == [("conv", "skip_connect"), ("gen", "skip_connect"), ("sequence", "skip_connect")]
    # the DARTS-RNN 'identity' activation is not an identity op: the node keeps its weights and gate
    assert not RNN_ACTIVATIONS.get("identity").identity
    x = torch.randn(N, 4, HW, HW)
    assert torch.equal(CONV_OPS.create("skip_connect", 4, 4, 1, True)(x), x)
    assert isinstance(CONV_OPS.create("skip_connect", 4, 4, 2, True), FactorizedReduce)
    assert isinstance(CONV_OPS.create("skip_connect", 4, 8, 1, True), FactorizedReduce)
    for stride in (1, 2):
        out = CONV_OPS.create("none", 4, 7, stride, True)(x)
        assert out.shape == (N, 7, math.ceil(HW / stride), math.ceil(HW / stride)) and not out.any()
    s = torch.randn(N, T, D)
    assert torch.equal(SEQUENCE_OPS.create("skip_connect", D, T)(s), s)
    assert not SEQUENCE_OPS.create("none", D, T)(s).any()


@pytest.mark.parametrize(("name", "expected"), [
    # quark0/darts operations.py and NAS-Bench-201 cell_operations.py at C = 16, stride 1
    ("sep_conv_3x3", 2 * (16 * 9 + 16 * 16 + 2 * 16)),
    ("sep_conv_5x5", 2 * (16 * 25 + 16 * 16 + 2 * 16)),
    ("dil_conv_3x3", 16 * 9 + 16 * 16 + 2 * 16),
    ("dil_conv_5x5", 16 * 25 + 16 * 16 + 2 * 16),
    ("nor_conv_1x1", 16 * 16 + 2 * 16),
    ("nor_conv_3x3", 16 * 16 * 9 + 2 * 16),
    ("conv_3x3", 16 * 16 * 9 + 2 * 16),
    ("conv_7x1_1x7", 2 * 16 * 16 * 7 + 2 * 16),
    ("factorized_reduce", 16 * 16 + 2 * 16),
    ("avg_pool_3x3", 0),
    ("max_pool_3x3", 0),
])
def test_published_parameter_counts(name: str, expected: int) -> None:
    op = CONV_OPS.create(name, 16, 16, 1, True)
    assert sum(p.numel() for p in op.parameters()) == expected


def test_strided_skip_is_darts_factorized_reduce() -> None:
    op = CONV_OPS.create("skip_connect", 16, 16, 2, True)
    assert sum(p.numel() for p in op.parameters()) == 2 * (16 * 8) + 2 * 16
    with pytest.raises(ValueError, match="stride 1 or 2"):
        FactorizedReduce(4, 4, stride=3)


def test_affine_false_has_no_batchnorm_parameters() -> None:
    for name in ("sep_conv_3x3", "dil_conv_3x3", "nor_conv_3x3", "factorized_reduce", "conv_7x1_1x7"):
        op = CONV_OPS.create(name, 4, 4, 2, False)
        norms = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(not m.affine for m in norms)


def test_avg_pool_excludes_padding() -> None:
    ones = torch.ones(1, 4, HW, HW)
    for stride in (1, 2):
        out = CONV_OPS.create("avg_pool_3x3", 4, 4, stride, True)(ones)
        assert torch.allclose(out, torch.ones_like(out))


def test_pooling_projects_when_channels_change() -> None:
    op = CONV_OPS.create("max_pool_3x3", 3, 6, 1, True)
    assert sum(p.numel() for p in op.parameters()) == 3 * 6 + 2 * 6


def test_sequence_ops_keep_shape_for_shorter_sequences() -> None:
    for name in SEQUENCE_OPS.names():
        op = SEQUENCE_OPS.create(name, D, T)
        assert op(torch.randn(N, T - 2, D)).shape == (N, T - 2, D)


def test_sinusoidal_encoding_values() -> None:
    op = SEQUENCE_OPS.create("pe_sinusoidal", D, T)
    pe = op(torch.zeros(1, T, D))[0]
    assert torch.allclose(pe[0, 0::2], torch.zeros(D // 2)) and torch.allclose(pe[0, 1::2], torch.ones(D // 2))
    assert torch.allclose(pe[1, 0], torch.tensor(math.sin(1.0)))
    assert not list(op.parameters())


def test_sequence_width_errors() -> None:
    with pytest.raises(ShapeError, match=r"4 heads needs d_model divisible by 4, got 6"):
        SelfAttention(6, 4)
    with pytest.raises(ShapeError, match=r"bidirectional lstm needs an even d_model, got 7"):
        RecurrentLayer("lstm", 7, bidirectional=True)


def test_bidirectional_layers_keep_width() -> None:
    for name, cls in (("bilstm", nn.LSTM), ("bigru", nn.GRU)):
        op = SEQUENCE_OPS.create(name, D, T)
        assert isinstance(op.rnn, cls) and op.rnn.bidirectional and op.rnn.hidden_size == D // 2
