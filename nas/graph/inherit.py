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

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from nas.graph.cells import _GraphCell
from nas.graph.ops.conv import CONV_OPS, ReLUConvBN
from nas.graph.standalone import DartsRNNLayer

__all__ = ["site_names", "inheritable_state", "inherit", "morph_op", "grows", "Inherited", "OP_MARK"]

#: the key suffix under which :func:`inheritable_state` describes a cell edge op (its ``repr``, as bytes), so that a
#: child can initialise the op a mutation put on an edge from the op it replaced, parameter-free ones included
OP_MARK = "#op"


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


def _module_sites(model: nn.Module) -> dict[str, str]:
    """Module path -> site name of that module, for every module of ``model`` (the root: ``""``)."""
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
    return sites


def site_names(model: nn.Module) -> dict[str, str]:
    """``state_dict`` key -> site name (see the module docstring), for every tensor of ``model``."""
    sites = _module_sites(model)
    out = {}
    for key in model.state_dict():
        prefix, _, tensor = key.rpartition(".")
        out[key] = f"{sites[prefix]}.{tensor}"
    return out


def _edge_ops(model: nn.Module) -> Iterator[tuple[str, str, nn.Module, str]]:
    """``(module path, site name, op module, edge prefix)`` of every cell edge op of ``model``; the edge prefix is
    the op's site name up to its op name (``.../[src>dst:``), the same for whatever op sits on that edge."""
    sites = _module_sites(model)
    for path, cell in model.named_modules():
        if not isinstance(cell, _GraphCell):
            continue
        ops_path = f"{path}.ops" if path else "ops"
        for i, op in enumerate(cell.ops):
            if i < len(cell.edge_sites):
                src, dst, _ = cell.edge_sites[i]
                yield f"{ops_path}.{i}", sites[f"{ops_path}.{i}"], op, f"{sites[ops_path]}/[{src}>{dst}:"


def inheritable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors of ``model`` by site name, detached on the CPU (what the weight store keeps of a trained trial).
    Each cell edge op is also described under its site name + :data:`OP_MARK` (its ``repr`` as bytes, a ``uint8``
    tensor), parameter-free ops included, so a child can start the op that replaced it from it (``morph``)."""
    names = site_names(model)
    state = {names[k]: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    for _, site, op, _ in _edge_ops(model):
        state[site + OP_MARK] = torch.tensor(list(repr(op).encode()), dtype=torch.uint8)
    return state


@dataclass(frozen=True)
class Inherited:
    """What :func:`inherit` did: tensors copied from the parent and tensors left as initialised; ``zeroed``: new
    cell ops whose output starts at zero (``zero_new_ops``); ``exact`` / ``approx``: new cell ops initialised from
    the op they replaced (``morph``) so that the child computes its parent's function exactly / approximately."""

    copied: int
    fresh: int
    zeroed: int = 0
    exact: int = 0
    approx: int = 0


