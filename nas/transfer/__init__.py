"""Transfer of trained weights into a freshly compiled network: the tensors whose names and shapes match are copied
(:mod:`nas.transfer.weights`), then a mode decides what stays frozen and what learns (:mod:`nas.transfer.freeze`).

Used by ``nas finetune`` (:mod:`nas.outputs.finetune`) and by the train evaluator's ``init_from``. Knows nothing of
tasks, training or experiments: it works on a ``torch.nn.Module`` and a ``state_dict``.
"""

from nas.transfer.freeze import HEAD, MODES, FreezePlan, TransferSpec, apply_mode, body_units, frozen_names
from nas.transfer.weights import CopyReport, copy_matching, read_weights, resolve_weights

__all__ = ["HEAD", "MODES", "TransferSpec", "FreezePlan", "apply_mode", "body_units", "frozen_names", "CopyReport",
           "copy_matching", "read_weights", "resolve_weights"]
