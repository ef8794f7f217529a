"""Reference architectures of the classic families, in the same graph format, compiled by the same compiler.

Use them as baselines in experiments: ``build_model(references.get("resnet20"), (3, 32, 32), 10)``.

========== ======== ==============================================================================
name       input    what it is
========== ======== ==============================================================================
lenet5     image    LeNet-5 style: 5x5 conv (6) -> pool -> 5x5 conv (16) -> pool -> FC 120 -> FC 84
vgg        image    VGG style: three stages of two 3x3 conv-BN-ReLU (32, 64, 128) with max-pool reductions
resnet20   image    ResNet-20 style (pre-activation): 3 stages x 3 residual blocks, 16/32/64 channels
lstm       sequence two-layer LSTM, classifier on the last step
gru        sequence two-layer GRU, classifier on the last step
bilstm     sequence bidirectional LSTM, mean-pooled
transformer sequence two pre-norm Transformer encoder layers (4 heads) with sinusoidal positions
========== ======== ==============================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from nas.core.registry import Registry
from nas.graph.architecture import Architecture, Cell

__all__ = ["get", "list_references", "input_kind"]

_SPACE = "reference"


def _chain(family: str, ops: list[str], reduction: bool = False) -> Cell:
    return Cell(family=family, inputs=1, nodes=len(ops) + 1, edges=tuple((i, i + 1, op) for i, op in enumerate(ops)),
                output=(len(ops),), reduction=reduction)


def _lenet5() -> Architecture:
    cells = {"conv": _chain("conv", ["conv_5x5"]), "pool": _chain("conv", ["max_pool_3x3"], reduction=True)}
    macro = {"skeleton": "cells", "stem_channels": 0, "layers": [["conv", 6], ["pool", 6], ["conv", 16], ["pool", 16]],
             "head_pool": "flatten", "head_hidden": [120, 84]}
    return Architecture(space=_SPACE, cells=cells, macro=macro)


def _vgg() -> Architecture:
    cells = {"block": _chain("conv", ["conv_3x3", "conv_3x3"]),
             "pool": _chain("conv", ["max_pool_3x3"], reduction=True)}
    layers = [["block", 32], ["pool", 32], ["block", 64], ["pool", 64], ["block", 128]]
    macro = {"skeleton": "cells", "stem_channels": 0, "layers": layers, "head_pool": "avg", "head_hidden": [256]}
    return Architecture(space=_SPACE, cells=cells, macro=macro)


def _resnet20() -> Architecture:
    block = Cell(family="conv", inputs=1, nodes=3,
                 edges=((0, 1, "nor_conv_3x3"), (1, 2, "nor_conv_3x3"), (0, 2, "skip_connect")), output=(2,))
    layers: list[list[object]] = []
    for stage, width in enumerate((16, 32, 64)):
        layers += [["resblock", width]] if stage else []
        layers += [["block", width]] * (3 if stage == 0 else 2)
    macro = {"skeleton": "cells", "stem_channels": 16, "stem_kernel": 3, "layers": layers, "head_preact": True,
             "head_pool": "avg", "head_hidden": []}
    return Architecture(space=_SPACE, cells={"block": block}, macro=macro)


def _recurrent(op: str, layers: int, pool: str) -> Callable[[], Architecture]:
    def build() -> Architecture:
        macro = {"skeleton": "sequence", "d_model": 64, "pos_encoding": "none", "stack": ["body"], "pool": pool}
        return Architecture(space=_SPACE, cells={"body": _chain("sequence", [op] * layers)}, macro=macro)

    return build


def _transformer() -> Architecture:
    # x1 = attn(x); x2 = x + x1; x3 = ffn(x2); x4 = x2 + x3  (pre-norm residual encoder layer)
    encoder = Cell(family="sequence", inputs=1, nodes=5, output=(4,), edges=(
        (0, 1, "mhsa_4"), (0, 2, "skip_connect"), (1, 2, "skip_connect"),
        (2, 3, "ffn"), (2, 4, "skip_connect"), (3, 4, "skip_connect"),
    ))
    macro = {"skeleton": "sequence", "d_model": 64, "pos_encoding": "pe_sinusoidal", "stack": ["encoder", "encoder"],
             "pool": "mean"}
    return Architecture(space=_SPACE, cells={"encoder": encoder}, macro=macro)


_REFERENCES: Registry[tuple[Callable[[], Architecture], str]] = Registry("reference architecture")
_REFERENCES.register("lenet5", (_lenet5, "image"))
_REFERENCES.register("vgg", (_vgg, "image"))
_REFERENCES.register("resnet20", (_resnet20, "image"))
_REFERENCES.register("lstm", (_recurrent("lstm", 2, "last"), "sequence"))
_REFERENCES.register("gru", (_recurrent("gru", 2, "last"), "sequence"))
_REFERENCES.register("bilstm", (_recurrent("bilstm", 1, "mean"), "sequence"))
_REFERENCES.register("transformer", (_transformer, "sequence"))


def list_references() -> list[str]:
    return _REFERENCES.names()


def get(name: str) -> Architecture:
    """The reference architecture ``name`` (see the module docstring for the list)."""
    return _REFERENCES.get(name)[0]()


def input_kind(name: str) -> str:
    """``"image"`` or ``"sequence"``: the input the reference is built for."""
    return _REFERENCES.get(name)[1]
