"""nas.graph.inherit with ``morph``: network morphisms. A child whose mutation has an exact morphism computes its
parent's function before any training (eval and train mode); the approximate ones start closer to it than a fresh
op; removals are left alone; the unchanged tensors are copied exactly as without ``morph``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas.graph.architecture import Architecture
from nas.graph.compiler import build_model
from nas.graph.inherit import OP_MARK, Inherited, inherit, inheritable_state
from search_spaces import get_space

NB201 = get_space("nb201", C=4, N=1)
SHAPE = (1, 8, 8)
BASE = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3", "skip_connect")


def with_edge(op: str, edge: int = 3) -> Architecture:
    """The nb201 cell ``BASE`` with edge ``edge`` carrying ``op``."""
    ops = list(BASE)
    ops[edge] = op
    return NB201.decode([list(NB201.ops).index(o) for o in ops])


def trained_parent(arch: Architecture) -> nn.Module:
    """A compiled ``arch`` whose every tensor moved away from its initial value (batch-norm variances positive)."""
    torch.manual_seed(0)
    model = build_model(arch, SHAPE, 10)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=gen)
            elif tensor.is_floating_point():
                tensor.add_(0.3 * torch.randn(tensor.shape, generator=gen))
    return model


def child_of(parent: nn.Module, arch: Architecture, seed: int = 1, *, zero_new_ops: bool = False, morph: bool = False,
             sample: torch.Tensor | None = None) -> tuple[nn.Module, Inherited]:
    torch.manual_seed(seed)
    child = build_model(arch, SHAPE, 10)
    return child, inherit(child, inheritable_state(parent), zero_new_ops=zero_new_ops, morph=morph, sample=sample)


def outputs(model: nn.Module, x: torch.Tensor, train: bool = False) -> torch.Tensor:
    model.train(train)
    with torch.no_grad():
        return model(x)


X = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("old", "new"), [("none", "nor_conv_3x3"), ("none", "nor_conv_1x1"),
                                          ("nor_conv_1x1", "nor_conv_3x3")])
def test_exact_morphisms_preserve_the_parents_function(old: str, new: str) -> None:
    parent = trained_parent(with_edge(old))
    child, done = child_of(parent, with_edge(new), morph=True)
    assert (done.exact, done.approx) == (3, 0)  # the edge in each of the three cells
    assert torch.allclose(outputs(child, X), outputs(parent, X), atol=1e-5)
    # train mode too: the new op's batch statistics are those of the op it replaced (or it outputs zero)
    assert torch.allclose(outputs(child, X, train=True), outputs(trained_parent(with_edge(old)), X, train=True),
                          atol=1e-4)
    plain, _ = child_of(parent, with_edge(new))
    assert not torch.allclose(outputs(plain, X), outputs(parent, X), atol=1e-3)


@pytest.mark.parametrize(("old", "new"), [("skip_connect", "nor_conv_3x3"), ("avg_pool_3x3", "nor_conv_3x3"),
                                          ("nor_conv_3x3", "nor_conv_1x1"), ("skip_connect", "nor_conv_1x1")])
def test_approximate_morphisms_start_closer_than_a_fresh_op(old: str, new: str) -> None:
    parent = trained_parent(with_edge(old))
    want = outputs(parent, X)
    morphed, done = child_of(parent, with_edge(new), morph=True, sample=X)
    assert (done.exact, done.approx) == (0, 3)
    plain, _ = child_of(parent, with_edge(new))
    gap = (outputs(morphed, X) - want).norm() / want.norm()
    assert gap < (outputs(plain, X) - want).norm() / want.norm()
    assert gap < 0.5


def test_skip_to_conv_without_a_sample_computes_relu() -> None:
    """skip -> conv without a calibration sample: the new conv computes relu(x) exactly in eval mode (identity
    kernel, identity batch norm): the child differs from its parent only where x < 0."""
    parent = trained_parent(with_edge("skip_connect"))
    child, done = child_of(parent, with_edge("nor_conv_3x3"), morph=True)
    assert done.approx == 3
    op = child.get_submodule(next(p for p, m in child.named_modules() if p.endswith("ops.3")))
    child.eval()
    h = torch.randn(8, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(op(h), torch.relu(h), atol=1e-4)


@pytest.mark.parametrize(("old", "new"), [("nor_conv_3x3", "none"), ("nor_conv_1x1", "skip_connect"),
                                          ("skip_connect", "avg_pool_3x3"), ("none", "skip_connect")])
def test_removals_and_parameter_free_ops_are_left_alone(old: str, new: str) -> None:
    parent = trained_parent(with_edge(old))
    a, plain = child_of(parent, with_edge(new))
    b, morphed = child_of(parent, with_edge(new), morph=True, sample=X)
    assert (morphed.exact, morphed.approx) == (0, 0) and morphed.copied == plain.copied
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("seed", range(4))
def test_morph_copies_the_same_unchanged_tensors_and_touches_only_new_ops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    parent_arch = NB201.sample(rng)
    child_arch = NB201.mutate(parent_arch, rng)
    parent = trained_parent(parent_arch)
    plain, a = child_of(parent, child_arch)
    morphed, b = child_of(parent, child_arch, morph=True, sample=X)
    assert (a.copied, a.fresh) == (b.copied, b.fresh)
    (src, dst, op), = set(child_arch.cell("cell").edges) - set(parent_arch.cell("cell").edges)
    edge = [i for i, e in enumerate(child_arch.cell("cell").edges) if e == (src, dst, op)]
    assert edge
    for key, value in plain.state_dict().items():
        if not torch.equal(value, morphed.state_dict()[key]):
            assert ".ops." in key  # a cell edge op: the one the mutation changed, never a copied tensor


def test_weights_without_op_descriptions_morph_nothing() -> None:
    """Weights stored before ops were described (no ``#op`` entries) still inherit; nothing is morphed."""
    parent = trained_parent(with_edge("none"))
    state = {k: v for k, v in inheritable_state(parent).items() if not k.endswith(OP_MARK)}
    torch.manual_seed(1)
    child = build_model(with_edge("nor_conv_3x3"), SHAPE, 10)
    done = inherit(child, state, morph=True)
    assert done.copied > 0 and (done.exact, done.approx) == (0, 0)
