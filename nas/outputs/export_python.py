"""Code generation: a compiled model -> one standalone Python file that needs nothing but ``torch``.

The model is traced with ``torch.fx`` down to standard ``torch.nn`` leaf modules (convolutions, norms, linear
layers, LSTM/GRU, multi-head attention, pools, activations) plus the small framework modules of
:mod:`nas.graph.standalone` (the input check, the DARTS-RNN layer and the sinusoidal positional encoding), whose
source the file embeds unchanged (``inspect.getsource``), so it cannot drift from the framework. It holds:

* ``class Model(nn.Module)`` whose ``__init__`` rebuilds the module tree under the compiled model's own
  names, so the exported ``state_dict`` loads with ``strict=True``, and whose ``forward`` is the traced code;
* ``load(weights_path)``: a ``Model`` with the weights loaded (``torch.load(..., weights_only=True)``), in
  eval mode;
* a ``__main__`` self-check that runs a random batch of the expected input shape.

Contract: :func:`generate_python` raises :class:`~nas.core.errors.NASError` (``ExportError``) naming the
module when the model holds a module it cannot write out; it never emits code that imports this framework.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nas.graph import standalone
from nas.graph.standalone import STANDALONE_CLASSES, DartsRNNLayer, InputCheck, SinusoidalPositionalEncoding
from nas.outputs.loading import ExportError

__all__ = ["generate_python", "ExportError", "trace_leaves", "SUPPORTED_MODULES"]


# -- constructor expressions of the leaf modules --------------------------------------------------------------
def _args(*positional: Any, **keywords: Any) -> str:
    parts = [repr(v) for v in positional] + [f"{k}={v!r}" for k, v in keywords.items()]
    return ", ".join(parts)


def _conv(m: Any) -> str:
    return _args(m.in_channels, m.out_channels, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                 dilation=m.dilation, groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode)


def _batchnorm(m: Any) -> str:
    return _args(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                 track_running_stats=m.track_running_stats)


def _rnn(m: Any) -> str:
    extra = {"proj_size": m.proj_size} if isinstance(m, nn.LSTM) and m.proj_size else {}
    return _args(m.input_size, m.hidden_size, num_layers=m.num_layers, bias=m.bias, batch_first=m.batch_first,
                 dropout=m.dropout, bidirectional=m.bidirectional, **extra)


def _mha(m: Any) -> str:
    return _args(m.embed_dim, m.num_heads, dropout=m.dropout, bias=m.in_proj_bias is not None,
                 add_bias_kv=m.bias_k is not None, add_zero_attn=m.add_zero_attn, kdim=m.kdim, vdim=m.vdim,
                 batch_first=m.batch_first)


#: torch.nn class -> (name in the generated file, constructor arguments of an instance)
_TORCH_LEAVES: dict[type[nn.Module], tuple[str, Callable[[Any], str]]] = {
    nn.Conv1d: ("nn.Conv1d", _conv),
    nn.Conv2d: ("nn.Conv2d", _conv),
    nn.ConvTranspose2d: ("nn.ConvTranspose2d", lambda m: _args(
        m.in_channels, m.out_channels, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
        output_padding=m.output_padding, groups=m.groups, bias=m.bias is not None, dilation=m.dilation)),
    nn.Upsample: ("nn.Upsample", lambda m: _args(size=m.size, scale_factor=m.scale_factor, mode=m.mode,
                                                 align_corners=m.align_corners)),
    nn.Embedding: ("nn.Embedding", lambda m: _args(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx)),
    nn.BatchNorm1d: ("nn.BatchNorm1d", _batchnorm),
    nn.BatchNorm2d: ("nn.BatchNorm2d", _batchnorm),
    nn.LayerNorm: ("nn.LayerNorm", lambda m: _args(tuple(m.normalized_shape), eps=m.eps,
                                                   elementwise_affine=m.elementwise_affine,
                                                   bias=m.bias is not None)),
    nn.Linear: ("nn.Linear", lambda m: _args(m.in_features, m.out_features, bias=m.bias is not None)),
    nn.LSTM: ("nn.LSTM", _rnn),
    nn.GRU: ("nn.GRU", _rnn),
    nn.MultiheadAttention: ("nn.MultiheadAttention", _mha),
    nn.AvgPool2d: ("nn.AvgPool2d", lambda m: _args(m.kernel_size, stride=m.stride, padding=m.padding,
                                                   ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad,
                                                   divisor_override=m.divisor_override)),
    nn.MaxPool2d: ("nn.MaxPool2d", lambda m: _args(m.kernel_size, stride=m.stride, padding=m.padding,
                                                   dilation=m.dilation, ceil_mode=m.ceil_mode)),
    nn.AdaptiveAvgPool2d: ("nn.AdaptiveAvgPool2d", lambda m: _args(m.output_size)),
    nn.Flatten: ("nn.Flatten", lambda m: _args(m.start_dim, m.end_dim)),
    nn.ReLU: ("nn.ReLU", lambda m: _args(inplace=m.inplace)),
    nn.GELU: ("nn.GELU", lambda m: _args(approximate=m.approximate)),
    nn.Tanh: ("nn.Tanh", lambda m: ""),
    nn.Sigmoid: ("nn.Sigmoid", lambda m: ""),
    nn.Identity: ("nn.Identity", lambda m: ""),
    nn.Dropout: ("nn.Dropout", lambda m: _args(m.p)),
}


def _input_check(m: InputCheck) -> str:
    return _args(list(m.shape), m.layout)


def _darts_rnn(m: DartsRNNLayer) -> str:
    acts = "[" + ", ".join(_constructor(a, "acts") for a in m.acts) + "]"
    return (f"{m.w0.in_features - m.hidden}, {m.hidden}, plan={[list(p) for p in m.plan]!r}, activations={acts}, "
            f"n_nodes={m.n_nodes}, output_nodes={list(m.output_nodes)!r}, combine={m.combine!r}")


def _sinusoidal(m: SinusoidalPositionalEncoding) -> str:
    return _args(m.pe.shape[2], m.pe.shape[1])


#: framework classes written out by the generated file itself -> (its class name, constructor arguments)
_OWN_LEAVES: dict[type[nn.Module], tuple[str, Callable[[Any], str]]] = {
    InputCheck: ("InputCheck", _input_check),
    DartsRNNLayer: ("DartsRNNLayer", _darts_rnn),
    SinusoidalPositionalEncoding: ("SinusoidalPositionalEncoding", _sinusoidal),
}

SUPPORTED_MODULES = tuple(sorted(name for name, _ in [*_TORCH_LEAVES.values(), *_OWN_LEAVES.values()]))


def _constructor(module: nn.Module, path: str) -> str:
    table = _OWN_LEAVES if type(module) in _OWN_LEAVES else _TORCH_LEAVES
    entry = table.get(type(module))
    if entry is None:
        raise ExportError(f"model.py: cannot write module {path!r} of class {type(module).__qualname__} as plain "
                          f"torch code; supported leaf modules: {', '.join(SUPPORTED_MODULES)}. Export the other "
                          "formats with --format json,weights,torchscript,onnx")
    name, args = entry
    return f"{name}({args(module)})"


def _is_leaf(module: nn.Module) -> bool:
    return type(module) in _TORCH_LEAVES or type(module) in _OWN_LEAVES


class _LeafTracer(fx.Tracer):
    """Traces through every framework module and stops at the leaf modules the generated file can build."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if _is_leaf(m):
            return True
        if type(m).__module__.startswith("torch.nn") and not isinstance(m, (nn.Sequential, nn.ModuleList)):
            raise ExportError(f"model.py: module {module_qualified_name!r} ({type(m).__qualname__}) is not "
                              f"supported; supported leaf modules: {', '.join(SUPPORTED_MODULES)}")
        return False


