"""``nas finetune``: carry a trained model to a new task (transfer learning), with its own verified export.

:func:`finetune` takes a SOURCE:

* an export folder (``nas export`` writes one; its rank-1 model, or the one of ``trial``), or a model folder in it;
* an experiment directory with ``trial=N``: trials keep no weights, so trial N is first trained again on its own task
  with its own training config and seed (as ``nas export`` does), and the provenance says so; an experiment without
  ``trial`` uses its ``export/`` when there is one;
* the directory ``nas train`` wrote: its ``export_baselines/`` when exported, else its reference model is trained
  again on its task first.

It compiles the source's architecture for the new task's input and classes, copies every trained tensor whose name
and shape still fit (the input stem's kernel is adapted to a new number of channels; the head is always new: the
classes are the new task's), freezes what the mode says (:mod:`nas.transfer.freeze`: ``features``, ``partial`` with
``freeze`` cells, ``full`` with an optional ``body_lr_scale``) and trains on the new task with the source's training
config (``train`` settings and ``epochs`` override it). The output folder holds ``export/`` (every format, verified in
fresh processes as ``nas export`` verifies, so ``nas export --check`` and :func:`nas.load_model` work on it),
``provenance.json`` (source and its sha256, mode, task, frozen parameters, copied / adapted / re-initialised tensors,
epochs, scores, and whether every frozen tensor came out of training unchanged) and, for a retrained source, the
source's weights (``source/weights.pt``).
"""

from __future__ import annotations

import datetime
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.core.checks import is_int
from nas.core.errors import ConfigError, NASError
from nas.core.io import atomic_write, atomic_write_text
from nas.core.serialize import jsonable
from nas.core.version import __version__
from nas.evaluation.evaluators import TrainingEvaluator
from nas.evaluation.metrics import get_metric
from nas.evaluation.scoring import score_split
from nas.evaluation.tasks import Task, load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.graph.architecture import Architecture
from nas.graph.compiler import build_model
from nas.outputs.export import (
    TOLERANCE,
    PendingModel,
    _export_ready,
    export_info,
    export_model,
    parse_formats,
    retrain_trial,
    verify_in_fresh_processes,
)
from nas.outputs.loading import (
    FILE_NAMES,
    INFO_FILE,
    MANIFEST,
    experiment_trial,
    export_entry,
    model_info,
    verify_files,
)
from nas.outputs.view import ExperimentView
from nas.runtime.config import build
from nas.storage.store import StoredTrial
from nas.transfer import HEAD, TransferSpec, apply_mode, body_units, copy_matching, frozen_names, read_weights
from nas.transfer.weights import sha256_of

__all__ = ["finetune", "FinetuneReport", "PROVENANCE"]

PROVENANCE = "provenance.json"
_MODEL_FOLDER = "finetuned"


@dataclass
class _Source:
    """A trained model to start from: its architecture, how to get its weights, what it was trained on."""

    kind: str
    path: Path
    arch: Architecture
    load: Callable[[], tuple[dict[str, torch.Tensor], str, str]]  # -> (state, sha256, note)
    train_config: dict[str, Any]
    task: str | None
    trial: int | None = None
    scores: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinetuneReport:
    """What :func:`finetune` wrote: the output folder, the provenance (as data), the export's manifest."""

    out: Path
    provenance: dict[str, Any]
    manifest: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        """The export verified and every frozen tensor is unchanged by training."""
        return bool(self.manifest["models"][0]["verification"].get("ok", True)) and \
            self.provenance["frozen_unchanged"]


# -- the source -------------------------------------------------------------------------------------------------
def _from_model_folder(folder: Path, entry: Mapping[str, Any] | None, kind: str) -> _Source:
    arch_file, weights, info_file = folder / FILE_NAMES["json"], folder / FILE_NAMES["weights"], folder / INFO_FILE
    missing = [p.name for p in (arch_file, weights, info_file) if not p.is_file()]
    if missing:
        raise ConfigError(f"SOURCE {str(folder)!r}: a model folder needs {', '.join(missing)}; export with the json "
                          "and weights formats")
    verify_files([arch_file, weights, info_file])  # against the manifest, when there is one: CorruptExportError
    arch = Architecture.from_json(arch_file.read_text(encoding="utf-8"))
    info = model_info(folder)
    entry = entry or {}

    def load() -> tuple[dict[str, torch.Tensor], str, str]:
        state, _, digest = read_weights(weights, "SOURCE")
        return state, digest, f"the exported weights {weights.name} of {folder.name}"

    return _Source(kind, folder, arch, load, dict(entry.get("training", {}).get("train_config", {})),
                   info.get("task"), entry.get("trial_id"),
                   {k: v for k, v in entry.get("metrics", {}).items() if k in ("val_acc", "test_acc")})


