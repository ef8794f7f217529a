"""Export the best architectures of an experiment as models that run anywhere, each proven by reloading it.

``export_experiment(DIR, top=K)`` takes the K best trials by validation score and, for each:

1. trains it again: by default with the trial's own training config and seed on the train split (trials store
   no weights; whether that reproduces the stored validation score is recorded), or with ``retrain_epochs=E``
   on train + validation for E epochs (final weights, validation then no longer held out);
2. writes ``OUT/rank{r}_trial{id}/``: ``architecture.json``, ``model.json`` (input shape, classes, task),
   ``weights.pt`` (a ``state_dict``, ``torch.load(weights_only=True)``), ``model.torchscript.pt``
   (``torch.jit.trace``), ``model.onnx`` (the dynamo exporter, falling back per model to the TorchScript-based
   one) and ``model.py`` (standalone, torch imports only: :mod:`nas.outputs.export_python`); every file atomically;
3. verifies every file in a fresh process (:mod:`nas.outputs.export_check`): TorchScript, ONNX and ``model.py`` in one
   where the framework cannot be imported, ``architecture.json`` + ``weights.pt`` through :func:`nas.load_model`
   in another; each runs the whole test split and must match the PyTorch model's logits within ``1e-4``
   (max abs difference); the test accuracy of each is reported;
4. writes ``OUT/manifest.json``: files with sha256, metrics, verification and provenance (experiment, trial,
   seed, package version).

Experiments with the ``train`` (and ``weight_sharing``) evaluator export classifiers; those with the ``gan``
evaluator export generators, by the same steps: each is trained again with its seed (its stored sample grid says
whether that reproduced it), written in every format with one input, the latent vector (packed with a one-hot label
for a class-conditional generator, see :mod:`nas.graph.generator`), and verified in fresh processes on the same
fixed latent vectors (:func:`generator_inputs`): the same images within the tolerance. The other evaluators train
nothing.

With ``baselines=True`` the experiment's completed baselines (reference models trained beside the search, see
:mod:`nas.trials.baselines`) are exported instead, the same way, to ``OUT/baseline_{name}/``, best validation
score first (their manifest entries carry ``"baseline": name``; ``rank`` orders them among themselves).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core.checks import is_int
from nas.core.errors import ConfigError, did_you_mean
from nas.core.io import atomic_write, atomic_write_text
from nas.core.serialize import jsonable
from nas.core.version import __version__
from nas.evaluation.evaluators import TrainingEvaluator
from nas.evaluation.gan.evaluator import (
    FID_NOTE,
    GRID_SEED,
    GanEvaluator,
    fixed_latents,
    generate,
    png_bytes,
    sample_grid,
)
from nas.evaluation.measure import count_params
from nas.evaluation.metrics import Metric, get_metric, metric_keys
from nas.evaluation.scoring import score_split
from nas.evaluation.tasks import Task
from nas.evaluation.training import resolve_device, seeded, train
from nas.graph.architecture import BUILDER_KEY
from nas.outputs.export_python import generate_python
from nas.outputs.loading import (
    FILE_NAMES,
    INFO_FILE,
    MANIFEST,
    CorruptExportError,
    ExportError,
    OnnxModel,
    load_model,
    model_info,
    read_json,
    sha256_file,
    verify_files,
)
from nas.outputs.view import ExperimentView
from nas.runtime.config import build
from nas.storage.store import StoredTrial
from nas.trials.trial import Status

__all__ = ["FORMATS", "TOLERANCE", "ExportError", "CorruptExportError", "ExportReport", "parse_formats",
           "export_experiment", "export_model", "export_info", "retrain_trial", "verify_in_fresh_processes",
           "PendingModel", "check_export"]

FORMATS = ("json", "weights", "torchscript", "onnx", "python")
TOLERANCE = 1e-4
MANIFEST_VERSION = 1
_FOLDER = re.compile(r"^(rank\d+_trial\d+|baseline_\w+)$")
_FRAMEWORK_FREE = ("torchscript", "onnx", "python")


def parse_formats(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Formats from ``"json,onnx"`` or a list (None: all), in canonical order. ``json`` and ``weights`` go
    together (a model folder loads from both), and ``python`` needs ``weights``: asking for one adds the other.
    Raises :class:`ConfigError` naming an unknown format and the closest known one."""
    if value is None:
        return FORMATS
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:
        raise ConfigError(f"--format is empty; choose from {','.join(FORMATS)}")
    for item in items:
        if item not in FORMATS:
            raise ConfigError(f"--format {item!r} is unknown; choose from {','.join(FORMATS)}"
                              + did_you_mean(item, FORMATS))
    chosen = set(items)
    if chosen & {"json", "weights", "python"}:
        chosen |= {"json", "weights"}
    return tuple(f for f in FORMATS if f in chosen)