def trace_leaves(model: nn.Module) -> fx.GraphModule:
    """``model`` (eval mode) traced by ``torch.fx`` down to the supported leaf modules, dead code removed."""
    was = model.training
    model.eval()
    try:
        # optional inputs (default None: a conditional generator's labels, given packed) are traced as absent
        optional = {name: None for name, p in inspect.signature(model.forward).parameters.items()
                    if p.default is None}
        graph = _LeafTracer().trace(model, concrete_args=optional or None)
    except ExportError:
        raise
    except Exception as err:  # fx raises TraceError, TypeError, ... on code it cannot follow symbolically
        raise ExportError(f"model.py: torch.fx cannot trace the model ({type(err).__name__}: {err}); "
                          "export the other formats with --format json,weights,torchscript,onnx") from None
    finally:
        model.train(was)
    gm = fx.GraphModule(model, graph)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


# -- the module tree ------------------------------------------------------------------------------------------
def _tree_lines(model: nn.Module) -> list[str]:
    """``_put(self, "path", constructor)`` lines rebuilding every module of ``model`` under the same names."""
    lines: list[str] = []
    leaves: list[str] = []
    for path, module in model.named_modules():
        if path and any(path.startswith(leaf + ".") for leaf in leaves):
            continue  # built by its leaf's constructor
        if path and _is_leaf(module):
            leaves.append(path)
            lines.append(f"_put(self, {path!r}, {_constructor(module, path)})")
            continue
        if type(module).__module__.startswith("torch.nn") and not isinstance(module, (nn.Sequential,
                                                                                    nn.ModuleList)):
            _constructor(module, path)  # raises: an unsupported torch module
        # a container: its own parameters and buffers (e.g. a learned positional encoding) are declared here
        for name, param in module.named_parameters(recurse=False):
            full = f"{path}.{name}" if path else name
            lines.append(f"_param(self, {full!r}, {list(param.shape)!r}, {_dtype(param)!r})")
        non_persistent: set[str] = getattr(module, "_non_persistent_buffers_set", set())
        for name, buf in module.named_buffers(recurse=False):
            full = f"{path}.{name}" if path else name
            if name in non_persistent:
                raise ExportError(f"model.py: module {path!r} ({type(module).__qualname__}) holds the "
                                  f"non-persistent buffer {name!r}, which the weights do not carry")
            lines.append(f"_buffer(self, {full!r}, {list(buf.shape)!r}, {_dtype(buf)!r})")
    return lines