def _retrained(view: ExperimentView, stored: StoredTrial, what: str, out: Path) -> _Source:
    """A trial (or baseline) of ``view`` trained again on its own task, its weights kept in ``out/source``."""
    evaluator = build(view.config).evaluator
    if not isinstance(evaluator, TrainingEvaluator):
        raise ConfigError(f"SOURCE {str(view.directory)!r}: evaluator {view.config.evaluator.name!r} trains nothing, "
                          "so its trials have no weights to fine-tune; give an export folder")
    cfg = evaluator.config_for(stored.arch)

    def load() -> tuple[dict[str, torch.Tensor], str, str]:
        trained = retrain_trial(stored, evaluator)
        state = {k: v.detach().clone() for k, v in trained.model.state_dict().items()}
        target = out / "source" / FILE_NAMES["weights"]
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp: torch.save(state, tmp))
        return state, sha256_of(target), (
            f"trials keep no weights: {what} was trained again on its own task {view.config.evaluator.task!r} with "
            f"its training config and seed {stored.seed} ({trained.training['epochs']} epochs, validation "
            f"{trained.training.get('val_acc', float('nan')):.2f} against {stored.score:.2f} in the search) before "
            f"fine-tuning; those weights are source/{FILE_NAMES['weights']}")

    return _Source("trial" if stored.id >= 0 else "baseline", view.directory, stored.arch, load, cfg.to_dict(),
                   view.config.evaluator.task, stored.id if stored.id >= 0 else None,
                   {"val_acc": stored.metrics.get("val_acc", stored.score), "test_acc": stored.metrics.get("test_acc")})


def _source(path: Path, trial: int | None, out: Path) -> _Source:
    """Resolve SOURCE (see the module docstring)."""
    if not path.exists():
        raise ConfigError(f"SOURCE {str(path)!r}: no such file or folder; give an export folder, an experiment "
                          "directory (with --trial N) or the folder `nas train` wrote")
    if path.is_dir() and (path / FILE_NAMES["json"]).is_file():
        if trial is not None:
            raise ConfigError(f"--trial {trial}: SOURCE {str(path)!r} is one exported model; remove --trial")
        return _from_model_folder(path, None, "export")
    if path.is_dir() and (path / MANIFEST).is_file():
        entry = export_entry(path, trial, f", or the experiment directory to train trial {trial} again first")
        return _from_model_folder(path / Path(entry["files"]["json"]["path"]).parent, entry, "export")
    if not (path.is_dir() and (path / "config.yaml").is_file()):
        raise ConfigError(f"SOURCE {str(path)!r} is not an export folder (no {MANIFEST}), a model folder (no "
                          f"{FILE_NAMES['json']}) or an experiment directory (no config.yaml); give one of those")
    view = ExperimentView.open(path)
    if trial is not None:
        stored = experiment_trial(view, trial, path)
        if stored.score is None:
            raise ConfigError(f"--trial {trial}: the trial is {stored.status}, with no trained model to start "
                              "from; choose a completed trial (`nas status DIR`)")
        return _retrained(view, stored, f"trial {trial}", out)
    for folder in ("export", "export_baselines"):
        if (path / folder / MANIFEST).is_file():
            entry = export_entry(path / folder, None)
            return _from_model_folder(path / folder / Path(entry["files"]["json"]["path"]).parent, entry, "export")
    done = [b for b in view.baselines if b.score is not None]
    if not view.trials and done:  # the folder `nas train` wrote
        return _retrained(view, done[0], f"the reference model {done[0].name}", out)
    raise ConfigError(f"SOURCE {str(path)!r} is an experiment without an export: give --trial N (trial N is trained "
                      "again first: trials keep no weights) or export it first (`nas export DIR`)")


