"""Cost measurements of a compiled model: parameters, FLOPs (torch's own counter), CPU latency."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "count_flops", "cpu_latency_ms"]


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass at batch 1, counted by ``torch.utils.flop_counter`` (a multiply-add is 2)."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was)
    return int(counter.get_total_flops())


def cpu_latency_ms(model: nn.Module, input_shape: Sequence[int], runs: int = 10, warmup: int = 2) -> float:
    """Median wall time (ms) of a batch-1 forward pass on the CPU, in eval mode, on a copy of the model."""
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    x = torch.randn(1, *input_shape)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            cpu_model(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
