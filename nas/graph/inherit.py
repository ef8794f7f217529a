"""Weight inheritance between two compiled architectures (Real et al. 2017; LEMONADE's network morphisms): which
tensors of a parent's trained model a child may start from, exactly.

Every tensor of a compiled model (its ``state_dict``, buffers included) gets a *site name* that says what computes
it rather than where it sits: the module path with each module's class and settings (``extra_repr``), and, inside a
cell, the edge ``src>dst:op`` in place of the edge's index in the cell's module list (a DARTS-RNN layer's node weights
likewise by ``node<src:activation``). Two tensors with the same site name, shape and dtype belong to an op that did
not change between parent and child; every other tensor of the child keeps its fresh initialisation. So a child that
differs from its parent in one edge op inherits everything but that op's tensors, whatever order its edges compile
in, and an op replaced by another with tensors of the same shapes (``sep_conv_3x3`` -> ``dil_conv_3x3``) inherits
nothing of it.

:func:`inheritable_state` names a trained model's tensors for the weight store; :func:`inherit` copies the matching
ones into a fresh child and counts what it copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from nas.graph.cells import _GraphCell
from nas.graph.standalone import DartsRNNLayer

__all__ = ["site_names", "inheritable_state", "inherit", "Inherited"]


def _describe(module: nn.Module) -> str:
    extra = module.extra_repr()
    return f"{type(module).__name__}({extra})" if extra else type(module).__name__


def _segment(owner: nn.Module | None, container: nn.Module | None, name: str) -> str:
    """The site segment of child ``name`` of ``container`` (itself a child of ``owner``)."""
    if container is not None and owner is not None and name.isdigit():
        i = int(name)
        if isinstance(owner, _GraphCell) and container is owner.ops and i < len(owner.edge_sites):
            src, dst, op = owner.edge_sites[i]
            return f"[{src}>{dst}:{op}]"
        if isinstance(owner, DartsRNNLayer) and container is owner.weights and i < len(owner.plan):
            node, src = owner.plan[i]
            return f"[{node}<{src}:{_describe(owner.acts[i])}]"
    return name


def site_names(model: nn.Module) -> dict[str, str]:
    """``state_dict`` key -> site name (see the module docstring), for every tensor of ``model``."""
    modules = dict(model.named_modules(remove_duplicate=False))
    sites: dict[str, str] = {"": _describe(model)}
    for path in sorted(modules, key=lambda p: (p.count("."), p) if p else (-1, "")):
        if not path:
            continue
        parent_path, _, name = path.rpartition(".")
        container = modules[parent_path]
        owner_path = parent_path.rpartition(".")[0] if parent_path else None
        owner = modules[owner_path] if owner_path is not None and parent_path else None
        sites[path] = f"{sites[parent_path]}/{_segment(owner, container, name)}={_describe(modules[path])}"
    out = {}
    for key in model.state_dict():
        prefix, _, tensor = key.rpartition(".")
        out[key] = f"{sites[prefix]}.{tensor}"
    return out


def inheritable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors of ``model`` by site name, detached on the CPU (what the weight store keeps of a trained trial)."""
    names = site_names(model)
    return {names[k]: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class Inherited:
    """What :func:`inherit` did: tensors copied from the parent and tensors left as initialised; ``zeroed``: new
    cell ops whose output starts at zero (``zero_new_ops``)."""

    copied: int
    fresh: int
    zeroed: int = 0


def inherit(model: nn.Module, parent: Mapping[str, torch.Tensor], *, zero_new_ops: bool = False) -> Inherited:
    """Copy into ``model`` (a freshly initialised child) every tensor of ``parent`` (an :func:`inheritable_state`)
    whose site name, shape and dtype match one of the child's, exactly (bit for bit); the others stay as they are.

    With ``zero_new_ops``, a cell edge op that inherited none of its tensors (the op a mutation put there) starts
    with the scale of its last batch norm at zero, so it adds nothing to its node at first and the child starts
    close to its parent's function (an approximate network morphism, as in LEMONADE) instead of adding random
    features to trained ones; its weights still train (the gradient of the scale is not zero). Ops without a batch
    norm scale (pooling, skip, a non-affine norm) are left as they are. Nothing copied is touched."""
    names = site_names(model)
    state = model.state_dict()
    copied: set[str] = set()
    with torch.no_grad():
        for key, tensor in state.items():
            source = parent.get(names[key])
            if source is not None and source.shape == tensor.shape and source.dtype == tensor.dtype:
                tensor.copy_(source)
                copied.add(key)
    zeroed = _zero_new_ops(model, copied) if zero_new_ops and copied else 0
    return Inherited(copied=len(copied), fresh=len(state) - len(copied), zeroed=zeroed)


def _zero_new_ops(model: nn.Module, copied: set[str]) -> int:
    """Zero the last batch-norm scale of every cell edge op none of whose tensors is in ``copied``; how many."""
    zeroed = 0
    with torch.no_grad():
        for path, cell in model.named_modules():
            if not isinstance(cell, _GraphCell):
                continue
            for i, op in enumerate(cell.ops):
                prefix = f"{path}.ops.{i}." if path else f"ops.{i}."
                keys = [prefix + k for k in op.state_dict()]
                norms = [m for m in op.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                         and m.weight is not None]
                if keys and norms and not copied.intersection(keys):
                    norms[-1].weight.zero_()
                    zeroed += 1
    return zeroed
