"""``nas explain SOURCE``: attribute a trained model's predictions on validation inputs with each method, check
each method's attributions (model randomisation, deletion/insertion), and write one PNG per method plus
``index.json`` describing them to ``OUT`` (default ``DIR/explain`` of the experiment, where ``nas report`` finds
and embeds them).

``SOURCE`` is an experiment directory holding an export (``DIR/export``, written by ``nas export``), an export
folder (its rank-1 model is explained) or one model folder of an export. The model is loaded with
:func:`nas.outputs.loading.load_model` (checksums verified); the inputs are the validation split of the task named
in its ``model.json``, loaded again with the same seed and options, so they are standardised as in training.

``index.json`` (written last, atomically, after every PNG) holds ``model`` (folder, trial, task, kind, classes),
``inputs`` (validation indices), ``targets`` (the predicted classes explained), ``labels`` (true classes) and per
method ``file``, ``seconds``, ``randomisation`` (the Spearman correlation the check decides on, mean and per
input, threshold, passed, the number of re-initialisations ``draws``, and both the ``magnitudes`` and the
``signed`` correlations, as means and per draw in ``magnitudes_per_draw`` and ``signed_per_draw``) and
``faithfulness`` (deletion and insertion AUCs, also for a random order).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError, NASError, did_you_mean
from nas.core.io import atomic_write_bytes, atomic_write_text
from nas.evaluation.tasks import Task, load_task
from nas.outputs.explain.attribution import METHODS, PERTURBATION_SAMPLES, attribute
from nas.outputs.explain.figures import SIGNED, image_figure, sequence_figure
from nas.outputs.explain.sanity import deletion_insertion, randomisation_check
from nas.outputs.loading import FILE_NAMES, MANIFEST, load_model, model_info, read_json
from nas.outputs.report.gradcam import pick_images

__all__ = ["INDEX", "EXPLAIN_DIR", "ExplainResult", "resolve_source", "explain", "read_index", "check_methods"]

INDEX = "index.json"
#: where explanations go inside an experiment directory (and where the report looks for them)
EXPLAIN_DIR = "explain"
_EXPORT_FIRST = "export the experiment first with `nas export DIR`, then run `nas explain DIR`"


@dataclass
class ExplainResult:
    """Where the files went, the index written, and how long it took."""

    out: Path
    index: dict[str, Any]
    seconds: float
    files: list[Path] = field(default_factory=list)


def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """The methods asked for (default: all of :data:`METHODS`), each known and once; :class:`ConfigError` naming a
    bad one."""
    if not methods:
        return METHODS
    chosen: list[str] = []
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"--method {m!r}: unknown explanation method; use one of {', '.join(METHODS)}"
                              f"{did_you_mean(m, METHODS)}")
        if m not in chosen:
            chosen.append(m)
    return tuple(chosen)


def _best_folder(export: Path) -> Path:
    data = read_json(export / MANIFEST)
    models = data.get("models") if isinstance(data, dict) else None
    ranked = [m for m in models or [] if isinstance(m, dict) and isinstance(m.get("rank"), int)
              and not m.get("baseline")]
    if not ranked:
        raise ConfigError(f"{export / MANIFEST}: lists no ranked model to explain; {_EXPORT_FIRST}")
    best = min(ranked, key=lambda m: m["rank"])
    try:
        return export / Path(best["files"]["json"]["path"]).parent
    except (KeyError, TypeError):
        raise ConfigError(f"{export / MANIFEST}: the rank-1 model has no architecture.json (exported with "
                          f"--format json,weights?); {_EXPORT_FIRST}") from None


def resolve_source(source: str | Path) -> tuple[Path, Path]:
    """``(model folder, default output folder)`` of an experiment directory, an export folder or a model folder;
    :class:`ConfigError` saying what to give instead for anything else."""
    p = Path(source)
    if (p / "config.yaml").is_file():  # an experiment
        export = p / "export"
        if not (export / MANIFEST).is_file():
            raise ConfigError(f"SOURCE {str(p)!r}: an experiment without an export ({export} has no {MANIFEST}); "
                              f"{_EXPORT_FIRST}")
        return _best_folder(export), p / EXPLAIN_DIR
    if (p / FILE_NAMES["json"]).is_file():  # one model folder
        root = p.parent if (p.parent / MANIFEST).is_file() else p
    elif (p / MANIFEST).is_file():  # an export folder
        root, p = p, _best_folder(p)
    else:
        raise ConfigError(f"SOURCE {str(p)!r}: neither an experiment directory, an export folder (with {MANIFEST}) "
                          f"nor a model folder (with {FILE_NAMES['json']}); give one of those")
    experiment = root.parent
    return p, (experiment / EXPLAIN_DIR if (experiment / "config.yaml").is_file() else root / EXPLAIN_DIR)


def _task(folder: Path, info: dict[str, Any]) -> Task:
    kind = info.get("task_kind")
    if info.get("problem") == "regression":
        raise ConfigError(f"{folder}: a regression model; explanations attribute a class score, so only "
                          "classifiers can be explained")
    if kind not in ("image", "sequence"):
        raise ConfigError(f"{folder}: task kind {kind!r}; `nas explain` covers image and sequence models")
    given = info.get("task_options")
    options: dict[str, Any] = given if isinstance(given, dict) else {}
    task = load_task(str(info["task"]), seed=int(info.get("data_seed", 0)), **options)
    if list(task.input_shape) != list(info["input_shape"]):
        raise ConfigError(f"{folder}: the model takes {info['input_shape']} but task {task.name!r} now loads "
                          f"{list(task.input_shape)}; the task's data changed since the export")
    return task


def _trial_id(folder: Path) -> int | None:
    """The trial of an export's model folder ``rank{r}_trial{id}``, or None for other names."""
    match = re.search(r"trial(\d+)$", folder.name)
    return int(match.group(1)) if match else None


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    return buf.getvalue()