# -- the fine-tuning --------------------------------------------------------------------------------------------
def _out_dir(out: str | Path | None, source: Path, task: str, mode: str, overwrite: bool) -> Path:
    named = source.resolve()
    if named.name in ("export", "export_baselines"):  # an experiment's export: name it after the experiment
        named = named.parent
    folder = Path(out) if out is not None else Path("runs") / f"finetune-{named.name}-" \
        f"{Path(task).name.split(':')[0].replace('.', '_')}-{mode}"
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if not overwrite:
            raise ConfigError(f"--out {str(folder)!r} already exists and is not empty; give another folder or "
                              "--overwrite to replace it")
        if (folder / PROVENANCE).is_file() or not any(folder.iterdir()):
            shutil.rmtree(folder)
        else:
            raise ConfigError(f"--out {str(folder)!r} holds files that are not a fine-tuning's ({PROVENANCE} is "
                              "missing); --overwrite replaces only an earlier fine-tuning's folder")
    return folder


def _train_config(source: _Source, train_settings: Mapping[str, Any], epochs: int | None) -> TrainConfig:
    known = {f for f in TrainConfig().to_dict()}
    base = {k: v for k, v in source.train_config.items() if k in known}
    settings = {**base, **dict(train_settings)}
    if epochs is not None:
        if not is_int(epochs) or epochs < 1:
            raise ConfigError(f"--epochs {epochs!r}: give a whole number of epochs, at least 1")
        settings["epochs"] = epochs
    return TrainConfig.from_dict(settings)


def _compile(source: _Source, task: Task) -> nn.Module:
    try:
        return build_model(source.arch, task.input_shape, task.num_classes)
    except NASError as err:
        raise ConfigError(f"SOURCE's architecture (space {source.arch.space!r}) cannot be built for task "
                          f"{task.name!r} {task.input_shape} ({task.kind} data): {err}; fine-tune on a task of the "
                          "same kind of data") from None


