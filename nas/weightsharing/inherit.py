"""Give a member's freshly compiled model the weights of its path in a trained supernet, then recalibrate its
batch-norm statistics.

The supernet and the member's model are compiled by the same skeleton, so a module of the member sits at the
same path as the supernet's module, except on a searched edge (or macro site): there the supernet holds a mixed
op whose ``ops[i]`` is the candidate ``i``, and the member holds that candidate itself. :func:`path_of` reads the
member's op index per slot row; :func:`inherit` maps every entry of the member's state dict to the supernet's
(``<site>.<rest>`` -> ``<site>.ops.<i>.<rest>``) and copies it, refusing a member whose structure does not line
up (a missing entry or another shape). Batch-norm running statistics are an average over the many paths the
supernet trained, wrong for any one of them, so :func:`recalibrate_bn` recomputes them on a few training batches
(Guo et al. 2020, section 3.3), changing nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.core.errors import InvalidArchitectureError
from nas.graph.architecture import Architecture

__all__ = ["path_of", "inherit", "recalibrate_bn"]


def path_of(arch: Architecture, slots: Mapping[str, list[Any]], edges: Mapping[str, list[tuple[int, int]]],
            macro: Mapping[str, str]) -> dict[str, list[int]]:
    """The op index of ``arch`` on every row of every slot: ``slots`` gives each slot's candidates, ``edges``
    the ``(src, dst)`` of each row of a cell slot, ``macro`` the setting a macro slot chooses.
    :class:`InvalidArchitectureError` when ``arch`` lacks an edge of a slot or uses an op the supernet lacks."""
    path: dict[str, list[int]] = {}
    for name, ops in slots.items():
        if name in macro:
            value = arch.macro.get(macro[name])
            if value not in ops:
                raise InvalidArchitectureError(f"macro setting {macro[name]!r} = {value!r} is not a candidate of the "
                                               f"supernet ({ops})")
            path[name] = [list(ops).index(value)]
            continue
        chosen = {(s, d): op for s, d, op in arch.cell(name).edges}
        rows = []
        for src, dst in edges[name]:
            op = chosen.get((src, dst))
            if op is None or op not in ops:
                raise InvalidArchitectureError(f"cell {name!r}: edge {(src, dst)} holds {op!r}; the supernet's "
                                               f"candidates are {list(ops)} on every edge {list(edges[name])}")
            rows.append(list(ops).index(op))
        path[name] = rows
    return path


def inherit(model: nn.Module, weights: Mapping[str, torch.Tensor], sites: Mapping[str, list[Any]],
            path: Mapping[str, list[int]]) -> int:
    """Copy into ``model`` (a member compiled by the supernet's skeleton) its path's entries of the supernet
    network's state dict ``weights``; ``sites`` maps each mixed op's module path to ``[slot, row]``. Every entry of
    the model's state dict is copied (parameters and buffers, batch-norm statistics included); returns how many.
    :class:`InvalidArchitectureError` naming the entry when one has no counterpart of the same shape."""
    # longest site first, so that a site inside another (none today) resolves to the inner one
    order = sorted(sites, key=len, reverse=True)
    state = model.state_dict()
    copied = {}
    for key, value in state.items():
        source = key
        for site in order:
            if key.startswith(site + "."):
                slot, row = sites[site]
                source = f"{site}.ops.{path[slot][row]}{key[len(site):]}"
                break
        held = weights.get(source)
        if held is None or tuple(held.shape) != tuple(value.shape):
            found = "nothing" if held is None else f"shape {tuple(held.shape)}"
            raise InvalidArchitectureError(f"weight sharing: the model's {key!r} {tuple(value.shape)} maps to the "
                                           f"supernet's {source!r}, which holds {found}; the member does not line "
                                           "up with the supernet it should inherit from")
        copied[key] = held
    model.load_state_dict(copied, strict=True)
    return len(copied)


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: list[torch.Tensor]) -> int:
    """Recompute the running mean and variance of every batch-norm layer of ``model`` as the plain average over
    ``batches`` (forward passes in training mode, no gradients), then put ``model`` in evaluation mode. Parameters
    and every other buffer stay as they were; returns the number of batch-norm layers reset (0: nothing to do)."""
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    if not norms or not batches:
        model.eval()
        return 0
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()
    return len(norms)
