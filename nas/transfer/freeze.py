"""Transfer modes: what of a network that received trained weights stays frozen and what learns.

A compiled network (:mod:`nas.graph.compiler`) is a body and a head, ``classifier``. The body's units, in order
(:func:`body_units`): the stem (what comes before the cells: the stem conv, or the embedding and positional
encoding of a sequence model), one unit per cell or block of its ``body`` / ``cells`` container, then what follows
them (the head's pre-activation, a sequence model's final norm). A network without such a container (a define-by-run
model) counts each top-level module before the head as a cell.

* ``full``: every weight learns; the body's learning rate may be scaled down (``body_lr_scale``).
* ``features``: the whole body is frozen, only the head learns (a linear probe of the body's features).
* ``partial``: the stem and the first ``freeze`` cells are frozen, the rest learns.

Frozen means: ``requires_grad`` off, and the module kept in eval mode while training, so its batch-norm statistics
stay as loaded (the trainer keeps the plan's :attr:`FreezePlan.eval_modules` in eval mode). A tensor that was not
loaded (re-initialised because its shape changed) is never frozen: its module learns, and the plan says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from nas.core.checks import is_int, is_number
from nas.core.errors import ConfigError, did_you_mean
from nas.transfer.weights import CopyReport

__all__ = ["HEAD", "MODES", "TransferSpec", "FreezePlan", "apply_mode", "body_units", "frozen_names"]

#: the head of every compiled network
HEAD = "classifier"
#: the transfer modes
MODES = ("full", "features", "partial")
#: containers whose children are the network's cells
_CONTAINERS = ("body", "cells")


@dataclass(frozen=True)
class TransferSpec:
    """How weights are carried over: ``mode`` (:data:`MODES`), ``freeze`` (the cells ``partial`` freezes after the
    stem; required for it, refused otherwise) and ``body_lr_scale`` (the body's learning rate as a fraction of the
    head's; ``full`` only). Checked on construction; ``where`` names the fields in messages: ``"--"`` for the
    command line's flags (``--body-lr-scale``), ``"evaluator.init_"`` for a config's fields."""

    mode: str = "full"
    freeze: int | None = None
    body_lr_scale: float = 1.0
    where: str = "--"

    def _name(self, field: str) -> str:
        """How a message names ``field``: ``evaluator.init_mode`` in a config, ``--body-lr-scale`` on the CLI."""
        return f"--{field.replace('_', '-')}" if self.where == "--" else f"{self.where}{field}"

    def __post_init__(self) -> None:
        n = self._name
        if self.mode not in MODES:
            raise ConfigError(f"{n('mode')} = {self.mode!r}: choose one of {', '.join(MODES)}"
                              + did_you_mean(str(self.mode), MODES))
        if self.mode == "partial":
            if self.freeze is None:
                raise ConfigError(f"{n('mode')} = 'partial' needs {n('freeze')} K, the number of cells frozen after "
                                  "the stem (0 freezes the stem only)")
            if not is_int(self.freeze) or self.freeze < 0:
                raise ConfigError(f"{n('freeze')} = {self.freeze!r}: give a whole number of cells, 0 or more")
        elif self.freeze is not None:
            raise ConfigError(f"{n('freeze')} = {self.freeze!r} applies to mode 'partial' only, not {self.mode!r}; "
                              f"remove it or use {n('mode')} partial")
        if not is_number(self.body_lr_scale) or not math.isfinite(self.body_lr_scale) \
                or not 0 < self.body_lr_scale <= 1:
            raise ConfigError(f"{n('body_lr_scale')} = {self.body_lr_scale!r}: give a fraction in (0, 1], e.g. 0.1 "
                              "for a body learning 10 times slower than the head")
        if self.body_lr_scale != 1.0 and self.mode != "full":
            raise ConfigError(f"{n('body_lr_scale')} = {self.body_lr_scale!r} applies to mode 'full' only (in "
                              f"{self.mode!r} the frozen body does not learn); remove it or use {n('mode')} full")

    def describe(self) -> str:
        if self.mode == "partial":
            return f"partial (stem and the first {self.freeze} cells frozen)"
        if self.mode == "features":
            return "features (body frozen, head trained)"
        return "full" + (f" (body lr x{self.body_lr_scale:g})" if self.body_lr_scale != 1.0 else "")


def body_units(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[tuple[str, nn.Module]],
                                          list[tuple[str, nn.Module]]]:
    """``(stem, cells, tail)``: the body's units with their ``state_dict`` prefixes, in order (see the module
    docstring). Modules without parameters or buffers are left out; the head is in none of them."""
    stem: list[tuple[str, nn.Module]] = []
    cells: list[tuple[str, nn.Module]] = []
    tail: list[tuple[str, nn.Module]] = []
    children = list(model.named_children())
    has_container = any(n in _CONTAINERS and isinstance(c, (nn.Sequential, nn.ModuleList)) for n, c in children)
    seen_cells = False
    for name, child in children:
        if name == HEAD or not any(True for _ in child.state_dict()):
            continue
        if name in _CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)):
            cells.extend((f"{name}.{i}", sub) for i, sub in enumerate(child))
            seen_cells = True
        elif not has_container:
            cells.append((name, child))
        else:
            (tail if seen_cells else stem).append((name, child))
    return stem, cells, tail


@dataclass
class FreezePlan:
    """What :func:`apply_mode` froze: parameter names (``requires_grad`` now off), the modules the trainer keeps in
    eval mode, the parameters whose learning rate is scaled (``(parameters, scale)`` groups for the trainer), and the
    modules of frozen units left to learn because a tensor of theirs was re-initialised."""

    frozen: list[str] = field(default_factory=list)
    eval_modules: list[nn.Module] = field(default_factory=list)
    lr_groups: list[tuple[list[nn.Parameter], float]] = field(default_factory=list)
    kept_trainable: dict[str, str] = field(default_factory=dict)
    #: how many body units the mode froze (stem, cells and tail count one each)
    units: int = 0


def _freeze_unit(prefix: str, unit: nn.Module, loaded: set[str], plan: FreezePlan) -> None:
    for sub_name, module in unit.named_modules():
        own = [n for n, _ in module.named_parameters(recurse=False)] + \
              [n for n, _ in module.named_buffers(recurse=False)]
        if not own:
            continue
        full = ".".join(p for p in (prefix, sub_name) if p)
        fresh = [n for n in own if f"{full}.{n}" not in loaded]
        if fresh:
            plan.kept_trainable[full] = f"re-initialised {', '.join(fresh)}: trained, not frozen"
            continue
        for n, p in module.named_parameters(recurse=False):
            p.requires_grad_(False)
            plan.frozen.append(f"{full}.{n}")
        plan.eval_modules.append(module)


def apply_mode(model: nn.Module, spec: TransferSpec, copied: CopyReport) -> FreezePlan:
    """Freeze what ``spec`` freezes in ``model`` (in place), given what ``copied`` loaded into it; returns the plan.
    ``partial`` with more cells to freeze than the model has is a :class:`ConfigError` naming how many it has."""
    stem, cells, tail = body_units(model)
    plan = FreezePlan()
    if spec.mode == "full":
        if spec.body_lr_scale != 1.0:
            body = [p for n, p in model.named_parameters() if not (n == HEAD or n.startswith(HEAD + "."))]
            plan.lr_groups.append((body, spec.body_lr_scale))
        return plan
    if spec.mode == "features":
        units = stem + cells + tail
    else:
        assert spec.freeze is not None  # checked by TransferSpec
        if spec.freeze > len(cells):
            raise ConfigError(f"{spec._name('freeze')} = {spec.freeze}: the network has {len(cells)} cells after its "
                              f"stem ({', '.join(n for n, _ in cells)}); give 0 to {len(cells)}")
        units = stem + cells[:spec.freeze]
    loaded = copied.loaded
    for prefix, unit in units:
        _freeze_unit(prefix, unit, loaded, plan)
    plan.units = len(units)
    return plan


def frozen_names(model: nn.Module, plan: FreezePlan) -> Sequence[str]:
    """Every ``state_dict`` entry that ``plan`` keeps unchanged: its frozen modules' parameters and buffers."""
    ids = {id(m) for m in plan.eval_modules}
    names = []
    for name, module in model.named_modules():
        if id(module) in ids:
            names += [f"{name}.{n}" if name else n for n, _ in module.named_parameters(recurse=False)]
            names += [f"{name}.{n}" if name else n for n, _ in module.named_buffers(recurse=False)]
    return names