# -- training -------------------------------------------------------------------------------------------------
@dataclass
class TrainedModel:
    """A trained, export-ready network (eval mode, CPU) and how it was trained."""

    model: nn.Module
    training: dict[str, Any]


def _export_ready(model: nn.Module) -> nn.Module:
    """The network without the trainer's classifier dropout wrapper (an identity in eval mode), so that its
    ``state_dict`` has exactly the keys of a freshly compiled network; eval mode, on the CPU."""
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Sequential) and len(head) == 2 and isinstance(head[0], nn.Dropout):
        model.classifier = head[1]
    return model.cpu().eval()


def retrain_trial(trial: StoredTrial, evaluator: TrainingEvaluator, *,
                  retrain_epochs: int | None = None) -> TrainedModel:
    """Train ``trial`` (a :class:`~nas.storage.store.StoredTrial`) as the search did, or on train + validation.

    Without ``retrain_epochs``: the trial's training config (the evaluator's, with the architecture's own
    hyperparameters) and seed, on the train split, exactly as :class:`~nas.evaluation.evaluators.TrainEvaluator` does;
    ``training["reproduced"]`` says whether the validation score equals the stored score. With
    ``retrain_epochs=E``: the train and validation splits merged, E epochs, same config and seed, final weights.
    """
    task = evaluator.task
    cfg = evaluator.config_for(trial.arch)
    info: dict[str, Any] = {"seed": trial.seed}
    if retrain_epochs is not None:
        if not is_int(retrain_epochs) or retrain_epochs < 1:
            raise ConfigError(f"--retrain-epochs {retrain_epochs!r}: must be a positive integer")
        cfg = cfg.replace(epochs=retrain_epochs, restore_best=False, patience=None)
        task = dataclasses.replace(task, x_train=np.concatenate([task.x_train, task.x_val]),
                                   y_train=np.concatenate([task.y_train, task.y_val]))
        info.update(mode="train+val", note="trained on the train and validation splits; the validation "
                                           "accuracy is no longer held out")
    else:
        info.update(mode="reproduce", note="retrained with the trial's training config and seed on the train "
                                           "split (trials store no weights)")
    threads = torch.get_num_threads()
    device = resolve_device(cfg.device)
    try:
        with seeded(trial.seed, device):
            model = evaluator.compiler(trial.arch, task.input_shape, task.num_classes)
            report = train(model, task, cfg, seed=trial.seed, metric=_metric(evaluator, task))
    finally:
        torch.set_num_threads(threads)
    info.update(epochs=report.epochs_run, best_epoch=report.best_epoch, seconds=round(report.seconds, 3),
                train_config=cfg.to_dict(), train_samples=len(task.y_train))
    if retrain_epochs is None:
        stored = trial.score
        score = _metric(evaluator, task).score(report.val_value)
        if not task.regression:
            info["val_acc"] = report.val_acc
            info["stored_val_acc"] = trial.metrics.get("val_acc", stored)
            info["val_acc_difference"] = None if stored is None else report.val_acc - info["stored_val_acc"]
        info.update(metric=report.metric, val_score=score, stored_score=stored,
                    score_difference=None if stored is None else score - stored)
        info["reproduced"] = stored is not None and abs(score - stored) < 1e-9
    return TrainedModel(_export_ready(model), info)


def _metric(evaluator: TrainingEvaluator, task: Task) -> Metric:
    """The evaluator's validation metric (evaluators without one score by accuracy, or rmse for regression)."""
    metric = getattr(evaluator, "metric", None)
    return metric if isinstance(metric, Metric) else get_metric("rmse" if task.regression else "accuracy")


# -- writing the formats --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' warnings and log lines (deprecations, tracer notes, missing torchvision)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    with torch.no_grad(), _quiet():
        traced = torch.jit.trace(model, example, check_trace=False)
        atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))
    return {"method": "torch.jit.trace", "note": "fixed input shape except the batch dimension"}


def _onnx_difference(model: nn.Module, path: Path, example: torch.Tensor) -> float:
    """Max abs difference between onnxruntime and torch on batches of 1 and len(example)+1 samples."""
    session = OnnxModel(path)
    worst = 0.0
    with torch.no_grad():
        for x in (example[:1], torch.cat([example, example[:1]])):
            worst = max(worst, float((session(x) - model(x)).abs().max()))
    return worst


