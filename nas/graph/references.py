"""Reference architectures: the classic families, each an :class:`Architecture` compiled by the common compiler.

Use them as baselines beside a search (``baselines: [resnet18, lenet5]`` in a config), train one alone
(``nas train resnet18 --task digits``) or build one: ``build_model(references.get("resnet18"), (3, 32, 32), 10)``.

One name, one model. Two kinds of entry share the name space:

* **zoo** entries are the published models in plain PyTorch (:mod:`nas.graph.zoo`), as builder architectures
  with no decisions (macro ``{"builder": "nas.graph.zoo.<module>:<name>", "decisions": {}}``), the form of the
  ``python`` space. At their original input size their parameter counts equal the published ones; smaller images
  get the small-input variant (3x3 stem, no stem max-pool, see :mod:`nas.graph.zoo`).
* **cells** entries are encoded in our cell-graph format, so a cell space's mutations and the one-shot
  machinery apply to them; they are "in the style of" a family, built from our op table (conv-BN-ReLU ops).

The graph-encoded LeNet-style net is ``lenet5_bn`` (BN convs, 3x3 max-pool), so that ``lenet5`` is the classic;
the graph-encoded two-layer GRU of earlier versions is the zoo's ``gru`` (same layers, plain PyTorch).

Image-to-image networks are not classifiers, so they are built by functions outside the name space:
:func:`cyclegan_generator` (the CycleGAN ResNet generator in the ``translator`` skeleton, with its parameter count
:func:`cyclegan_generator_params`).

=========== ======== ===== ====================================================================================
name        input    kind  what it is
=========== ======== ===== ====================================================================================
lenet5      image    zoo   classic LeNet-5: 5x5 conv 6, avg-pool, 5x5 conv 16, avg-pool, 120-84-classes, tanh
alexnet     image    zoo   AlexNet, torchvision's single-tower form (61,100,840 parameters at 3x224x224)
vgg11       image    zoo   VGG-11, configuration A without BN (132,863,336 parameters at 3x224x224)
vgg16       image    zoo   VGG-16, configuration D without BN (138,357,544 parameters at 3x224x224)
resnet18    image    zoo   ResNet-18 (11,689,512 parameters at 3x224x224)
resnet34    image    zoo   ResNet-34 (21,797,672 parameters at 3x224x224)
resnet50    image    zoo   ResNet-50, bottleneck v1.5 (25,557,032 parameters at 3x224x224)
lenet5_bn   image    cells LeNet-5 layout in our ops: 5x5 conv-BN (6) -> pool -> 5x5 conv-BN (16) -> pool -> 120 -> 84
vgg         image    cells VGG style: three stages of two 3x3 conv-BN-ReLU (32, 64, 128) with max-pool reductions
resnet20    image    cells ResNet-20 style (pre-activation): 3 stages x 3 residual blocks, 16/32/64 channels
gru         sequence zoo   two-layer GRU (128 units), classifier on the final state
bigru       sequence zoo   two-layer bidirectional GRU (128 units per direction), classifier on the final states
lstm        sequence cells two-layer LSTM, classifier on the last step
bilstm      sequence cells bidirectional LSTM, mean-pooled
transformer sequence cells two pre-norm Transformer encoder layers (4 heads) with sinusoidal positions
=========== ======== ===== ====================================================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from nas.core.registry import Registry
from nas.graph.architecture import BUILDER_KEY, DECISIONS_KEY, Architecture, Cell

__all__ = ["get", "list_references", "input_kind", "reference_kind", "ZOO_MODULE", "cyclegan_generator",
           "cyclegan_generator_params"]

_SPACE = "reference"
ZOO_MODULE = "nas.graph.zoo"


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


def _zoo(module: str, function: str) -> Callable[[], Architecture]:
    ref = f"{ZOO_MODULE}.{module}:{function}"

    def build() -> Architecture:
        return Architecture(space=_SPACE, cells={}, macro={BUILDER_KEY: ref, DECISIONS_KEY: {}})

    return build


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


_REFERENCES: Registry[tuple[Callable[[], Architecture], str, str]] = Registry("reference architecture")
for _name, _module in (("lenet5", "lenet"), ("alexnet", "alexnet"), ("vgg11", "vgg"), ("vgg16", "vgg"),
                       ("resnet18", "resnet"), ("resnet34", "resnet"), ("resnet50", "resnet")):
    _REFERENCES.register(_name, (_zoo(_module, _name), "image", "zoo"))
_REFERENCES.register("lenet5_bn", (_lenet5, "image", "cells"))
_REFERENCES.register("vgg", (_vgg, "image", "cells"))
_REFERENCES.register("resnet20", (_resnet20, "image", "cells"))
_REFERENCES.register("gru", (_zoo("recurrent", "gru"), "sequence", "zoo"))
_REFERENCES.register("bigru", (_zoo("recurrent", "bigru"), "sequence", "zoo"))
_REFERENCES.register("lstm", (_recurrent("lstm", 2, "last"), "sequence", "cells"))
_REFERENCES.register("bilstm", (_recurrent("bilstm", 1, "mean"), "sequence", "cells"))
_REFERENCES.register("transformer", (_transformer, "sequence", "cells"))


def list_references() -> list[str]:
    """Every reference name, images first (zoo, then cells), then sequences."""
    return _REFERENCES.names()


def get(name: str) -> Architecture:
    """The reference architecture ``name`` (see the module docstring for the list)."""
    return _REFERENCES.get(name)[0]()


def input_kind(name: str) -> str:
    """``"image"`` or ``"sequence"``: the input the reference is built for."""
    return _REFERENCES.get(name)[1]


def reference_kind(name: str) -> str:
    """``"zoo"`` (a published model in plain PyTorch, a builder architecture) or ``"cells"`` (our cell-graph
    format)."""
    return _REFERENCES.get(name)[2]


def cyclegan_generator(*, channels: int = 16, res_blocks: int = 3, downsamplings: int = 2) -> Architecture:
    """The CycleGAN ResNet generator (Zhu et al., ICCV 2017, appendix 7.2) as a ``translator`` architecture:
    ``c7s1-k, d-2k, d-4k, R-4k x res_blocks, u-2k, u-k, c7s1-C`` for ``k = channels`` and two downsamplings (the
    paper's 128x128 model is ``k = 64`` with 6 blocks; the defaults, ``k = 16`` with 3 blocks, are scaled down for
    28x28 images, which two stride-2 convs take to 7x7). Every conv is followed by instance norm and ReLU, except
    the second conv of a residual block (no ReLU, then ``+ x``) and the tanh head. Compile it with
    ``build_model(arch, (C, H, W), 1)``: ``(N, C, H, W)`` -> ``(N, C, H, W)`` in ``[-1, 1]``; ``H`` and ``W``
    must be divisible by ``2^downsamplings``. Parameters: :func:`cyclegan_generator_params`."""
    for key, value, low in (("channels", channels, 1), ("res_blocks", res_blocks, 0),
                            ("downsamplings", downsamplings, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"cyclegan_generator {key} = {value!r}: expected an integer >= {low}")
    res = Cell(family="gen", inputs=1, nodes=3, output=(2,),
               edges=((0, 1, "conv_3x3_in"), (1, 2, "conv_3x3_in_linear"), (0, 2, "skip_connect")))
    cells = {"c7s1": _chain("gen", ["c7s1_in"]), "down": _chain("gen", ["down_conv_3x3_in"]), "res": res,
             "up": _chain("gen", ["up_deconv_3x3_in"])}
    widths = [channels * 2 ** i for i in range(downsamplings + 1)]
    layers: list[list[object]] = [["c7s1", channels]]
    layers += [["down", w] for w in widths[1:]]
    layers += [["res", widths[-1]]] * res_blocks
    layers += [["up", w] for w in reversed(widths[:-1])]
    if not res_blocks:
        cells.pop("res")
    if not downsamplings:
        cells.pop("down")
        cells.pop("up")
    macro = {"skeleton": "translator", "layers": layers, "head_kernel": 7}
    return Architecture(space=_SPACE, cells=cells, macro=macro)


def cyclegan_generator_params(*, image_channels: int = 1, channels: int = 16, res_blocks: int = 3,
                              downsamplings: int = 2) -> int:
    """The parameter count of :func:`cyclegan_generator` (instance norm has none; every conv has a bias):
    ``c7s1``: ``49 c k + k``; each ``d``/``u`` between widths ``a`` and ``b``: ``9 a b + b``; each residual
    block at width ``w``: ``2 (9 w^2 + w)``; head: ``49 k c + c`` for ``c = image_channels``."""
    k, c = channels, image_channels
    widths = [k * 2 ** i for i in range(downsamplings + 1)]
    resampling = 2 * sum(9 * a * b + b for a, b in itertools.pairwise(widths))
    resampling -= sum(b - a for a, b in itertools.pairwise(widths))  # the up convs' biases are the smaller widths
    return (49 * c * k + k) + resampling + res_blocks * 2 * (9 * widths[-1] ** 2 + widths[-1]) + (49 * k * c + c)
