"""``nas pretrain``: train an architecture self-supervised on (unlabeled) data, written as an export that ``nas
finetune --mode features`` takes; and the export of an ``ssl`` experiment's best trials (what ``nas export`` does
for one).

SOURCE is a reference name (``nas references``), an export folder or a model folder in it (its
``architecture.json``), or an experiment directory (its rank-1 trial, or ``trial``). Only the architecture is
taken: the network starts from a fresh initialisation (seeded) and learns the pretext (:mod:`nas.evaluation.ssl`).

The output folder is an export of one model: ``manifest.json``, ``pretrained/`` with ``architecture.json``,
``weights.pt`` (every tensor of the network, whose head, ``classifier``, is the pretext's: 4 rotation logits, the
first projection layer, or the reconstruction) and ``model.json``, and ``pretrain.json`` (the source, pretext and its
options, task, seed, training config, per-epoch history and the final validation metrics). ``nas finetune OUT --task
T --mode features`` keeps the body frozen and trains a new head on a labeled task: the linear probe of the
pretrained features. Only ``json`` and ``weights`` are written: the pretext head's outputs are not a task's
predictions, so there is nothing for the traced formats to serve.
"""

from __future__ import annotations

import datetime
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.core.errors import ConfigError, NASError
from nas.core.io import atomic_write_text
from nas.core.serialize import jsonable
from nas.core.version import __version__
from nas.evaluation.ssl import EXPORTED, Pretext, SslReport, build_pretext, pretext_class, train_pretext
from nas.evaluation.ssl.evaluator import SslEvaluator
from nas.evaluation.tasks import Task, load_task
from nas.evaluation.training import TrainConfig, seeded
from nas.graph import references
from nas.graph.architecture import Architecture
from nas.graph.compiler import build_model
from nas.outputs.export import ExportReport, export_info, export_model
from nas.outputs.loading import FILE_NAMES, MANIFEST, experiment_trial, export_entry
from nas.outputs.view import ExperimentView
from nas.runtime.config import build

__all__ = ["pretrain", "export_pretrained", "PretrainReport", "PRETRAIN_FILE"]

PRETRAIN_FILE = "pretrain.json"
_MODEL_FOLDER = "pretrained"
_FORMATS = ("json", "weights")


@dataclass
class PretrainReport:
    """What :func:`pretrain` wrote: the folder, its ``pretrain.json`` (as data) and the run's report."""

    out: Path
    record: dict[str, Any]
    run: SslReport


def _architecture(source: str, trial: int | None) -> tuple[Architecture, str]:
    """SOURCE's architecture and how it was found (see the module docstring)."""
    if source in references.list_references():
        if trial is not None:
            raise ConfigError(f"--trial {trial}: SOURCE {source!r} is a reference model; remove --trial")
        return references.get(source), f"reference {source}"
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"SOURCE {source!r}: not a reference model (`nas references`) and no such file or folder; "
                          "give a reference name, an export folder or an experiment directory")
    if (path / FILE_NAMES["json"]).is_file():
        return Architecture.from_json((path / FILE_NAMES["json"]).read_text(encoding="utf-8")), f"model {path}"
    if (path / MANIFEST).is_file():
        entry = export_entry(path, trial)
        arch_file = path / entry["files"]["json"]["path"]
        return Architecture.from_json(arch_file.read_text(encoding="utf-8")), f"export {path} ({arch_file.parent.name})"
    if (path / "config.yaml").is_file():
        view = ExperimentView.open(path)
        if trial is None:
            if not view.ranked():
                raise ConfigError(f"SOURCE {source!r}: the experiment has no completed trial; give --trial N")
            best = view.ranked()[0]
            return best.arch, f"experiment {path}, rank-1 trial {best.id}"
        return experiment_trial(view, trial, source).arch, f"experiment {path}, trial {trial}"
    raise ConfigError(f"SOURCE {source!r} is not a reference name, an export folder (no {MANIFEST}), a model folder "
                      f"(no {FILE_NAMES['json']}) or an experiment directory (no config.yaml)")


