"""How a trial uses its device: mixed precision, memory format, and where a task's tensors live.

* **Precision** (``train.precision``): ``fp32`` (default), ``bf16`` (``torch.autocast`` with bfloat16, on CUDA
  and on the CPU) or ``fp16`` (autocast with float16 plus a :class:`torch.amp.GradScaler`, CUDA only: float16
  autocast on the CPU is slower than fp32 on most CPUs and its gradients need the same loss scaling, so a trial
  that would run fp16 on the CPU is refused with a :class:`ConfigError` saying to use ``bf16`` there).
* **Memory format** (``train.memory_format``): ``contiguous`` or ``channels_last`` (NHWC) for the model and the
  4-d image batches; this is how tensors are laid out in memory, unrelated to the *task* option ``channels_last``
  that says how an ``.npz`` file's arrays are ordered.
* **Data placement** (:func:`place_task`): a task whose splits together take at most ``train.resident_data_mb``
  is copied to the device once and batches are indexed there (*resident*); a larger one stays in host memory and
  each batch is gathered there and copied over, through pinned memory with ``non_blocking=True`` when the device is
  CUDA (*streamed*, what ``DataLoader(pin_memory=True)`` does). :class:`DeviceDataCache`, held by an evaluator on
  its worker, keeps the resident copies between trials, so a worker moves a small task to its GPU once.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError

__all__ = ["PRECISIONS", "MEMORY_FORMATS", "check_precision", "autocast", "grad_scaler", "apply_memory_format",
           "to_device", "same_device", "TaskTensors", "place_task", "task_nbytes", "resident_on", "DeviceDataCache",
           "peak_memory_mb"]

PRECISIONS = ("fp32", "bf16", "fp16")
MEMORY_FORMATS = ("contiguous", "channels_last")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device, where: str = "train.precision") -> None:
    """Refuse ``fp16`` on a device that is not CUDA (see the module docstring)."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"{where} = 'fp16' needs a CUDA device (float16 autocast with a gradient scaler) but "
                          f"this trial runs on {device.type}; use 'bf16' for mixed precision on the CPU, or 'fp32'")


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """The autocast context of ``precision`` on ``device`` (a no-op for ``fp32``); forward passes and losses
    run inside it, backward passes and optimiser steps outside."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A loss scaler for ``fp16`` (None otherwise: bf16 has fp32's exponent range and needs none)."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def apply_memory_format(model: nn.Module, memory_format: str) -> nn.Module:
    """``model`` with its 4-d parameters and buffers in ``memory_format`` (in place; returned for chaining)."""
    if memory_format == "channels_last":
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # the stubs lack this keyword
    return model


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` are the same device, a device without an index (``cuda``, the current one) matching
    any index of its type (tensors report ``cuda:0`` where ``cuda`` was asked for)."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def to_device(x: torch.Tensor, device: torch.device, *, channels_last: bool = False) -> torch.Tensor:
    """``x`` on ``device``: a host tensor bound for CUDA goes through pinned memory without blocking (the copy
    overlaps the work queued before it); a 4-d tensor is laid out channels-last when asked."""
    if not same_device(x.device, device):
        if device.type == "cuda" and x.device.type == "cpu":
            x = x.pin_memory().to(device, non_blocking=True)
        else:
            x = x.to(device)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@dataclass(frozen=True)
class TaskTensors:
    """A task's splits as tensors: on ``device`` when ``resident``, in host memory otherwise (batches are then
    moved one by one with :meth:`batch`)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    device: torch.device
    resident: bool
    nbytes: int

    def batch(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | slice, *, channels_last: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``idx`` of ``(x, y)`` (two of this object's tensors) on the device. ``idx`` is a slice or an
        index tensor on the device (resident) or on the CPU (streamed)."""
        return to_device(x[idx], self.device, channels_last=channels_last), to_device(y[idx], self.device)

    def index_device(self) -> torch.device:
        """Where index tensors for :meth:`batch` must live."""
        return self.device if self.resident else torch.device("cpu")


def _splits(task: object) -> list[np.ndarray]:
    return [getattr(task, f"{x}_{s}") for s in ("train", "val", "test") for x in ("x", "y")]


def task_nbytes(task: object) -> int:
    """Bytes of all of a task's splits (inputs and labels)."""
    return sum(int(np.asarray(a).nbytes) for a in _splits(task))


def resident_on(device: torch.device, nbytes: int, resident_limit_mb: float) -> bool:
    """Whether ``nbytes`` of task data are kept on ``device`` (else streamed): always on the CPU, where host memory
    *is* the device's; elsewhere when they take at most ``resident_limit_mb`` MiB."""
    return device.type == "cpu" or nbytes <= resident_limit_mb * 2**20


def place_task(task: object, device: torch.device, resident_limit_mb: float) -> TaskTensors:
    """``task``'s splits as :class:`TaskTensors`: resident on ``device`` when :func:`resident_on` says so, else left
    in host memory for streamed batches. Host tensors share the task's arrays (no copy)."""
    nbytes = task_nbytes(task)
    resident = resident_on(device, nbytes, resident_limit_mb)
    where = device if resident else torch.device("cpu")
    x_tr, y_tr, x_val, y_val, x_te, y_te = (torch.as_tensor(a, device=where) for a in _splits(task))
    return TaskTensors(x_train=x_tr, y_train=y_tr, x_val=x_val, y_val=y_val, x_test=x_te, y_test=y_te, device=device,
                       resident=resident, nbytes=nbytes)


class DeviceDataCache:
    """The resident :class:`TaskTensors` of the last ``max_entries`` (task, device) pairs, least recently used
    evicted first. Keyed by the task object's identity (the cache holds the task, so its id cannot be reused
    while cached): an evaluator keeps one task object for its life on a worker, so each worker copies a small
    task to its device once, not once per trial. Streamed placements are not cached (they copy nothing)."""

    def __init__(self, max_entries: int = 2) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries = {max_entries}: must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str], tuple[object, TaskTensors]] = OrderedDict()
        self.placements = 0  # how many times data was placed (copied, for a CUDA device), for tests and metrics

    def get(self, task: object, device: torch.device, resident_limit_mb: float) -> TaskTensors:
        key = (id(task), str(device))
        hit = self._entries.get(key)
        if hit is not None and hit[0] is task and resident_on(device, hit[1].nbytes, resident_limit_mb):
            self._entries.move_to_end(key)
            return hit[1]
        self._entries.pop(key, None)
        tensors = place_task(task, device, resident_limit_mb)
        self.placements += 1
        if tensors.resident:
            self._entries[key] = (task, tensors)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return tensors

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak CUDA memory allocated on ``device`` since the last reset, in MiB (None off CUDA)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20
