"""Every op family exports: a sampled architecture of each space (conv: ``nb201``, ``darts``; recurrent: ``rnn``
with the DARTS-RNN cell, LSTM and GRU layers; attention: ``transformer`` with self-attention and positional
encodings) goes through ONNX (run in onnxruntime), TorchScript and the standalone Python file, each compared with
the PyTorch model. Samples are drawn by seed until the architecture holds the ops the family needs."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from nas.graph.architecture import Architecture
from nas.graph.standalone import STANDALONE_CLASSES, DartsRNNLayer, InputCheck, SinusoidalPositionalEncoding
from nas.outputs.export import export_model
from nas.outputs.export_python import generate_python
from search_spaces import get_space

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def _ops(arch: Architecture) -> set[str]:
    return {op for cell in arch.cells.values() for _, _, op in cell.edges} | {arch.macro.get("pos_encoding", "")}


def _needs(*groups: set[str]) -> Callable[[Architecture], bool]:
    """True when the architecture holds at least one op of every group."""
    return lambda arch: all(_ops(arch) & group for group in groups)


CONV = {"nor_conv_1x1", "nor_conv_3x3"}
CASES = {
    # case: (space, options, input shape, what the sample must contain)
    "nb201": ("nb201", {"C": 4, "N": 1}, (1, 8, 8), _needs(CONV, {"avg_pool_3x3"}, {"skip_connect"})),
    "darts": ("darts", {"C": 4, "layers": 3}, (1, 8, 8),
              _needs({"sep_conv_3x3", "sep_conv_5x5"}, {"dil_conv_3x3", "dil_conv_5x5"}, {"max_pool_3x3"})),
    "rnn": ("rnn", {"d_model": 8, "steps": 2, "num_layers": 3}, (6, 2),
            _needs({"cell:rnn"}, {"lstm", "bilstm"}, {"gru", "bigru"})),
    "transformer": ("transformer", {"d_model": 8, "num_cells": 1}, (6, 2),
                    _needs({"mhsa_2", "mhsa_4"}, {"pe_learned"}, {"lstm", "gru"}, {"ffn"})),
    "transformer-sinusoidal": ("transformer", {"d_model": 8, "num_cells": 1}, (6, 2),
                               _needs({"mhsa_2", "mhsa_4"}, {"pe_sinusoidal"}, {"conv1d_3"})),
}


def _sample(name: str) -> tuple[torch.nn.Module, Architecture, tuple[int, ...]]:
    space_name, options, shape, wanted = CASES[name]
    space = get_space(space_name, **options)
    arch = next(a for a in (space.sample(np.random.default_rng(s)) for s in range(500)) if wanted(a))
    torch.manual_seed(0)
    model = space.build_model(arch, shape, 5)
    model.train()  # a few steps of training so that batch-norm statistics and weights are not at their init
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        loss = model(torch.randn(16, *shape, generator=generator)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), arch, shape


@pytest.mark.parametrize("name", list(CASES))
def test_every_space_exports_to_onnx_torchscript_and_plain_python(name: str, tmp_path: Path) -> None:
    model, arch, shape = _sample(name)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    files = export_model(model, arch, tmp_path / name, info={"input_shape": list(shape), "num_classes": 5},
                         formats=("onnx", "torchscript", "python"), example=example)
    onnx_file = files["onnx"]
    assert onnx_file["opset"] >= 17
    # the TorchScript-based exporter is only a per-model fallback, used with the reason recorded
    assert onnx_file["exporter"] == "dynamo" or onnx_file["fallback_reason"]
    x = torch.randn(7, *shape, generator=torch.Generator().manual_seed(2))  # another batch size than the example
    with torch.no_grad():
        reference = model(x).numpy()

    session = ort.InferenceSession(str(tmp_path / name / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(onnx_out - reference).max() <= 1e-4

    scripted = torch.jit.load(str(tmp_path / name / "model.torchscript.pt"))
    with torch.no_grad():
        assert np.abs(scripted(x).numpy() - reference).max() <= 1e-4

    spec = importlib.util.spec_from_file_location(f"standalone_{name.replace('-', '_')}", tmp_path / name / "model.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # never None for a .py path
    spec.loader.exec_module(module)  # type: ignore[union-attr]  # a .py spec always has a loader
    standalone = module.Model()
    standalone.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert np.abs(standalone.eval()(x).numpy() - reference).max() <= 1e-4
    wrong = list(shape)
    wrong[0 if len(shape) == 3 else 1] += 1  # one channel (image) or feature (sequence) too many
    with pytest.raises(ValueError, match="built for input_shape"):  # the file keeps the input check
        standalone(torch.randn(2, *wrong))


def test_standalone_source_imports_only_torch() -> None:
    model, _, shape = _sample("transformer")
    source = generate_python(model, input_shape=shape, num_classes=5)
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import sys", "import torch", "from torch import nn"]
    assert "nas" not in {w.strip("(.,") for line in imports for w in line.split()}


@pytest.mark.parametrize(("name", "embedded"), [
    ("rnn", (InputCheck, DartsRNNLayer)),
    ("transformer-sinusoidal", (InputCheck, SinusoidalPositionalEncoding)),
    ("nb201", (InputCheck,)),
])
def test_standalone_file_embeds_the_framework_classes_it_uses(name: str, embedded: tuple[type, ...]) -> None:
    """The helper classes are the framework's own source, not a copy that could drift from it."""
    model, _, shape = _sample(name)
    source = generate_python(model, input_shape=shape, num_classes=5)
    for cls in STANDALONE_CLASSES:
        assert (inspect.getsource(cls).strip("\n") in source) == (cls in embedded), cls.__name__
    assert "class ShapeError(ValueError):" in source  # the input check's error, without the framework
    assert ("LOG_10000 = " in source) == (SinusoidalPositionalEncoding in embedded)


def test_torchscript_based_onnx_exporter_as_fallback(tmp_path: Path) -> None:
    """The per-model fallback path (``dynamo=False``) gives a model onnxruntime runs and that matches."""
    from nas.outputs.export import _export_onnx_once, _onnx_difference

    model, _, shape = _sample("nb201")
    example = torch.randn(2, *shape)
    _export_onnx_once(model, example, tmp_path / "fallback.onnx", "torchscript")
    assert _onnx_difference(model, tmp_path / "fallback.onnx", example) <= 1e-4
