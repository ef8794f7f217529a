"""nas.graph.inherit: a child takes exactly the tensors of its parent's unchanged ops, bit for bit, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas.graph.architecture import Architecture
from nas.graph.cells import _GraphCell
from nas.graph.compiler import build_model
from nas.graph.inherit import inherit, inheritable_state, site_names
from search_spaces import get_space

NB201 = get_space("nb201", C=4, N=1)
DARTS = get_space("darts", C=4, layers=3)


def compiled(arch: Architecture, seed: int, shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(arch, shape, 10)


def trained_like(model: nn.Module) -> None:
    """Move every tensor away from its initial value (as training would), buffers included."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=gen))
            else:
                tensor.add_(3)


def expected_source(child: nn.Module, parent: nn.Module) -> dict[str, str | None]:
    """For each child key, the parent key it must be copied from (None: it must stay fresh), worked out from the
    cells' edges ``(src, dst, op)``: an edge op's tensors come from the same edge of the same cell of the parent, every
    other tensor from the same key; only when the shapes of every tensor of the module holding it agree."""
    child_mods, parent_mods = dict(child.named_modules()), dict(parent.named_modules())
    parent_state, out = parent.state_dict(), {}
    for key in child.state_dict():
        source: str | None = key
        parts = key.split(".")
        for i in range(len(parts) - 2):
            prefix = ".".join(parts[:i])
            if parts[i] == "ops" and isinstance(child_mods.get(prefix), _GraphCell):
                edge = child_mods[prefix].edge_sites[int(parts[i + 1])]
                other = parent_mods.get(prefix)
                if not isinstance(other, _GraphCell) or edge not in other.edge_sites:
                    source = None
                else:
                    source = ".".join([*parts[:i + 1], str(other.edge_sites.index(edge)), *parts[i + 2:]])
        out[key] = source
    child_state = child.state_dict()
    for key, source in list(out.items()):
        if source is None:
            continue
        prefix, src_prefix = key.rpartition(".")[0], source.rpartition(".")[0]
        siblings = [k for k in child_state if k.rpartition(".")[0] == prefix]
        for k in siblings:
            other = f"{src_prefix}.{k.rpartition('.')[2]}"
            if other not in parent_state or parent_state[other].shape != child_state[k].shape:
                out[key] = None
    return out


def check_exact(parent_arch: Architecture, child_arch: Architecture, shape: tuple[int, ...]) -> tuple[int, int]:
    parent = compiled(parent_arch, 0, shape)
    trained_like(parent)
    child, fresh = compiled(child_arch, 1, shape), compiled(child_arch, 1, shape)
    done = inherit(child, inheritable_state(parent))
    sources = expected_source(child, parent)
    parent_state, fresh_state = parent.state_dict(), fresh.state_dict()
    for key, tensor in child.state_dict().items():
        src = sources[key]
        expected = fresh_state[key] if src is None else parent_state[src]
        assert torch.equal(tensor, expected), (key, src)
    copied = sum(s is not None for s in sources.values())
    assert (done.copied, done.fresh) == (copied, len(sources) - copied)
    return done.copied, done.fresh


@pytest.mark.parametrize("seed", range(6))
def test_nb201_child_takes_exactly_the_unchanged_ops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    parent = NB201.sample(rng)
    child = NB201.mutate(parent, rng)
    copied, fresh = check_exact(parent, child, (1, 8, 8))
    assert copied > 0
    changed = set(child.cell("cell").edges) - set(parent.cell("cell").edges)
    assert len(changed) == 1  # one edge op changed: only its tensors (if it has any) are fresh
    (_, _, op), = changed
    assert (fresh > 0) == (op in ("nor_conv_1x1", "nor_conv_3x3"))


def test_the_same_architecture_inherits_everything() -> None:
    arch = NB201.sample(np.random.default_rng(3))
    copied, fresh = check_exact(arch, arch, (1, 8, 8))
    assert fresh == 0 and copied == len(compiled(arch, 0, (1, 8, 8)).state_dict())


@pytest.mark.parametrize("seed", range(4))
def test_darts_children_match_edges_by_what_they_compute(seed: int) -> None:
    rng = np.random.default_rng(seed)
    parent = DARTS.sample(rng)
    child = DARTS.mutate(parent, rng)
    check_exact(parent, child, (1, 8, 8))