def inherit(model: nn.Module, parent: Mapping[str, torch.Tensor], *, zero_new_ops: bool = False,
            morph: bool = False, sample: torch.Tensor | None = None) -> Inherited:
    """Copy into ``model`` (a freshly initialised child) every tensor of ``parent`` (an :func:`inheritable_state`)
    whose site name, shape and dtype match one of the child's, exactly (bit for bit); the others stay as they are.

    With ``morph`` (network morphisms: Net2Net, LEMONADE), a cell edge op that inherited none of its tensors (the op
    a mutation put there) is initialised from the op it replaced on that edge where a morphism exists
    (:func:`morph_op`): exactly from ``none`` (output zero) and from a smaller ReLU-conv-BN (kernel centred in a
    zero kernel, batch norm copied); approximately from a larger one (centre crop), from ``skip_connect`` (identity
    kernel: ``relu(x)`` in place of ``x``) and from an average pool (its kernel as a per-channel dense kernel, after
    the ReLU, zero-padded at the border). For those last two, ``sample`` (a batch of the model's inputs, on the
    model's device) fits the new op's batch norm: its statistics become those of its input on ``sample`` and its
    scale and shift the least-squares fit of the replaced op's output (``x``, the pool of ``x``), per channel;
    without ``sample`` it is the identity in eval mode. A removal (an op replaced by ``none``, ``skip`` or
    a pool) cannot preserve the function: nothing is done for it.

    With ``zero_new_ops``, a cell edge op that inherited none of its tensors (and was not morphed) starts with the
    scale of its last batch norm at zero, so it adds nothing to its node at first and the child starts close to its
    parent's function instead of adding random features to trained ones; its weights still train (the gradient of
    the scale is not zero). Ops without a batch norm scale (pooling, skip, a non-affine norm) are left as they are.
    Nothing copied is touched."""
    names = site_names(model)
    state = model.state_dict()
    copied: set[str] = set()
    with torch.no_grad():
        for key, tensor in state.items():
            source = parent.get(names[key])
            if source is not None and source.shape == tensor.shape and source.dtype == tensor.dtype:
                tensor.copy_(source)
                copied.add(key)
    exact = approx = 0
    touched = set(copied)
    if morph and copied:
        calibrate: list[_Fit] = []
        for path, _, op, edge in _edge_ops(model):
            keys = {f"{path}.{k}" for k in op.state_dict()}
            if not keys or copied.intersection(keys):
                continue
            old = _replaced_op(parent, edge)
            if old is None:
                continue
            kind = morph_op(op, *old, calibrate)
            if kind is not None:
                touched |= keys
                exact += kind == "exact"
                approx += kind == "approx"
        if calibrate:
            _calibrate(model, calibrate, sample)
    zeroed = _zero_new_ops(model, touched) if zero_new_ops and copied else 0
    return Inherited(copied=len(copied), fresh=len(state) - len(copied), zeroed=zeroed, exact=exact, approx=approx)


def _relative(site: str) -> str:
    """``/op=Sequential/1=Conv2d(...).weight`` -> ``op.1.weight``: a site name inside an op as a state_dict key."""
    path, _, tensor = site.rpartition(".")
    return ".".join([*(seg.partition("=")[0] for seg in path.split("/") if seg), tensor])


def _replaced_op(parent: Mapping[str, torch.Tensor], edge: str) -> tuple[str, dict[str, torch.Tensor]] | None:
    """``(repr, tensors by state_dict key inside the op)`` of the parent's op on the edge ``edge`` (an edge prefix,
    see :func:`_edge_ops`), None when the parent has no description of it (weights stored before :data:`OP_MARK`)."""
    for key, value in parent.items():
        if key.startswith(edge) and key.endswith(OP_MARK):
            site = key[:-len(OP_MARK)]
            tensors = {_relative(k[len(site):]): v for k, v in parent.items()
                       if k.startswith(site) and k[len(site):len(site) + 1] in ("/", ".") and k != key}
            return bytes(value.tolist()).decode(errors="replace"), tensors
    return None