def explain(source: str | Path, *, methods: Sequence[str] | None = None, samples: int = 6,
            out: str | Path | None = None, seed: int = 0, check: bool = True,
            perturbations: int = PERTURBATION_SAMPLES,
            progress: Callable[[str], object] | None = None) -> ExplainResult:
    """Explain the model of ``source`` (see :func:`resolve_source`) on ``samples`` validation inputs (the first of
    each class, then the next ones) with ``methods``, for the class the model predicts. Writes
    ``{method}.png`` per method and :data:`INDEX` to ``out``; ``check`` runs the randomisation and
    deletion/insertion checks (they cost two more attributions and a few dozen forward passes per method).
    ``seed`` seeds the perturbation samples, the randomised weights and the random deletion order;
    ``perturbations`` is the number of perturbed inputs LIME and KernelSHAP draw per input."""
    start = time.perf_counter()
    chosen = check_methods(methods)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"--samples {samples!r}: the number of validation inputs to explain must be a positive "
                          "integer, e.g. --samples 6")
    if isinstance(perturbations, bool) or not isinstance(perturbations, int) or perturbations < 10:
        raise ConfigError(f"--perturbations {perturbations!r}: LIME and KernelSHAP need at least 10 perturbed "
                          f"samples per input to fit; the default is {PERTURBATION_SAMPLES}")
    folder, default_out = resolve_source(source)
    target_dir = Path(out) if out is not None else default_out
    info = model_info(folder)
    task = _task(folder, info)
    model = load_model(folder)
    target_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{folder}: loads as {type(model).__name__}, not a torch module; explanations need "
                          "gradients")
    kind = task.kind
    idx = pick_images(task, min(samples, len(task.y_val)))
    x = torch.as_tensor(np.asarray(task.x_val[idx]), dtype=torch.float32)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)
    target = probs.argmax(dim=1)
    classes = [str(c) for c in task.classes]
    titles = [f"true {classes[int(task.y_val[i])]}" for i in idx]
    captions = [f"pred {classes[int(t)]} ({100 * float(probs[k, t]):.0f}%)" for k, t in enumerate(target)]
    entries = []
    files = []
    for method in chosen:
        if progress:
            progress(f"{method}: attributing {len(idx)} {kind} input(s)")
        began = time.perf_counter()

        def run(m: nn.Module, method: str = method) -> torch.Tensor:
            return attribute(m, x, method, target=target, kind=kind, seed=seed, samples=perturbations)

        attributions = run(model)
        seconds = time.perf_counter() - began
        draw = image_figure if kind == "image" else sequence_figure
        path = target_dir / f"{method}.png"
        atomic_write_bytes(path, _png(draw(x.numpy(), attributions.numpy(), titles, captions, method)))
        files.append(path)
        entry: dict[str, Any] = {"method": method, "file": path.name, "seconds": round(seconds, 3)}
        if check:
            r = randomisation_check(run, model, seed, trained=attributions, absolute=method not in SIGNED)
            f = deletion_insertion(model, x, target, attributions, seed)
            entry["randomisation"] = {"correlation": r.correlation, "per_input": r.per_input,
                                      "threshold": r.threshold, "passed": r.passed, "draws": r.draws,
                                      "magnitudes": r.magnitudes, "signed": r.signed,
                                      "magnitudes_per_draw": r.magnitudes_per_draw,
                                      "signed_per_draw": r.signed_per_draw,
                                      "compared": "signed values" if method in SIGNED else "magnitudes"}
            entry["faithfulness"] = {"deletion_auc": f.deletion, "insertion_auc": f.insertion,
                                     "random_deletion_auc": f.random_deletion,
                                     "random_insertion_auc": f.random_insertion}
        entries.append(entry)
    index = {"version": 1, "source": folder.name, "model": {
        "folder": folder.name, "trial_id": _trial_id(folder), "task": task.name, "kind": kind,
        "input_shape": list(task.input_shape), "classes": classes},
        "split": "validation", "inputs": idx, "labels": [int(task.y_val[i]) for i in idx],
        "targets": [int(t) for t in target], "probabilities": [float(probs[k, t]) for k, t in enumerate(target)],
        "seed": seed, "perturbations": perturbations, "methods": entries}
    atomic_write_text(target_dir / INDEX, json.dumps(index, indent=2) + "\n")
    files.append(target_dir / INDEX)
    return ExplainResult(target_dir, index, time.perf_counter() - start, files)


def read_index(folder: str | Path) -> dict[str, Any] | None:
    """The :data:`INDEX` of an explanations folder, or None when there is none; ``NASError`` if unreadable."""
    path = Path(folder) / INDEX
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NASError(f"{path}: not valid JSON ({err}); run `nas explain` again") from None
    if not isinstance(data, dict) or not isinstance(data.get("methods"), list):
        raise NASError(f"{path}: has no 'methods' list; run `nas explain` again")
    return data