# -- the forward code -----------------------------------------------------------------------------------------
_ALLOWED_GLOBALS = {"torch": None, "inf": "inf = float(\"inf\")", "nan": "nan = float(\"nan\")",
                    "device": "device = torch.device"}


def _free_names(src: str) -> set[str]:
    """Names a function's source reads but neither assigns nor takes as arguments (builtins excluded)."""
    tree = ast.parse(src)
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            bound.add(node.name)
    return {n for n in loaded - bound if not hasattr(builtins, n)}


def _forward_source(gm: fx.GraphModule) -> tuple[str, list[str]]:
    """The traced ``forward`` (indented as a method) and the module-level aliases it needs."""
    src = gm.graph.python_code(root_module="self").src.strip("\n").replace("_torch_Tensor_", "torch.Tensor")
    free = _free_names(src)
    unknown = sorted(free - set(_ALLOWED_GLOBALS))
    if unknown:
        raise ExportError(f"model.py: the traced forward refers to {unknown}, which plain torch code cannot "
                          "provide; export the other formats with --format json,weights,torchscript,onnx")
    aliases = [alias for n in sorted(free) if (alias := _ALLOWED_GLOBALS[n])]
    return "\n".join("    " + line if line.strip() else "" for line in src.splitlines()), aliases


_HELPER_BASE = '''
def _owner(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    """The module that holds the last part of the dotted ``path`` under ``root`` (empty parents are created)."""
    *parents, name = path.split(".")
    for part in parents:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    return root, name


def _put(root: nn.Module, path: str, module: nn.Module) -> None:
    owner, name = _owner(root, path)
    owner.add_module(name, module)


def _param(root: nn.Module, path: str, shape: list[int], dtype: str) -> None:
    owner, name = _owner(root, path)
    owner.register_parameter(name, nn.Parameter(torch.zeros(shape, dtype=getattr(torch, dtype))))


def _buffer(root: nn.Module, path: str, shape: list[int], dtype: str) -> None:
    owner, name = _owner(root, path)
    owner.register_buffer(name, torch.zeros(shape, dtype=getattr(torch, dtype)))
'''