def test_an_op_replaced_by_one_with_the_same_shapes_inherits_nothing_of_it() -> None:
    """sep_conv_3x3 and dil_conv_3x3 have tensors at the same keys with the same shapes: none are copied."""
    parent = DARTS.sample(np.random.default_rng(0))
    normal = parent.cell("normal")
    edges = list(normal.edges)
    src, dst, _ = edges[0]
    edges[0] = (src, dst, "sep_conv_3x3")
    parent = parent.replace(cells={**parent.cells, "normal": normal.with_edges(edges)})
    edges[0] = (src, dst, "dil_conv_3x3")
    child = parent.replace(cells={**parent.cells, "normal": normal.with_edges(edges)})
    p, c = compiled(parent, 0, (1, 8, 8)), compiled(child, 1, (1, 8, 8))
    trained_like(p)
    before = {k: v.clone() for k, v in c.state_dict().items()}
    inherit(c, inheritable_state(p))
    names = site_names(c)
    moved = [k for k, v in c.state_dict().items() if not torch.equal(v, before[k])]
    assert moved and not [k for k in moved if f"[{src}>{dst}:dil_conv_3x3]" in names[k]]
    check_exact(parent, child, (1, 8, 8))


def test_shapes_that_changed_stay_fresh() -> None:
    """A wider macro setting (more channels) changes every shape: nothing is copied, nothing fails."""
    arch = NB201.sample(np.random.default_rng(1))
    wider = get_space("nb201", C=6, N=1).decode(NB201.encode(arch))
    copied, _ = check_exact(arch, wider, (1, 8, 8))
    assert copied < len(compiled(arch, 0, (1, 8, 8)).state_dict()) // 2


def test_zero_new_ops_silences_exactly_the_new_convolutions_and_copies_the_same() -> None:
    """``zero_new_ops``: the same tensors are copied; the only other change is the last batch-norm scale of each
    new conv op, now zero, so the new op adds nothing to its node; with the old op put back (the parent's cell),
    the child computes its parent's function exactly."""
    rng = np.random.default_rng(11)
    parent_arch = NB201.sample(rng)
    edges = list(parent_arch.cell("cell").edges)
    src, dst, _ = edges[0]
    edges[0] = (src, dst, "skip_connect")
    parent_arch = parent_arch.replace(cells={"cell": parent_arch.cell("cell").with_edges(edges)})
    edges[0] = (src, dst, "nor_conv_3x3")
    child_arch = parent_arch.replace(cells={"cell": parent_arch.cell("cell").with_edges(edges)})
    parent = compiled(parent_arch, 0, (1, 8, 8))
    trained_like(parent)
    with torch.no_grad():  # variances stay positive, so the forward pass below is finite
        for key, tensor in parent.state_dict().items():
            if key.endswith("running_var"):
                tensor.abs_().add_(0.5)
    plain, zeroed = compiled(child_arch, 1, (1, 8, 8)), compiled(child_arch, 1, (1, 8, 8))
    a = inherit(plain, inheritable_state(parent))
    b = inherit(zeroed, inheritable_state(parent), zero_new_ops=True)
    assert (a.copied, a.fresh, a.zeroed) == (b.copied, b.fresh, 0) and b.zeroed == 3  # one cell per stage
    names = site_names(zeroed)
    differ = [k for k, v in zeroed.state_dict().items() if not torch.equal(v, plain.state_dict()[k])]
    assert len(differ) == 3 and all(k.endswith(".weight") and f"[{src}>{dst}:nor_conv_3x3]" in names[k]
                                    and "BatchNorm2d" in names[k].rpartition("/")[2] for k in differ)
    assert all(not zeroed.state_dict()[k].any() for k in differ)
    # the new conv adds exactly nothing: the child equals its parent with that edge's op removed (``none``)
    edges[0] = (src, dst, "none")
    without = compiled(parent_arch.replace(cells={"cell": parent_arch.cell("cell").with_edges(edges)}), 2, (1, 8, 8))
    inherit(without, inheritable_state(parent))
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    zeroed.eval()
    without.eval()
    with torch.no_grad():
        assert torch.allclose(zeroed(x), without(x), atol=1e-6)
    # nothing to zero without the option, or when nothing was inherited
    assert inherit(compiled(child_arch, 3, (1, 8, 8)), {}, zero_new_ops=True).zeroed == 0