class _Fit(NamedTuple):
    """A morphed op whose batch norm ``bn`` is fitted to ``old`` (what the replaced op computed on the op's input);
    ``conv``: the op's convolution, after its ReLU."""

    op: nn.Module
    conv: nn.Conv2d
    bn: nn.BatchNorm2d
    old: Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _relu_conv_bn(x: torch.Tensor, *, kernel: torch.Tensor, bn: Mapping[str, torch.Tensor], eps: float,
                  stride: tuple[int, ...], dilation: tuple[int, ...]) -> torch.Tensor:
    """What a trained ReLU-conv-BN op (``kernel``, batch-norm state ``bn``) computes on ``x`` in eval mode."""
    k = kernel.shape[-1]
    z = nn.functional.conv2d(torch.relu(x), kernel.to(x), stride=stride, padding=dilation[0] * (k // 2),
                             dilation=dilation)
    return nn.functional.batch_norm(z, bn["running_mean"].to(x), bn["running_var"].to(x), bn["weight"].to(x),
                                    bn["bias"].to(x), False, 0.0, eps)


_POOL = re.compile(r"AvgPool2d\(kernel_size=(\d+), stride=(\d+), padding=(\d+)\)")


def _conv_settings(text: str) -> str:
    """A Conv2d's description without its kernel size and padding (what must agree for a morphism)."""
    return re.sub(r"(kernel_size|padding)=\([^)]*\), ?", "", text)


def _fit_kernel(kernel: torch.Tensor, size: int) -> tuple[torch.Tensor, bool]:
    """``kernel`` ``(out, in, k, k)`` centred in a zero ``size`` x ``size`` kernel (exact: the same output with the
    padding ``size // 2``) or, when larger, its centre ``size`` x ``size`` crop; ``(kernel, exact)``."""
    k = kernel.shape[-1]
    if size >= k and (size - k) % 2 == 0:
        out = kernel.new_zeros(*kernel.shape[:2], size, size)
        lo = (size - k) // 2
        out[..., lo:lo + k, lo:lo + k] = kernel
        return out, True
    lo = (k - size) // 2
    return kernel[..., lo:lo + size, lo:lo + size].clone(), False


def morph_op(op: nn.Module, old: str, tensors: Mapping[str, torch.Tensor],
             calibrate: list[_Fit]) -> str | None:
    """Initialise the fresh cell op ``op`` (in place) from the op it replaces (``old``: its ``repr``, ``tensors``:
    its trained tensors by ``state_dict`` key): ``"exact"`` when the child then computes what the parent computed,
    ``"approx"`` when only nearly, None when no morphism exists (``op`` untouched). An op whose batch norm must
    then be fitted to the replaced op's output is appended to ``calibrate`` with that op's function (see
    :func:`inherit`)."""
    norms = [m for m in op.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
    with torch.no_grad():
        if old.startswith("Zero(") and norms:  # none -> op: the op's output starts at zero
            norms[-1].weight.zero_()
            norms[-1].bias.zero_()
            return "exact"
        if not isinstance(op, ReLUConvBN):
            return None
        conv, bn = op.op[1], op.op[2]
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d) or conv.groups != 1:
            return None
        size = conv.kernel_size[0]
        if old.startswith("ReLUConvBN("):  # a conv of another kernel size: resized kernel, batch norm copied
            kernel = tensors.get("op.1.weight")
            old_conv = re.search(r"\(1\): (Conv2d\(.*\))", old)
            if (kernel is None or kernel.shape[:2] != conv.weight.shape[:2] or old_conv is None
                    or _conv_settings(old_conv.group(1)) != _conv_settings(repr(conv))):
                return None
            new, exact = _fit_kernel(kernel, size)
            conv.weight.copy_(new.to(conv.weight.dtype))
            old_bn = {name: tensors[f"op.2.{name}"] for name, t in bn.state_dict().items()
                      if f"op.2.{name}" in tensors and tensors[f"op.2.{name}"].shape == t.shape}
            if len(old_bn) != len(bn.state_dict()):
                return "approx"
            bn.load_state_dict(old_bn)
            if not exact:  # a crop: the batch norm fitted to the larger conv's output (with a sample)
                calibrate.append(_Fit(op, conv, bn, functools.partial(
                    _relu_conv_bn, kernel=kernel, bn=old_bn, eps=bn.eps, stride=conv.stride, dilation=conv.dilation)))
            return "exact" if exact else "approx"
        if conv.stride != (1, 1) or conv.in_channels != conv.out_channels or conv.dilation != (1, 1):
            return None
        # the identity in eval mode; fitted to the replaced op's output with a sample
        bn.load_state_dict({**bn.state_dict(), "running_mean": torch.zeros_like(bn.weight),
                            "running_var": torch.full_like(bn.weight, 1.0 - bn.eps),
                            "weight": torch.ones_like(bn.weight), "bias": torch.zeros_like(bn.weight)})
        if old.startswith("Identity("):  # skip -> conv: identity kernel, relu(x) in place of x
            nn.init.dirac_(conv.weight)
            calibrate.append(_Fit(op, conv, bn, _identity))
        else:  # average pool -> conv: the pool as a per-channel kernel (sums to 1), after the ReLU
            pool = _POOL.search(old)
            if (pool is None or not re.search(r"\(preprocess\): Identity\(\)", old) or int(pool.group(2)) != 1
                    or int(pool.group(3)) != int(pool.group(1)) // 2):
                return None
            k = int(pool.group(1))
            dense = torch.zeros_like(conv.weight[:, :, :1, :1]).repeat(1, 1, k, k)
            dense[torch.arange(conv.out_channels), torch.arange(conv.out_channels)] = 1.0 / (k * k)
            fitted, _ = _fit_kernel(dense, size)
            conv.weight.copy_(fitted / fitted.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12))
            calibrate.append(_Fit(op, conv, bn, nn.AvgPool2d(k, 1, k // 2, count_include_pad=False)))
        return "approx"


_NOR_CONV = re.compile(r"nor_conv_(\d+)x\1")


def grows(old: str, new: str) -> bool:
    """Whether replacing conv op ``old`` by ``new`` on an edge is a growth :func:`morph_op` starts at the parent's
    function (exactly or nearly): ``none`` -> an op with parameters, a ReLU-conv-BN by a larger one, ``skip_connect``
    or an average pool -> a ReLU-conv-BN. Everything else (a removal, a smaller conv, a new parameter-free op)
    is not."""
    if old not in CONV_OPS or new not in CONV_OPS or old == new:
        return False
    before, after = CONV_OPS.get(old), CONV_OPS.get(new)
    if before.zero:
        return not after.parameter_free
    grown = _NOR_CONV.fullmatch(new)
    if grown is None:
        return False
    shrunk = _NOR_CONV.fullmatch(old)
    if shrunk is not None:
        return int(grown.group(1)) > int(shrunk.group(1))
    return before.identity or old.startswith("avg_pool_")


def _calibrate(model: nn.Module, fits: list[_Fit], sample: torch.Tensor | None) -> None:
    """Set the batch norm of each op of ``fits`` so that the op outputs nearly what the op it replaced did (the
    ``Callable``, on the op's input), from one pass over ``sample`` in eval mode (None: nothing is done): its running
    statistics become those of its input on ``sample`` and its scale and shift the least-squares fit, per channel,
    of the replaced op's output from the normalised input: the best the new op can do, in eval mode and, as batch
    statistics are close to those, in train mode."""
    if sample is None:
        return
    with torch.no_grad():
        found: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

        def per_channel(x: torch.Tensor) -> torch.Tensor:
            return x.transpose(0, 1).flatten(1).float()

        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            fit = fits[index[id(module)]]
            z = per_channel(fit.conv(torch.relu(args[0])))
            target = per_channel(fit.old(args[0]))
            mean, var = z.mean(dim=1), z.var(dim=1, unbiased=False)
            u = (z - mean[:, None]) / torch.sqrt(var + fit.bn.eps)[:, None]
            scale = (u * (target - target.mean(dim=1, keepdim=True))).mean(dim=1) / (u * u).mean(dim=1).clamp_min(1e-12)
            found[id(module)] = (mean, var, torch.stack([scale, target.mean(dim=1)]))

        index = {id(fit.op): i for i, fit in enumerate(fits)}
        handles = [fit.op.register_forward_pre_hook(hook) for fit in fits]
        was_training = model.training
        try:
            model.eval()
            model(sample)
        finally:
            model.train(was_training)
            for handle in handles:
                handle.remove()
        for fit in fits:
            if id(fit.op) in found:
                mean, var, (scale, shift) = found[id(fit.op)]
                fit.bn.load_state_dict({**fit.bn.state_dict(), "running_mean": mean, "running_var": var,
                                        "weight": scale, "bias": shift})


def _zero_new_ops(model: nn.Module, copied: set[str]) -> int:
    """Zero the last batch-norm scale of every cell edge op none of whose tensors is in ``copied`` (copied or
    morphed); how many."""
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
