"""Modules of compiled networks that the standalone export (``model.py``) writes out verbatim.

:mod:`nas.outputs.export_python` embeds the source of these classes (``inspect.getsource``) in every generated
file that uses them, so the file and the framework share one definition. Hence the contract of this module:

* it imports only the standard library, ``torch`` and the framework's error classes (:mod:`nas.core.errors`,
  standard library only); the generated file re-declares each error it needs as a plain subclass of the
  error's built-in base (``ShapeError`` -> ``class ShapeError(ValueError)``);
* the classes refer to nothing else at module level but ``torch``, ``nn``, built-ins and the plain constants
  defined here (written into the generated file as literals);
* annotations use built-in types, ``torch`` and ``nn`` only (the generated file imports nothing else);
* constructors take plain data (numbers, strings, lists, modules), which the generator writes as literals.

The framework reaches these classes through their usual homes: :class:`InputCheck` from
:mod:`nas.graph.compiler`, :class:`DartsRNNLayer` from :mod:`nas.graph.cells` (built from a cell by
:func:`nas.graph.cells.darts_rnn_layer`), :class:`SinusoidalPositionalEncoding` from
:mod:`nas.graph.ops.attention`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas.core.errors import ShapeError

__all__ = ["InputCheck", "DartsRNNLayer", "SinusoidalPositionalEncoding", "STANDALONE_CLASSES"]

#: ``log(10000)``, the wavelength base of the sinusoidal positional encoding
LOG_10000 = math.log(10000.0)


class InputCheck(nn.Module):
    """Rejects inputs whose rank or channel/feature count differs from the shape the model was built for."""

    def __init__(self, shape: tuple[int, ...] | list[int], layout: str) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.layout = layout
        self.rank = len(shape) + 1
        # images (C, H, W) and vectors (F,) (a generator's latent input): the size of dim 1; sequences (T, C): dim 2
        self.channel_dim = 1 if len(shape) in (1, 3) else 2
        self.channels = shape[0] if len(shape) in (1, 3) else shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.rank or x.shape[self.channel_dim] != self.channels:
            raise ShapeError(
                f"model expects input {self.layout} built for input_shape {self.shape}, "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        return x


class DartsRNNLayer(nn.Module):
    """The DARTS recurrent cell unrolled over time: ``(N, T, d_in) -> (N, T, hidden)``.

    Node 0 is ``s0 = h + sigmoid(c0) * (tanh(h0) - h)`` with ``[c0, h0] = w0 [x_t, h]``; node ``i`` with
    predecessor ``j`` and activation ``f`` is ``s_j + sigmoid(c) * (f(h') - s_j)``, ``[c, h'] = W_i s_j``;
    the new hidden state combines the ``output_nodes`` (``combine``: ``mean`` as in DARTS, or ``sum``).
    ``plan`` lists ``(node, predecessor)`` in evaluation order, ``activations`` the node activations in the
    same order; ``n_nodes`` counts node 0.
    """

    def __init__(self, d_in: int, hidden: int, *, plan: list[tuple[int, int]] | list[list[int]],
                 activations: list[nn.Module], n_nodes: int, output_nodes: list[int], combine: str) -> None:
        super().__init__()
        self.hidden = hidden
        self.w0 = nn.Linear(d_in + hidden, 2 * hidden, bias=False)
        self.weights = nn.ModuleList([nn.Linear(hidden, 2 * hidden, bias=False) for _ in plan])
        self.acts = nn.ModuleList(activations)
        self.plan = [(int(node), int(src)) for node, src in plan]
        self.n_nodes = n_nodes
        self.output_nodes = list(output_nodes)
        self.combine = combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        h = x.new_zeros(n, self.hidden)
        outputs = []
        for step in range(t):
            c0, h0 = self.w0(torch.cat([x[:, step], h], dim=-1)).chunk(2, dim=-1)
            states = [h] * self.n_nodes  # every node is written before it is read (plan is topological)
            states[0] = h + torch.sigmoid(c0) * (torch.tanh(h0) - h)
            for k, (node, src) in enumerate(self.plan):
                prev = states[src]
                c, hh = self.weights[k](prev).chunk(2, dim=-1)
                states[node] = prev + torch.sigmoid(c) * (self.acts[k](hh) - prev)
            outs = torch.stack([states[i] for i in self.output_nodes], dim=0)
            h = outs.mean(dim=0) if self.combine == "mean" else outs.sum(dim=0)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sine/cosine encoding of Vaswani et al. (2017) for positions < ``max_len``."""

    pe: torch.Tensor  # a buffer

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-LOG_10000 / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[1]]


#: the classes above, in the order the generated file defines them
STANDALONE_CLASSES: tuple[type[nn.Module], ...] = (InputCheck, DartsRNNLayer, SinusoidalPositionalEncoding)