def _export_onnx_once(model: nn.Module, example: torch.Tensor, tmp: Path, exporter: str) -> None:
    with torch.no_grad(), _quiet(), contextlib.redirect_stdout(sys.stderr):
        if exporter == "dynamo":
            torch.onnx.export(model, (example,), str(tmp), dynamo=True, external_data=False, verbose=False,
                              input_names=["input"], output_names=["logits"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        else:
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, tolerance: float) -> dict[str, Any]:
    """ONNX by the dynamo exporter; if it fails or onnxruntime disagrees with torch, by the TorchScript-based
    one. Returns which exporter was used, the opset and why the first one was not."""
    try:
        import onnx
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ExportError(f"format onnx needs {err.name!r}: pip install 'nasgraph[export]', or leave onnx out "
                          "of --format") from None
    problems: list[str] = []
    for exporter in ("dynamo", "torchscript"):
        try:
            def write(tmp: Path, exporter: str = exporter) -> None:
                _export_onnx_once(model, example, tmp, exporter)
                diff = _onnx_difference(model, tmp, example)
                if not diff <= tolerance:
                    raise ExportError(f"onnxruntime differs from torch by {diff:.3g} > {tolerance}")

            atomic_write(path, write)
        except Exception as err:
            problems.append(f"{exporter}: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}")
            continue
        opset = next((o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")), None)
        return {"exporter": exporter, "opset": opset, "fallback_reason": problems[0] if problems else None}
    raise ExportError(f"{path}: ONNX export failed with both exporters ({'; '.join(problems)}); leave onnx out "
                      "of --format to export the other formats")


def _write_python(model: nn.Module, path: Path, input_shape: Sequence[int], num_classes: int, header: str) -> dict:
    source = generate_python(model, input_shape=input_shape, num_classes=num_classes, header=header)
    atomic_write_text(path, source)
    return {"imports": ["torch"], "entry_point": "load(weights_path)"}


def export_model(model: nn.Module, arch: Any, folder: str | Path, *, info: dict[str, Any],
                 formats: Sequence[str] = FORMATS, example: torch.Tensor, tolerance: float = TOLERANCE,
                 base: str | Path | None = None, skipped: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Write ``model`` (eval mode) in ``formats`` to ``folder``, plus ``model.json`` holding ``info`` (which must
    give ``input_shape`` and ``num_classes``). ``example`` is a real input batch (2 or more samples) for tracing.
    Returns the manifest's ``files`` entries: format -> path (relative to ``base``, default the folder's
    parent), sha256, bytes, seconds and format details. Nothing is verified here beyond the ONNX exporter
    choice; :func:`export_experiment` verifies in fresh processes. For a define-by-run (builder) model, a traced
    format (``torchscript``, ``onnx``, ``python``) that the user's module cannot be traced to is left out and its
    reason put in ``skipped`` (format -> reason) when given; otherwise, and for the framework's own models, the
    error propagates."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = Path(base) if base is not None else folder.parent
    formats = parse_formats(formats)
    model = model.cpu().eval()
    files: dict[str, dict[str, Any]] = {}

    def record(fmt: str, path: Path, start: float, details: dict[str, Any] | None = None) -> None:
        files[fmt] = {"path": path.relative_to(base).as_posix(), "sha256": sha256_file(path),
                      "bytes": path.stat().st_size, "seconds": round(time.perf_counter() - start, 3), **(details or {})}

    start = time.perf_counter()
    atomic_write_text(folder / INFO_FILE, json.dumps(info, indent=2) + "\n")
    record("info", folder / INFO_FILE, start)
    outputs = (f"{info.get('num_targets')} regression target(s)" if info.get("problem") == "regression"
               else f"{info.get('num_classes')} classes")
    header = (f"Exported nasgraph model: {info.get('space', '?')} architecture, trained on {info.get('task', '?')}"
              f" ({outputs}).")
    for fmt in formats:
        path = folder / FILE_NAMES[fmt]
        start = time.perf_counter()
        details: dict[str, Any] | None = None
        if fmt == "json":
            atomic_write_text(path, arch.to_json(indent=2) + "\n")
        elif fmt == "weights":
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            atomic_write(path, lambda tmp: torch.save(state, tmp))
            details = {"loads_with": "torch.load(path, weights_only=True)"}
        else:
            try:
                if fmt == "torchscript":
                    details = _write_torchscript(model, example, path)
                elif fmt == "onnx":
                    details = _write_onnx(model, example, path, tolerance)
                else:
                    details = _write_python(model, path, info["input_shape"], info["num_classes"], header)
            except Exception as err:
                if skipped is None or BUILDER_KEY not in arch.macro:
                    raise
                first = str(err).splitlines()[0][:300] if str(err) else ""
                skipped[fmt] = (f"the user's model cannot be exported as {fmt} ({type(err).__name__}: {first}); "
                                "the other formats are written")
                continue
        record(fmt, path, start, details)
    return files


def export_info(task: Task, arch: Any, *, task_options: dict[str, Any], data_seed: int,
                builder_paths: Sequence[str] = ()) -> dict[str, Any]:
    """The ``model.json`` of a model of ``arch`` trained on ``task`` (loaded with ``task_options`` and
    ``data_seed``): input shape, classes, the preprocessing the inputs need, what the outputs are; for a
    define-by-run architecture, where its builder is imported from (``builder_paths``)."""
    info = {"input_shape": list(task.input_shape), "num_classes": task.num_classes, "task": task.name,
            "task_kind": task.kind, "classes": list(task.classes), "space": arch.space,
            "task_options": dict(task_options), "data_seed": data_seed,
            "preprocessing": f"inputs standardised per {'channel' if task.kind == 'image' else 'feature'} "
                             f"with the train-split statistics of task {task.name!r}: x = (raw - mean) / std, "
                             f"raw being the samples as the task's loader in nas.evaluation.tasks yields them "
                             f"(nas.evaluation.tasks.load_task(..., seed={data_seed}) gives such inputs)",
            "standardise": {"mean": list(task.mean), "std": list(task.std),
                            "axis": 1 if task.kind == "image" else -1},
            "output": "logits, one per class, in the order of 'classes'"}
    if task.regression:
        info.update(problem="regression", num_targets=task.num_classes,
                    targets={"mean": list(task.target_mean), "std": list(task.target_std)},
                    output="standardised predictions, one per target in the order of 'classes'; in original "
                           "units: output * targets.std + targets.mean")
    if BUILDER_KEY in arch.macro:
        info["builder"] = {
            "ref": arch.macro[BUILDER_KEY],
            "paths": list(builder_paths),
            "note": "architecture.json + weights.pt reload only where the builder's module is importable "
                    "(on PYTHONPATH or in 'paths'); the other formats need torch only"}
    return info


# -- fresh-process verification -------------------------------------------------------------------------------
@dataclass
class _Pending:
    """A written model waiting for verification: its folder, files and the PyTorch reference outputs."""

    folder: Path
    files: dict[str, dict[str, Any]]
    reference: np.ndarray
    verification: dict[str, Any] = field(default_factory=dict)


#: a written model waiting for :func:`verify_in_fresh_processes` (``folder``, ``files``, ``reference`` logits)
PendingModel = _Pending


def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _run_checker(jobs: list[dict[str, Any]], workdir: Path, framework: bool, batch_size: int) -> dict[str, Any]:
    """Run :mod:`nas.outputs.export_check` on ``jobs`` in a fresh interpreter; returns its ``result.json``."""
    sub = workdir / ("framework" if framework else "framework_free")
    sub.mkdir()
    (sub / "request.json").write_text(json.dumps({"inputs": "../inputs.npy", "batch_size": batch_size,
                                                  "jobs": jobs}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if framework:
        env["PYTHONPATH"] = os.pathsep.join([str(_package_root()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = [sys.executable, "-m", "nas.outputs.export_check", str(sub / "request.json"), "--framework"]
    else:  # isolated: no PYTHON* variables, no script directory, no user site; the checker blocks the framework
        cmd = [sys.executable, "-I", str(Path(__file__).with_name("export_check.py")), str(sub / "request.json")]
    proc = subprocess.run(cmd, cwd=sub, env=env, capture_output=True, text=True, timeout=1800, check=False)
    result_file = sub / "result.json"
    if proc.returncode != 0 or not result_file.is_file():
        raise ExportError(f"the verification process failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    result = json.loads(result_file.read_text())
    result["outputs"] = {job["id"]: np.load(sub / f"{job['id']}.npy", allow_pickle=False)
                         for job in jobs if result["jobs"][job["id"]]["ok"]}
    return result


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float | None:
    """Test accuracy of a classifier's logits (None for regression targets, which are floats)."""
    if labels.dtype.kind == "f":
        return None
    return float(100.0 * np.mean(logits.argmax(axis=1) == labels))


def _entry_metrics(trial: StoredTrial, task: Task, metric: Metric, val_value: float, test_value: float,
                   test_acc: float, test_loss: float, params: int, held_out: bool) -> dict[str, Any]:
    """The manifest's metrics of one exported model: the metric on validation and test (as ``val_acc`` /
    ``test_acc`` for accuracy), the search's values beside them, the score's direction."""
    val_key, test_key = metric_keys(metric)
    out: dict[str, Any] = {val_key: val_value, test_key: test_value, "test_loss": test_loss}
    if not task.regression:
        out.update(val_acc=out.get("val_acc", trial.metrics.get("val_acc")), test_acc=test_acc)
    out.update({"search_score": trial.score, f"search_{val_key}": trial.metrics.get(val_key, trial.score),
                f"search_{test_key}": trial.metrics.get(test_key), "metric": metric.name,
                "direction": metric.direction, "params": params, "val_held_out": held_out})
    return out


def verify_in_fresh_processes(pending: list[_Pending], x: np.ndarray, y: np.ndarray, *,
                              tolerance: float = TOLERANCE, batch_size: int = 64) -> None:
    """Reload every written file of ``pending`` in fresh processes, run ``x`` through it and compare with the
    reference logits; fills each ``verification`` (per format: ok, max_abs_diff, test_acc, timings, error)."""
    free_jobs, framework_jobs = [], []
    for i, p in enumerate(pending):
        for fmt in _FRAMEWORK_FREE:
            if fmt in p.files:
                free_jobs.append({"id": f"{i}-{fmt}", "format": fmt, "path": str(p.folder / FILE_NAMES[fmt])})
        if "json" in p.files:
            framework_jobs.append({"id": f"{i}-json", "format": "json", "path": str(p.folder)})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nas-export-check-") as tmp:
        workdir = Path(tmp)
        np.save(workdir / "inputs.npy", np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
        results = {}
        if free_jobs:
            results["free"] = _run_checker(free_jobs, workdir, framework=False, batch_size=batch_size)
        if framework_jobs:
            results["framework"] = _run_checker(framework_jobs, workdir, framework=True, batch_size=batch_size)
    seconds = time.perf_counter() - start
    free = results.get("free", {})
    for i, p in enumerate(pending):
        formats: dict[str, Any] = {}
        for fmt in (*_FRAMEWORK_FREE, "json"):
            if fmt not in p.files:
                continue
            group = results["framework" if fmt == "json" else "free"]
            job = group["jobs"][f"{i}-{fmt}"]
            entry: dict[str, Any] = {"ok": False, "error": job.get("error")}
            out = group["outputs"].get(f"{i}-{fmt}")
            if out is not None:
                diff = float(np.abs(out - p.reference).max()) if out.shape == p.reference.shape else float("inf")
                entry.update(ok=bool(diff <= tolerance), max_abs_diff=diff, test_acc=_accuracy(out, y),
                             load_seconds=round(job["load_seconds"], 3), run_seconds=round(job["run_seconds"], 3))
                if not entry["ok"]:
                    entry["error"] = f"outputs differ from the PyTorch model by {diff:.3g} > {tolerance}"
            formats["json+weights" if fmt == "json" else fmt] = entry
        p.verification = {
            "ok": all(e["ok"] for e in formats.values()) and free.get("framework_importable") is not True,
            "tolerance": tolerance, "samples": len(y),
            "batch_size": batch_size, "split": "test", "fresh_process": True,
            "framework_importable_in_framework_free_process": free.get("framework_importable"),
            "framework_modules_loaded_in_framework_free_process": free.get("framework_modules_loaded"),
            "max_abs_diff": max((e.get("max_abs_diff", float("inf")) for e in formats.values()), default=None),
            "seconds": round(seconds, 3), "formats": formats,
        }


# -- the whole export -----------------------------------------------------------------------------------------
@dataclass
class ExportReport:
    """What :func:`export_experiment` wrote: the output folder, the manifest (as data) and the time it took."""

    out: Path
    manifest: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        """Every exported file reloaded in a fresh process and matched the PyTorch model."""
        return all(m["verification"].get("ok", False) for m in self.manifest["models"])


def _clear_previous(out: Path) -> None:
    """Remove the manifest and model folders an earlier export wrote to ``out`` (nothing else)."""
    manifest = out / MANIFEST
    if manifest.is_file():
        manifest.unlink()
    for child in out.iterdir() if out.is_dir() else ():
        if child.is_dir() and _FOLDER.match(child.name):
            shutil.rmtree(child)


def export_experiment(directory: str | Path, *, top: int = 1, formats: str | Sequence[str] | None = None,
                      retrain_epochs: int | None = None, out: str | Path | None = None, verify: bool = True,
                      tolerance: float = TOLERANCE, progress: Callable[[str], None] | None = None,
                      baselines: bool = False) -> ExportReport:
    """Export the ``top`` best trials of the experiment in ``directory`` to ``out`` (default ``DIR/export``), or
    with ``baselines`` its ``top`` best completed baselines (default ``DIR/export_baselines``).

    See the module docstring for the steps and the layout. Raises :class:`ExportError` / :class:`ConfigError`
    for an experiment that cannot be exported (no completed trial, an evaluator that trains nothing, a bad
    option); a model that fails verification is written and reported (``ExportReport.ok`` is False).
    """
    say = progress or (lambda line: None)
    started = time.perf_counter()
    if not is_int(top) or top < 1:
        raise ConfigError(f"--top {top!r}: must be a positive integer")
    chosen = parse_formats(formats)
    view = ExperimentView.open(directory)
    cfg = view.config
    if cfg.evaluator.name == "ssl":
        raise ExportError(f"{view.directory}: evaluator 'ssl' trains self-supervised; its export is the pretrained "
                          "backbones, written by `nas export` (nas.outputs.pretrain.export_pretrained)")
    if cfg.evaluator.name == "gan" and baselines:
        raise ExportError(f"{view.directory}: a GAN search's baselines (reference generators) are not exported; "
                          "their FIDs and sample grids are in `nas status` and the report; export the search's best "
                          "generators (without --baselines)")
    if cfg.evaluator.name not in ("train", "weight_sharing", "gan"):  # weight sharing: retrained winners rank first
        raise ExportError(f"{view.directory}: evaluator {cfg.evaluator.name!r} trains no model, so there are "
                          "no weights to export; export from an experiment that uses the train evaluator")
    ranking = view.ranking()
    ranked: list[StoredTrial] = ranking.ranked[:top]
    names: dict[int, str] = {}
    if baselines:
        done = sorted((b for b in view.baselines if b.status == Status.COMPLETE.value and b.score is not None),
                      key=lambda b: -b.score)  # type: ignore[operator]  # filtered: scores not None
        if not done:
            listed = ", ".join(f"{b.name} {b.status}" for b in view.baselines) or "none recorded"
            raise ExportError(f"{view.directory}: no completed baseline to export ({listed}); list reference models "
                              "under `baselines:` in the config, or train one with `nas train REFERENCE --task T`")
        ranked = list(done[:top])
        names = {b.id: b.name for b in done}
    elif not ranked and ranking.infeasible:
        raise ExportError(f"{view.directory}: nothing to export, {ranking.reason()} (constraints in config.yaml); "
                          f"resume the search with a larger budget (`nas resume {view.directory} --max-trials N`) "
                          "to find a feasible trial, or search again with looser constraints")
    elif not ranked:
        raise ExportError(f"{view.directory}: no completed trial to export; run or resume the search first "
                          f"(`nas resume {view.directory}`)")
    evaluator = build(cfg).evaluator
    if isinstance(evaluator, GanEvaluator):
        return _export_generators(view, ranked, evaluator, out=out, formats=chosen, verify=verify,
                                  tolerance=tolerance, say=say, started=started)
    if not isinstance(evaluator, TrainingEvaluator):  # the train evaluator is one
        raise ExportError(f"{view.directory}: evaluator {cfg.evaluator.name!r} has no task and training config "
                          "to train the trials again with")
    task = evaluator.task
    # absolute: the verifying processes run in other working directories
    out_dir = (Path(out) if out is not None else view.directory / ("export_baselines" if baselines else "export")
               ).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    x_test = torch.as_tensor(task.x_test)
    y_test = torch.as_tensor(task.y_test)
    pending: list[_Pending] = []
    entries: list[dict[str, Any]] = []
    for rank, trial in enumerate(ranked, start=1):
        what = f"baseline {names[trial.id]}" if trial.id in names else f"trial {trial.id}"
        say(f"rank {rank}: {what} (val {trial.score:.2f}) - training "
            + (f"{retrain_epochs} epochs on train+val" if retrain_epochs else "as in the search"))
        trained = retrain_trial(trial, evaluator, retrain_epochs=retrain_epochs)
        model = trained.model
        metric = _metric(evaluator, task)
        test = score_split(model, x_test, y_test, task, metric)
        val = score_split(model, torch.as_tensor(task.x_val), torch.as_tensor(task.y_val), task, metric)
        with torch.no_grad():
            reference = torch.cat([model(x_test[i:i + 256]) for i in range(0, len(x_test), 256)]).numpy()
        folder = out_dir / (f"baseline_{names[trial.id]}" if trial.id in names else f"rank{rank}_trial{trial.id}")
        info = export_info(task, trial.arch, task_options=cfg.evaluator.task_options, data_seed=cfg.seed,
                           builder_paths=getattr(evaluator.compiler, "paths", ()))
        say(f"rank {rank}: writing {', '.join(chosen)} to {folder}")
        skipped: dict[str, str] = {}
        files = export_model(model, trial.arch, folder, info=info, formats=chosen, example=x_test[:2],
                             tolerance=tolerance, base=out_dir, skipped=skipped)
        for fmt, reason in skipped.items():
            say(f"rank {rank}: skipped {fmt}: {reason}")
        pending.append(_Pending(folder, files, reference))
        entries.append({
            "rank": rank, "trial_id": trial.id, "baseline": names.get(trial.id), "seed": trial.seed,
            "arch_hash": trial.hash,
            "metrics": _entry_metrics(trial, task, metric, val.value, test.value, test.acc, test.loss,
                                      count_params(model), retrain_epochs is None),
            "training": trained.training, "files": files, "verification": {},
            **({"skipped": skipped} if skipped else {}),
        })
    if verify:
        say(f"verifying {sum(len(p.files) - 1 for p in pending)} files in fresh processes")
        verify_in_fresh_processes(pending, task.x_test, task.y_test, tolerance=tolerance)
    for entry, p in zip(entries, pending):
        entry["verification"] = p.verification if verify else {"ok": None, "skipped": True}
    return _write_manifest(view, out_dir, entries, task=task.name, started=started,
                           settings={"top": top, "formats": list(chosen), "retrain_epochs": retrain_epochs,
                                     "tolerance": tolerance})


def _write_manifest(view: ExperimentView, out_dir: Path, entries: list[dict[str, Any]], *, task: str,
                    started: float, settings: dict[str, Any]) -> ExportReport:
    """Write ``out_dir/manifest.json`` for the exported ``entries`` (atomically) and return the report."""
    cfg = view.config
    manifest = {
        "format_version": MANIFEST_VERSION,
        "experiment": cfg.name,
        "experiment_directory": os.path.relpath(view.directory.resolve(), out_dir.resolve()),
        "package_version": __version__,
        "search_package_version": view.version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "space": cfg.space.name, "task": task, "strategy": cfg.strategy.name, "experiment_seed": cfg.seed,
        "settings": settings,
        "seconds": round(time.perf_counter() - started, 3),
        "models": entries,
    }
    manifest = jsonable(manifest)
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return ExportReport(out_dir, manifest, time.perf_counter() - started)


# -- generators (the gan evaluator) ---------------------------------------------------------------------------
#: latent vectors (and labels) every exported generator is checked on, from :data:`GRID_SEED`
GENERATOR_CHECK_SAMPLES = 64


def generator_inputs(generator: nn.Module, num_classes: int, n: int = GENERATOR_CHECK_SAMPLES) -> torch.Tensor:
    """The fixed single-tensor inputs of an exported generator: ``n`` latent vectors from
    :data:`~nas.evaluation.gan.evaluator.GRID_SEED` and, for a conditional one, the one-hot labels cycling through
    the classes, packed as ``[z, one_hot(y)]`` (see :mod:`nas.graph.generator`)."""
    latent = int(getattr(generator, "latent_dim"))  # noqa: B009
    conditional = bool(getattr(generator, "conditional", False))
    z, y = fixed_latents(latent, n, num_classes if conditional else 0)
    return z if y is None else torch.cat([z, nn.functional.one_hot(y, num_classes).float()], dim=1)


def generator_info(task: Task, arch: Any, generator: nn.Module, *, task_options: dict[str, Any],
                   data_seed: int) -> dict[str, Any]:
    """The ``model.json`` of an exported generator: what goes in (the latent vector, packed with a one-hot label
    when conditional), what comes out (images in ``[-1, 1]``) and how to map them back to the task's pixels."""
    size = int(getattr(generator, "input_size", getattr(generator, "latent_dim")))  # noqa: B009
    latent = int(getattr(generator, "latent_dim"))  # noqa: B009
    conditional = bool(getattr(generator, "conditional", False))
    return {"model_kind": "generator", "input_shape": [size], "image_shape": list(task.input_shape),
            "num_classes": task.num_classes, "latent_dim": latent, "conditional": conditional,
            "task": task.name, "task_kind": task.kind, "classes": list(task.classes), "space": arch.space,
            "task_options": dict(task_options), "data_seed": data_seed,
            "input": (f"x = [z, one_hot(y)] of shape (N, {size}): z ~ N(0, 1) of {latent} columns, then the one-hot "
                      f"class label of {task.num_classes} columns" if conditional
                      else f"z ~ N(0, 1) of shape (N, {latent})"),
            "output": f"images (N, {', '.join(map(str, task.input_shape))}) in [-1, 1]: the task's images rescaled "
                      "from their train-split min..max (nas.evaluation.gan.to_unit_range)",
            "check_inputs": f"nas.outputs.export.generator_inputs(model, {task.num_classes}): "
                            f"{GENERATOR_CHECK_SAMPLES} latent vectors from seed {GRID_SEED}",
            "fid_note": FID_NOTE}


def _export_generators(view: ExperimentView, ranked: Sequence[StoredTrial], evaluator: GanEvaluator, *,
                       out: str | Path | None, formats: tuple[str, ...], verify: bool, tolerance: float,
                       say: Callable[[str], None], started: float) -> ExportReport:
    """:func:`export_experiment` for a generator search (the ``gan`` evaluator): each top generator is trained
    again as the search did (same seed: the same weights on the CPU; ``training["reproduced"]`` says whether its
    sample grid equals the stored one), written in every format with the packed latent input, and verified in
    fresh processes on the same fixed latent vectors (and labels when conditional): the same images within the
    tolerance."""
    cfg = view.config
    out_dir = (Path(out) if out is not None else view.directory / "export").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    pending: list[_Pending] = []
    entries: list[dict[str, Any]] = []
    x_check: torch.Tensor | None = None
    for rank, trial in enumerate(ranked, start=1):
        say(f"rank {rank}: trial {trial.id} (fid {trial.metrics.get('fid', float('nan')):.3f}) - training as in "
            "the search")
        began = time.perf_counter()
        generator, run, task = evaluator.train(trial.trial)
        if run.failure is not None:
            raise ExportError(f"trial {trial.id}: training it again failed ({run.failure}); it completed in the "
                              "search, so the run is not reproducible here (another device or torch version?)")
        model = generator.cpu().eval()
        training: dict[str, Any] = {"seed": trial.seed, "mode": "reproduce", "seconds": round(time.perf_counter()
                                                                                             - began, 3),
                                    "note": "retrained with the trial's seed and the search's GAN settings (trials "
                                            "store no weights)", "gan": dataclasses.asdict(evaluator.gan)}
        stored_grid = trial.info.get("samples_png")
        if stored_grid is not None and evaluator.grid_samples:
            z, y, columns = evaluator.grid(model, task.num_classes)
            grid = base64.b64encode(png_bytes(sample_grid(generate(model, z, y), columns))).decode("ascii")
            training["reproduced"] = grid == stored_grid
        x = generator_inputs(model, task.num_classes)
        x_check = x if x_check is None else x_check
        with torch.no_grad():
            reference = model(x_check).numpy()
        folder = out_dir / f"rank{rank}_trial{trial.id}"
        info = generator_info(task, trial.arch, model, task_options=cfg.evaluator.task_options, data_seed=cfg.seed)
        say(f"rank {rank}: writing {', '.join(formats)} to {folder}")
        files = export_model(model, trial.arch, folder, info=info, formats=formats, example=x_check[:2],
                             tolerance=tolerance, base=out_dir)
        pending.append(_Pending(folder, files, reference))
        entries.append({"rank": rank, "trial_id": trial.id, "baseline": None, "seed": trial.seed,
                        "arch_hash": trial.hash, "model_kind": "generator",
                        "metrics": {"search_score": trial.score, "metric": "fid", "direction": "min",
                                    **{k: trial.metrics.get(k) for k in ("fid", "density", "coverage", "fid_floor")},
                                    "params": count_params(model), "fid_note": FID_NOTE},
                        "training": training, "files": files, "verification": {}})
    if verify and x_check is not None:
        say(f"verifying {sum(len(p.files) - 1 for p in pending)} files in fresh processes")
        verify_in_fresh_processes(pending, x_check.numpy(), np.zeros(len(x_check), dtype=np.float32),
                                  tolerance=tolerance)
    for entry, p in zip(entries, pending):
        entry["verification"] = ({**p.verification, "split": "fixed latent vectors"} if verify
                                 else {"ok": None, "skipped": True})
    return _write_manifest(view, out_dir, entries, task=evaluator.task_name, started=started,
                           settings={"top": len(ranked), "formats": list(formats), "retrain_epochs": None,
                                     "tolerance": tolerance})


def check_export(out: str | Path, *, tolerance: float = TOLERANCE, batch: int = 8) -> dict[str, Any]:
    """Check an existing export in this process: every file in ``out/manifest.json`` against its sha256, then
    every model loaded from each of its formats and compared with the one built from JSON + weights on a random
    batch. Raises :class:`CorruptExportError` (naming the file and the fix) for a changed or unreadable file."""
    out = Path(out)
    manifest_path = out / MANIFEST
    if not manifest_path.is_file():
        raise ExportError(f"{out}: no {MANIFEST}; export first with `nas export EXPERIMENT_DIR`")
    manifest = read_json(manifest_path)
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list):
        raise CorruptExportError(f"{manifest_path}: has no 'models' list; the manifest is corrupt: export again")
    report: dict[str, Any] = {"out": str(out), "ok": True, "models": []}
    generator = torch.Generator().manual_seed(0)
    for entry in models:
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, dict) or not files or not all(isinstance(f, dict) and "path" in f
                                                               for f in files.values()):
            raise CorruptExportError(f"{manifest_path}: model entry {entry!r:.80} lists no files; the manifest is "
                                     "corrupt: export again")
        paths = [out / item["path"] for item in files.values()]
        verify_files(paths, manifest_path)
        folder = paths[0].parent
        shape = model_info(folder)["input_shape"]
        x = torch.randn(batch, *shape, generator=generator)
        outputs = {}
        with torch.no_grad():
            for fmt in files:
                if fmt in ("info", "weights"):
                    continue
                target = folder if fmt == "json" else folder / FILE_NAMES[fmt]
                outputs[fmt] = load_model(target)(x)
        reference = outputs.get("json", next(iter(outputs.values())) if outputs else None)
        diffs = {fmt: float((o - reference).abs().max()) for fmt, o in outputs.items()}
        ok = all(d <= tolerance for d in diffs.values())
        report["ok"] = report["ok"] and ok
        report["models"].append({"rank": entry.get("rank"), "trial_id": entry.get("trial_id"),
                                 "files_checked": len(paths), "max_abs_diff": diffs, "ok": ok})
    return report