def _out_dir(out: str | Path, overwrite: bool) -> Path:
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if not overwrite:
            raise ConfigError(f"--out {str(folder)!r} already exists and is not empty; give another folder or "
                              "--overwrite to replace it")
        if not (folder / PRETRAIN_FILE).is_file():
            raise ConfigError(f"--out {str(folder)!r} holds files that are not a pretraining's ({PRETRAIN_FILE} is "
                              "missing); --overwrite replaces only an earlier pretraining's folder")
        shutil.rmtree(folder)
    return folder


def _write(folder: Path, model_folder: Path, pretext: Pretext, arch: Architecture, task: Task, *,
           task_options: Mapping[str, Any], seed: int, cfg: TrainConfig, entry: Mapping[str, Any]
           ) -> dict[str, Any]:
    """Write one pretrained model into ``model_folder`` (files relative to ``folder``); its manifest entry."""
    backbone = pretext.backbone.cpu().eval()
    info = export_info(task, arch, task_options=dict(task_options), data_seed=seed)
    example = torch.as_tensor(task.x_val[:2])
    with torch.no_grad():
        outputs = int(backbone(example).shape[1])  # the pretext head's size
    info.update(num_classes=outputs, classes=[], pretext=pretext.name,
                output=f"the {pretext.name} pretext head ({outputs} outputs), not class logits: {EXPORTED}")
    files = export_model(backbone, arch, model_folder, info=info, formats=_FORMATS, example=example, base=folder)
    # reloaded as a user would (architecture.json + weights.pt, weights_only): same outputs as the trained network
    rebuilt = build_model(Architecture.from_json((model_folder / FILE_NAMES["json"]).read_text(encoding="utf-8")),
                          task.input_shape, outputs)
    rebuilt.load_state_dict(torch.load(model_folder / FILE_NAMES["weights"], weights_only=True))
    with torch.no_grad():
        diff = float((rebuilt.eval()(example) - backbone(example)).abs().max())
    return {**entry, "seed": seed, "arch_hash": arch.canonical_hash(), "files": files,
            "training": {"mode": f"self-supervised {pretext.name}", "train_config": cfg.to_dict(),
                         "train_samples": len(task.x_train)},
            "verification": {"ok": diff <= 1e-5, "max_abs_diff": {"weights": diff},
                             "how": "architecture.json + weights.pt rebuilt and compared on 2 validation inputs"}}