def _standalone_definition(name: str, value: object) -> str:
    """The generated file's definition of a module-level ``name`` of :mod:`nas.graph.standalone` that the
    embedded classes read: a plain constant as a literal, a framework error as a subclass of its built-in base."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return f"{name} = {value!r}"
    if isinstance(value, type) and issubclass(value, Exception):
        base = next(b for b in value.__mro__[1:] if b.__module__ == "builtins")
        doc = (value.__doc__ or name).replace('"', "'")
        return f'class {name}({base.__name__}):\n    """{doc}"""'
    raise TypeError(f"nas.graph.standalone: the standalone classes read {name!r} ({type(value).__name__}), which "
                    "a generated model.py cannot define; use torch, nn, built-ins or a plain constant")


@functools.cache
def _helper_classes() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Class name -> (its source, as in :mod:`nas.graph.standalone`; the module-level definitions it reads)."""
    out = {}
    for cls in STANDALONE_CLASSES:
        source = inspect.getsource(cls)
        needs = sorted(_free_names(source) - {"torch", "nn"})
        out[cls.__name__] = (source, tuple(_standalone_definition(n, getattr(standalone, n)) for n in needs))
    return out


def _file(header: str, input_shape: Sequence[int], num_classes: int, tree: list[str], forward: str,
          aliases: list[str]) -> str:
    init = "\n".join("        " + line for line in tree)
    alias_block = ("\n".join(aliases) + "\n") if aliases else ""
    used = [entry for name, entry in _helper_classes().items() if any(f", {name}(" in line for line in tree)]
    definitions = list(dict.fromkeys(definition for _, needs in used for definition in needs))
    helpers = "\n\n\n".join([_HELPER_BASE.strip("\n"), *definitions, *(src.strip("\n") for src, _ in used)])
    return f'''"""{header}

Standalone: needs only torch. ``load("weights.pt")`` returns the model with its weights, in eval mode.
Input: a float32 tensor of shape (N, {", ".join(str(s) for s in input_shape)}); output: (N, {num_classes}) logits.
Run this file (``python model.py weights.pt``) to check that the weights load and a batch runs.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

INPUT_SHAPE = {tuple(input_shape)!r}
NUM_CLASSES = {num_classes}
{alias_block}

{helpers}


class Model(nn.Module):
    """The exported network: the module tree under the original names, and the traced forward pass."""

    def __init__(self) -> None:
        super().__init__()
{init}

{forward}


def load(weights_path: str, map_location: str = "cpu") -> Model:
    """A :class:`Model` with the state_dict at ``weights_path`` loaded strictly, in eval mode."""
    model = Model()
    state = torch.load(weights_path, map_location=map_location, weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


if __name__ == "__main__":
    net = load(sys.argv[1] if len(sys.argv) > 1 else "weights.pt")
    with torch.no_grad():
        logits = net(torch.randn(2, *INPUT_SHAPE))
    if tuple(logits.shape) != (2, NUM_CLASSES) or not torch.isfinite(logits).all():
        raise SystemExit(f"self-check failed: logits of shape {{tuple(logits.shape)}}")
    print(f"ok: input (2, {{', '.join(map(str, INPUT_SHAPE))}}) -> logits {{tuple(logits.shape)}}")
'''


def generate_python(model: nn.Module, *, input_shape: Sequence[int], num_classes: int,
                    header: str = "An exported nasgraph model.") -> str:
    """Source of a standalone file defining ``model`` with torch imports only (see the module docstring).

    ``model`` is a compiled network (or any module made of supported leaves); its ``state_dict`` loads into
    the generated ``Model`` with ``strict=True``. Raises ``ExportError`` for what cannot be written out.
    """
    gm = trace_leaves(model)
    forward, aliases = _forward_source(gm)
    source = _file(header.replace('"""', "'''"), input_shape, num_classes, _tree_lines(model), forward, aliases)
    compile(source, "model.py", "exec")  # a syntax error here is a bug of this generator, caught before writing
    return source