def finetune(source: str | Path, *, task: str, mode: str, trial: int | None = None, epochs: int | None = None,
             freeze: int | None = None, body_lr_scale: float = 1.0, out: str | Path | None = None,
             task_options: Mapping[str, Any] | None = None, train_settings: Mapping[str, Any] | None = None,
             seed: int = 0, formats: str | Sequence[str] | None = None, overwrite: bool = False,
             progress: Callable[[str], None] | None = None) -> FinetuneReport:
    """Fine-tune SOURCE on ``task`` in ``mode`` and write the result to ``out`` (see the module docstring).

    Every setting is checked, and the target task loaded, before a source is trained again or anything is written:
    a bad source, mode, ``freeze`` out of the architecture's range, ``body_lr_scale`` outside (0, 1], a task of the
    wrong kind of data or an ``out`` that exists raise :class:`ConfigError`. Returns a :class:`FinetuneReport`;
    ``report.ok`` is False when a format failed its fresh-process verification.
    """
    say = progress or (lambda line: None)
    started = time.perf_counter()
    spec = TransferSpec(mode=mode, freeze=freeze, body_lr_scale=body_lr_scale, where="--")
    chosen = parse_formats(formats)
    src_path = Path(source)
    folder = _out_dir(out, src_path, task, mode, overwrite)
    target = load_task(task, seed=seed, **dict(task_options or {}))
    src = _source(src_path, trial, folder.resolve())
    cfg = _train_config(src, train_settings or {}, epochs)
    probe = _compile(src, target)
    if spec.mode == "partial":  # K against the architecture's cells, before the source is trained again
        n_cells = len(body_units(probe)[1])
        if spec.freeze is not None and spec.freeze > n_cells:
            raise ConfigError(f"--freeze {spec.freeze}: the source's architecture has {n_cells} cells after its stem; "
                              f"give 0 to {n_cells}")
    folder.mkdir(parents=True, exist_ok=True)
    say(f"source: {src.kind} {src.path}" + (f" (trial {src.trial})" if src.trial is not None else ""))
    state, digest, note = src.load()
    say(f"source weights: {note}")
    metric = get_metric("rmse" if target.regression else "accuracy")
    with seeded(seed):
        model = _compile(src, target)
        copied = copy_matching(model, state, exclude=(HEAD,), reason=f"new head for task {target.name!r}")
        plan = apply_mode(model, spec, copied)
        frozen = set(frozen_names(model, plan))
        keep = {n: t.detach().clone() for n, t in model.state_dict().items() if n in frozen}
        say(f"{copied.summary()}; mode {spec.describe()}: {len(plan.frozen)} parameter tensors frozen; training "
            f"{cfg.epochs} epochs on {target.name}")
        report = train(model, target, cfg, seed=seed, metric=metric, lr_groups=plan.lr_groups,
                       keep_eval=plan.eval_modules)
    model = _export_ready(model)
    after = model.state_dict()
    changed = sorted(n for n, t in keep.items() if not torch.equal(after[n], t))
    x_test, y_test = torch.as_tensor(target.x_test), torch.as_tensor(target.y_test)
    test = score_split(model, x_test, y_test, target, metric)
    scores: dict[str, Any] = {"val_acc": report.val_acc, "val_loss": report.val_loss, "test_acc": test.acc,
                              "test_loss": test.loss, "best_epoch": report.best_epoch, "epochs": report.epochs_run,
                              "train_seconds": round(report.seconds, 3), "history": report.history}
    if metric.name != "accuracy":
        scores.update({f"val_{metric.name}": report.val_value, f"test_{metric.name}": test.value})
    export_dir = (folder / "export").resolve()
    model_dir = export_dir / _MODEL_FOLDER
    say(f"validation {report.val_acc:.2f}, test {test.acc:.2f}; writing {', '.join(chosen)} to {model_dir}")
    info = export_info(target, src.arch, task_options=dict(task_options or {}), data_seed=seed)
    files = export_model(model, src.arch, model_dir, info=info, formats=chosen, example=x_test[:2],
                         base=export_dir)
    with torch.no_grad():
        reference = torch.cat([model(x_test[i:i + 256]) for i in range(0, len(x_test), 256)]).numpy()
    pending = PendingModel(model_dir, files, reference)
    say(f"verifying {len(files) - 1} files in fresh processes")
    verify_in_fresh_processes([pending], target.x_test, target.y_test, tolerance=TOLERANCE)
    source_info = {"kind": src.kind, "path": str(src.path), "trial": src.trial, "task": src.task,
                   "weights_sha256": digest, "note": note, "scores": src.scores}
    provenance = {
        "source": source_info,
        "mode": spec.mode, "freeze": spec.freeze, "body_lr_scale": spec.body_lr_scale, "described": spec.describe(),
        "task": target.name, "task_options": dict(task_options or {}), "seed": seed,
        "input_shape": list(target.input_shape), "num_classes": target.num_classes,
        "frozen_parameters": plan.frozen, "frozen_units": plan.units, "kept_trainable": plan.kept_trainable,
        "frozen_unchanged": not changed, "frozen_changed": changed,
        "copied": copied.copied, "adapted": copied.adapted, "reinit": copied.reinit, "unused": copied.unused,
        "train_config": cfg.to_dict(), "scores": scores,
        "export": {"path": "export", "ok": pending.verification.get("ok")},
        "package_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest = {
        "format_version": 1, "experiment": folder.name, "experiment_directory": "..",
        "package_version": __version__, "created": provenance["created"], "torch_version": torch.__version__,
        "space": src.arch.space, "task": target.name, "strategy": None, "experiment_seed": seed,
        "finetune": {"source": source_info, "mode": spec.mode, "provenance": f"../{PROVENANCE}"},
        "settings": {"top": 1, "formats": list(chosen), "retrain_epochs": None, "tolerance": TOLERANCE},
        "models": [{
            "rank": 1, "trial_id": src.trial, "baseline": None, "seed": seed,
            "arch_hash": src.arch.canonical_hash(),
            "metrics": {"val_acc": report.val_acc, "test_acc": test.acc, "test_loss": test.loss,
                        "metric": metric.name, "direction": metric.direction, "search_val_acc": report.val_acc,
                        "params": sum(p.numel() for p in model.parameters()), "val_held_out": True},
            "training": {"mode": f"finetune {spec.mode}", "epochs": report.epochs_run,
                         "best_epoch": report.best_epoch, "seconds": round(report.seconds, 3),
                         "train_config": cfg.to_dict(), "train_samples": len(target.y_train)},
            "files": files, "verification": pending.verification}],
    }
    manifest = jsonable(manifest)
    provenance["seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_text(export_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    atomic_write_text(folder / PROVENANCE, json.dumps(jsonable(provenance), indent=2) + "\n")
    return FinetuneReport(folder, provenance, manifest, time.perf_counter() - started)