def _manifest(folder: Path, name: str, space: str, task: Task, seed: int, models: list[dict[str, Any]],
              pretext: str) -> dict[str, Any]:
    manifest = {"format_version": 1, "experiment": name, "package_version": __version__,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "torch_version": torch.__version__, "space": space, "task": task.name, "strategy": None,
                "experiment_seed": seed, "pretrained": {"pretext": pretext, "exported": EXPORTED},
                "settings": {"top": len(models), "formats": list(_FORMATS), "retrain_epochs": None},
                "models": models}
    manifest = jsonable(manifest)
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def pretrain(source: str, *, task: str, pretext: str, out: str | Path, epochs: int | None = None,
             trial: int | None = None, task_options: Mapping[str, Any] | None = None,
             train_settings: Mapping[str, Any] | None = None, pretext_options: Mapping[str, Any] | None = None,
             seed: int = 0, overwrite: bool = False, progress: Callable[[str], None] | None = None) -> PretrainReport:
    """Pretrain SOURCE's architecture on ``task`` with ``pretext`` and write the folder (see the module docstring).

    Everything is checked before training or writing: SOURCE, the pretext and its options against the data,
    ``out``. The task may be unlabeled. Raises :class:`ConfigError`."""
    say = progress or (lambda line: None)
    started = time.perf_counter()
    cls = pretext_class(pretext, "--pretext")
    options = dict(pretext_options or {})
    settings = dict(train_settings or {})
    if epochs is not None:
        settings["epochs"] = epochs
    cfg = TrainConfig.from_dict(settings)
    folder = _out_dir(out, overwrite)
    data = load_task(task, seed=seed, labels="optional", **dict(task_options or {}))
    arch, found = _architecture(source, trial)
    cls.check(data.input_shape, data.kind, options)
    out_dim = cls.out_dim(data.input_shape, options)
    try:
        with seeded(seed):
            model = build_model(arch, data.input_shape, out_dim)
    except NASError as err:
        raise ConfigError(f"SOURCE's architecture (space {arch.space!r}) cannot be built for task {task!r} "
                          f"{data.input_shape} ({data.kind} data): {err}; pretrain on a task of its kind") from None
    say(f"source: {found}; pretext {pretext} on {data.describe()}, {cfg.epochs} epochs")
    with seeded(seed):
        module = build_pretext(pretext, model, data.input_shape, data.kind, options)
        run = train_pretext(module, torch.as_tensor(data.x_train), torch.as_tensor(data.x_val), cfg, seed=seed,
                            data_seed=seed)
    say(f"validation {cls.metric} {run.metrics[cls.metric]:.4g} after {run.epochs_run} epochs, {run.seconds:.1f} s")
    folder.mkdir(parents=True, exist_ok=True)
    entry = _write(folder, folder / _MODEL_FOLDER, module, arch, data, task_options=dict(task_options or {}),
                   seed=seed, cfg=cfg, entry={"rank": 1, "trial_id": trial, "baseline": None,
                                              "metrics": dict(run.metrics)})
    _manifest(folder, folder.name, arch.space, data, seed, [entry], pretext)
    record = {"source": found, "pretext": pretext, "pretext_options": options, "task": task,
              "task_options": dict(task_options or {}), "labeled": data.labeled, "seed": seed,
              "train_config": cfg.to_dict(), "metrics": run.metrics, "history": run.history,
              "epochs": run.epochs_run, "seconds": round(time.perf_counter() - started, 3), "exported": EXPORTED,
              "next": f"nas finetune {folder} --task TASK --mode features (a linear probe of these features)",
              "package_version": __version__}
    atomic_write_text(folder / PRETRAIN_FILE, json.dumps(jsonable(record), indent=2) + "\n")
    return PretrainReport(folder, record, run)


def export_pretrained(directory: str | Path, *, top: int = 1, out: str | Path | None = None,
                      progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export the ``top`` best trials of an ``ssl`` experiment: each trial's architecture pretrained again with its
    seed (the search's run, reproduced: ``metrics.reproduced`` says whether the score matches), written as
    :func:`pretrain` writes (``json`` and ``weights``; a folder ``nas finetune --mode features`` takes)."""
    say = progress or (lambda line: None)
    started = time.perf_counter()
    view = ExperimentView.open(directory)
    evaluator = build(view.config).evaluator
    if not isinstance(evaluator, SslEvaluator):
        raise ConfigError(f"{view.directory}: evaluator {view.config.evaluator.name!r} is not ssl; use `nas export`")
    ranked = view.ranked()[:top]
    if not ranked:
        raise ConfigError(f"{view.directory}: no completed trial to export; run or resume the search first")
    folder = (Path(out) if out is not None else view.directory / "export").resolve()
    if folder.exists():
        shutil.rmtree(folder)
    task = evaluator.task
    entries = []
    for rank, stored in enumerate(ranked, start=1):
        say(f"rank {rank}: trial {stored.id} (score {stored.score:.4g}) - pretraining again with seed {stored.seed}")
        module, run = evaluator.pretrain(stored.arch, stored.seed)
        metrics = {**run.metrics, "search_score": stored.score, "score": run.score,
                   "reproduced": stored.score is not None and abs(run.score - stored.score) < 1e-6}
        entries.append(_write(folder, folder / f"rank{rank}_trial{stored.id}", module, stored.arch, task,
                              task_options=view.config.evaluator.task_options, seed=stored.seed,
                              cfg=evaluator.config_for(stored.arch),
                              entry={"rank": rank, "trial_id": stored.id, "baseline": None, "metrics": metrics}))
    manifest = _manifest(folder, view.config.name, view.config.space.name, task, view.config.seed, entries,
                         evaluator.pretext)
    return ExportReport(folder, manifest, time.perf_counter() - started)
