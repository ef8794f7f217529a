"""Reading trained weights and copying the tensors that fit into another network.

:func:`read_weights` reads a ``state_dict`` from a weights file or an export (``torch.load(weights_only=True)``:
nothing is unpickled), :func:`copy_matching` copies every tensor whose name and shape match into a model and says
what it copied, adapted and left freshly initialised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nas.core.errors import ConfigError

__all__ = ["CopyReport", "copy_matching", "read_weights", "resolve_weights", "sha256_of", "WEIGHTS_FILE"]

#: the weights file of an exported model folder
WEIGHTS_FILE = "weights.pt"
_MANIFEST = "manifest.json"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rank1_folder(export: Path, where: str) -> Path:
    """The rank-1 model folder an export's ``manifest.json`` lists."""
    try:
        models = json.loads((export / _MANIFEST).read_text(encoding="utf-8"))["models"]
        best = min(models, key=lambda m: m["rank"])
        return export / Path(best["files"]["weights"]["path"]).parent
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{where} = {str(export)!r}: its {_MANIFEST} lists no ranked model with weights; export "
                          "again (`nas export EXPERIMENT_DIR`) or give a weights file") from None


def resolve_weights(path: str | Path, where: str = "init_from") -> Path:
    """The weights file ``path`` names: a file itself, the ``weights.pt`` of a model folder, or that of the rank-1
    model of an export folder (one with ``manifest.json``). :class:`ConfigError` naming ``where`` otherwise."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.exists():
        raise ConfigError(f"{where} = {str(path)!r}: no such file or folder; give an export folder (with "
                          f"{_MANIFEST}), a model folder (with {WEIGHTS_FILE}) or a weights file")
    if (p / WEIGHTS_FILE).is_file():
        return p / WEIGHTS_FILE
    if (p / _MANIFEST).is_file():
        weights = _rank1_folder(p, where) / WEIGHTS_FILE
        if weights.is_file():
            return weights
        raise ConfigError(f"{where} = {str(path)!r}: the rank-1 model's {WEIGHTS_FILE} is missing ({weights}); "
                          "export with the weights format")
    raise ConfigError(f"{where} = {str(path)!r}: a folder without {_MANIFEST} or {WEIGHTS_FILE}; give an export "
                      "folder (`nas export` writes one), a model folder in it or a weights file")


def read_weights(path: str | Path, where: str = "init_from") -> tuple[dict[str, torch.Tensor], Path, str]:
    """``(state_dict, weights file, its sha256)`` of ``path`` (see :func:`resolve_weights`), read on the CPU with
    ``torch.load(weights_only=True)``. A file that is not a ``state_dict`` of tensors (corrupt, truncated, a pickle
    of objects, a TorchScript archive) is a :class:`ConfigError` naming ``where``, the file and the fix."""
    file = resolve_weights(path, where)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or objects weights_only refuses
        first = str(err).splitlines()[0].split(". ")[0][:200] if str(err) else type(err).__name__
        raise ConfigError(f"{where} = {str(path)!r}: {file.name} cannot be read with torch.load(weights_only=True) "
                          f"({first}); give a state_dict saved with torch.save(model.state_dict(), path) or an "
                          "export folder") from None
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                           for k, v in state.items()):
        raise ConfigError(f"{where} = {str(path)!r}: {file.name} holds {type(state).__name__}, not a state_dict of "
                          "named tensors; save one with torch.save(model.state_dict(), path)")
    return state, file, sha256_of(file)


@dataclass
class CopyReport:
    """What :func:`copy_matching` did, by the target model's ``state_dict`` names: ``copied`` (name and shape
    matched), ``adapted`` (the input stem's weight, its input channels folded or tiled to the new ones), ``reinit``
    (name -> why it kept its fresh initialisation) and ``unused`` (source tensors that fit nothing)."""

    copied: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    reinit: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> set[str]:
        """The tensors that hold trained values: copied or adapted."""
        return {*self.copied, *self.adapted}

    def summary(self) -> str:
        total = len(self.copied) + len(self.adapted) + len(self.reinit)
        return (f"{len(self.copied)} of {total} tensors copied" + (f", {len(self.adapted)} adapted"
                                                                   if self.adapted else "")
                + f", {len(self.reinit)} re-initialised")


def _adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A conv weight ``(out, c, k, k)`` for ``channels`` input channels: summed over its channels for one (a
    grey image holds what the colour channels held together), else tiled and scaled so that the output keeps its
    scale (as timm's ``adapt_input_conv``)."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-channels // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :channels] * (weight.shape[1] / channels)


def _input_weight(model: nn.Module) -> str | None:
    """The name of the model's first weight when it is a 4-d convolution kernel (the input stem), else None."""
    for name, p in model.named_parameters():
        return name if p.dim() == 4 else None
    return None


def copy_matching(model: nn.Module, state: Mapping[str, torch.Tensor], *, exclude: Sequence[str] = (),
                  reason: str = "excluded") -> CopyReport:
    """Copy into ``model`` (in place) every tensor of ``state`` whose name and shape match one of its
    ``state_dict``; tensors under a prefix in ``exclude`` keep their fresh values (``reinit[name] = reason``).
    The input stem's kernel (the model's first parameter, a 4-d conv weight) that differs in its input channels
    only is adapted (:func:`_adapt_input_channels`). Everything else keeps its initialisation, listed with why."""
    target = model.state_dict()
    report = CopyReport()
    stem = _input_weight(model)
    new: dict[str, torch.Tensor] = {}
    for name, tensor in target.items():
        if any(name == p or name.startswith(p + ".") for p in exclude):
            report.reinit[name] = reason
            continue
        source = state.get(name)
        if source is None:
            report.reinit[name] = "not in the source"
        elif tuple(source.shape) == tuple(tensor.shape):
            new[name] = source.to(dtype=tensor.dtype)
            report.copied.append(name)
        elif (name == stem and source.dim() == 4 and source.shape[0] == tensor.shape[0]
              and source.shape[2:] == tensor.shape[2:]):
            new[name] = _adapt_input_channels(source.float(), tensor.shape[1]).to(dtype=tensor.dtype)
            report.adapted.append(name)
        else:
            report.reinit[name] = f"shape {tuple(source.shape)} in the source, {tuple(tensor.shape)} here"
    if new:
        with torch.no_grad():
            model.load_state_dict(new, strict=False)
    report.unused = [n for n in state if n not in target or n in report.reinit]
    return report
