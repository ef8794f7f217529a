"""Loading what the framework wrote: exported models (:func:`load_model`) and experiments (:func:`load_experiment`).

An export folder (``nas export``) holds one sub-folder per model, ``rank{r}_trial{id}/``, with

=========================== ==================================================================================
``architecture.json``       the :class:`~nas.graph.architecture.Architecture` (``Architecture.from_json``)
``model.json``              what rebuilding needs besides it: input shape, number of classes, task, classes
``weights.pt``              the ``state_dict`` (``torch.load(path, weights_only=True)``)
``model.torchscript.pt``    TorchScript (``torch.jit.load``), no framework needed
``model.onnx``              ONNX (onnxruntime), no framework needed
``model.py``                a standalone PyTorch file (torch imports only) with ``load(weights_path)``
=========================== ==================================================================================

and ``manifest.json`` beside the folders lists every file with its sha256. :func:`load_model` checks a file
against the manifest when there is one, and raises :class:`CorruptExportError` (a :class:`~nas.core.errors.NASError`)
naming the file and the fix when a file was changed, truncated or is unreadable. Nothing here unpickles:
weights are read with ``weights_only=True``; only ``model.py`` is executed, as importing any module is, and only
after its checksum matched the manifest when one is present.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError, NASError
from nas.graph.architecture import Architecture
from nas.outputs.view import ExperimentView
from nas.storage.store import StoredTrial

__all__ = ["ExportError", "CorruptExportError", "OnnxModel", "ExperimentResults", "load_model", "load_experiment",
           "sha256_file", "find_manifest", "read_json", "verify_files", "model_info", "FILE_NAMES", "INFO_FILE",
           "MANIFEST", "export_entry", "experiment_trial"]

MANIFEST = "manifest.json"
INFO_FILE = "model.json"
#: export format -> file name inside a model folder
FILE_NAMES = {"json": "architecture.json", "weights": "weights.pt", "torchscript": "model.torchscript.pt",
              "onnx": "model.onnx", "python": "model.py"}
_REEXPORT = "export the model again with `nas export EXPERIMENT_DIR`"


class ExportError(NASError):
    """A model, experiment or export that cannot be exported or loaded (names the file or module and the fix)."""


class CorruptExportError(ExportError):
    """An exported file that was changed, truncated or cannot be read (bad checksum, bad JSON, bad weights)."""


# -- files and the manifest -------------------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path) -> Any:
    """The JSON content of ``path``; :class:`CorruptExportError` naming the file if it is not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found; {_REEXPORT}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptExportError(f"{path}: not valid JSON ({err}); the file is corrupt: {_REEXPORT}") from None


def export_entry(export: Path, trial: int | None, hint: str = "") -> dict[str, Any]:
    """The manifest entry of the export folder ``export``'s rank-1 model, or of ``trial``'s (a SOURCE with
    ``--trial``, as ``nas finetune`` and ``nas pretrain`` take it); :class:`ConfigError` naming SOURCE or ``--trial``
    and the trials it holds otherwise (``hint``: what else the caller accepts, appended to that message)."""
    manifest = read_json(export / MANIFEST)
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not models:
        raise ConfigError(f"SOURCE {str(export)!r}: its {MANIFEST} lists no model; export again")
    if trial is None:
        return min(models, key=lambda m: m.get("rank", 1 << 30))
    for m in models:
        if m.get("trial_id") == trial:
            return m
    listed = ", ".join(str(m.get("trial_id")) for m in models)
    raise ConfigError(f"--trial {trial}: the export {str(export)!r} holds trials {listed}; give one of them{hint}")


def experiment_trial(view: ExperimentView, trial: int, source: str | Path) -> StoredTrial:
    """Trial ``trial`` of the experiment SOURCE ``source`` (its ``view``), as ``--trial`` names it;
    :class:`ConfigError` naming ``--trial`` and the experiment's trials when it has no such trial."""
    for t in view.trials:
        if t.id == trial:
            return t
    ids = sorted(t.id for t in view.trials)
    raise ConfigError(f"--trial {trial}: experiment {str(source)!r} has no such trial"
                      + (f"; its trials are {ids[0]} to {ids[-1]}" if ids else " (it ran none)"))


def find_manifest(path: Path) -> Path | None:
    """The ``manifest.json`` of the export holding ``path`` (a model folder or a file in one), if any."""
    folder = path if path.is_dir() else path.parent
    for candidate in (folder / MANIFEST, folder.parent / MANIFEST):
        if candidate.is_file():
            return candidate
    return None


def _manifest_checksums(manifest: Path) -> dict[Path, str]:
    data = read_json(manifest)
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise CorruptExportError(f"{manifest}: has no 'models' list; the manifest is corrupt: {_REEXPORT}")
    sums: dict[Path, str] = {}
    for entry in models:
        files = entry.get("files", {}) if isinstance(entry, dict) else {}
        for item in files.values() if isinstance(files, dict) else ():
            if isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("sha256"), str):
                sums[(manifest.parent / item["path"]).resolve()] = item["sha256"]
    return sums


def verify_files(paths: Sequence[Path], manifest: Path | None = None) -> int:
    """Check each of ``paths`` listed in the manifest (found with :func:`find_manifest` unless given) against its
    sha256; returns how many were checked. Raises :class:`CorruptExportError` on the first mismatch."""
    if not paths:
        return 0
    manifest = manifest or find_manifest(paths[0])
    if manifest is None:
        return 0
    sums = _manifest_checksums(manifest)
    checked = 0
    for path in paths:
        expected = sums.get(path.resolve())
        if expected is None:
            continue
        if not path.is_file():
            raise ExportError(f"{path}: listed in {manifest.name} but missing; {_REEXPORT}")
        actual = sha256_file(path)
        if actual != expected:
            raise CorruptExportError(
                f"{path}: sha256 {actual[:16]}... does not match {expected[:16]}... in {manifest}; the file was "
                f"changed or corrupted after export: restore it or {_REEXPORT}")
        checked += 1
    return checked


# -- loaders ----------------------------------------------------------------------------------------------------
def _read_state_dict(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found; {_REEXPORT}") from None
    except Exception as err:  # truncated zip, not a torch file, a pickle of objects: all refused
        first = str(err).splitlines()[0].split(". ")[0] if str(err) else type(err).__name__
        raise CorruptExportError(f"{path}: not a readable state_dict ({first[:200]}); the weights are corrupt "
                                 f"or truncated: {_REEXPORT}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CorruptExportError(f"{path}: holds {type(state).__name__}, not a state_dict of tensors; {_REEXPORT}")
    return state


def model_info(folder: Path) -> dict[str, Any]:
    """``model.json`` of a model folder: ``input_shape``, ``num_classes`` and the task it was trained on."""
    info = read_json(folder / INFO_FILE)
    ok = (isinstance(info, dict) and isinstance(info.get("input_shape"), list)
          and all(isinstance(s, int) and s > 0 for s in info["input_shape"])
          and isinstance(info.get("num_classes"), int) and info["num_classes"] > 0)
    if not ok:
        raise CorruptExportError(f"{folder / INFO_FILE}: needs 'input_shape' (positive integers) and "
                                 f"'num_classes'; the file is corrupt: {_REEXPORT}")
    return info


def _load_folder(folder: Path) -> Any:
    """The torch module built from ``architecture.json`` + ``model.json`` with ``weights.pt`` loaded, eval mode."""
    import torch

    from nas.graph.builder import build_module  # lazy: torch, measured 1.5 s / 870 modules
    from nas.graph.compiler import build_model  # lazy: torch, measured 1.5 s / 870 modules

    arch_file, weights = folder / FILE_NAMES["json"], folder / FILE_NAMES["weights"]
    missing = [p.name for p in (arch_file, weights, folder / INFO_FILE) if not p.is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise ExportError(f"{folder}: a model folder needs {', '.join(missing)}; it holds {present}. "
                          "Load one of its files directly (e.g. model.onnx) or export with --format json,weights")
    verify_files([arch_file, folder / INFO_FILE, weights])
    text = arch_file.read_text(encoding="utf-8", errors="replace")
    try:
        arch = Architecture.from_json(text)
    except (NASError, ValueError, TypeError, KeyError) as err:
        raise CorruptExportError(f"{arch_file}: not a valid architecture ({str(err)[:200]}); {_REEXPORT}") from None
    info = model_info(folder)
    state = _read_state_dict(weights)
    builder = info.get("builder")
    paths = builder.get("paths") if isinstance(builder, dict) else None
    with torch.random.fork_rng():  # building initialises weights at random: leave the caller's RNG alone
        if isinstance(paths, list) and all(isinstance(p, str) for p in paths):  # a define-by-run model
            model = build_module(arch, tuple(info["input_shape"]), info["num_classes"], paths)
        else:
            # a generator is compiled for the images it makes; its input is the latent vector
            shape = info["image_shape"] if info.get("model_kind") == "generator" else info["input_shape"]
            model = build_model(arch, tuple(shape), info["num_classes"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CorruptExportError(f"{weights}: does not fit {arch_file.name} ({str(err).splitlines()[0]}...); "
                                 f"the two files come from different exports: {_REEXPORT}") from None
    return model.eval()


def _load_torchscript(path: Path) -> Any:
    import torch

    verify_files([path])
    try:
        with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; the format is still asked for
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as err:
        raise CorruptExportError(f"{path}: not a readable TorchScript archive ({str(err).splitlines()[0][:200]}); "
                                 f"the file is corrupt or truncated: {_REEXPORT}") from None


def _load_python(path: Path) -> Any:
    weights = path.parent / FILE_NAMES["weights"]
    if not weights.is_file():
        raise ExportError(f"{path}: its weights {weights.name} are not beside it; copy them next to it or "
                          "export with --format python,weights")
    verify_files([path, weights])
    spec = importlib.util.spec_from_file_location(f"nas_exported_{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise ExportError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave no __pycache__ inside the export
    try:
        spec.loader.exec_module(module)
        loader = module.load
    except Exception as err:
        raise CorruptExportError(f"{path}: the generated file does not run ({type(err).__name__}: "
                                 f"{str(err)[:200]}); {_REEXPORT}") from None
    finally:
        sys.dont_write_bytecode = bytecode
    return loader(str(weights))


class OnnxModel:
    """An ONNX export run by onnxruntime on the CPU, called like the torch module it came from.

    ``model(x)`` takes a float32 ``torch.Tensor`` (returns a tensor) or a numpy array (returns an array)
    of shape ``(N, *input_shape)`` and gives the ``(N, num_classes)`` logits."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportError("loading an ONNX export needs onnxruntime: pip install 'nasgraph[export]'") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise CorruptExportError(f"{self.path}: onnxruntime cannot read it ({str(err).splitlines()[0][:200]}); "
                                     f"the file is corrupt or truncated: {_REEXPORT}") from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: Any) -> Any:
        import numpy as np

        is_torch = type(x).__module__.startswith("torch")
        array = x.detach().cpu().numpy() if is_torch else np.asarray(x)
        out = self.session.run(None, {self.input_name: array.astype(np.float32, copy=False)})[0]
        if is_torch:
            import torch

            return torch.from_numpy(out)
        return out

    def eval(self) -> OnnxModel:
        """For symmetry with torch modules: an ONNX model is always in inference mode."""
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r})"


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold ``code/`` and ``constants.pkl``; plain ``torch.save`` files do not."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _best_folder(out: Path) -> Path:
    """The rank-1 model folder of the export at ``out``, from its manifest."""
    manifest = out / MANIFEST
    data = read_json(manifest)
    models = data.get("models") if isinstance(data, dict) else None
    try:
        best = min(models, key=lambda m: m["rank"])  # type: ignore[arg-type]  # None or junk raises TypeError, caught below
        return out / Path(best["files"]["json"]["path"]).parent
    except (TypeError, ValueError, KeyError):
        raise CorruptExportError(f"{manifest}: lists no model with a rank and an architecture.json; "
                                 f"{_REEXPORT}") from None


def load_model(path: str | Path) -> Any:
    """Load an exported model from any of its formats.

    * a model folder (``OUT/rank1_trial17``), its ``architecture.json`` or ``weights.pt``: the torch module
      compiled from the architecture with the weights loaded strictly (needs this framework); the export
      folder ``OUT`` itself: its rank-1 model;
    * ``model.torchscript.pt``: the TorchScript module; ``model.py``: the standalone module (torch only);
    * ``model.onnx``: an :class:`OnnxModel` wrapping an onnxruntime session.

    Modules come back in eval mode on the CPU. Files listed in the export's ``manifest.json`` are checked
    against their sha256 first; a changed, truncated or unreadable file raises :class:`CorruptExportError`
    naming it and the fix. Raises :class:`ExportError` for a path that is none of the above.
    """
    p = Path(path)
    if p.is_dir() and not (p / FILE_NAMES["json"]).exists() and (p / MANIFEST).is_file():
        p = _best_folder(p)
    if p.is_dir():
        return _load_folder(p)
    if not p.is_file():
        raise ExportError(f"{p}: no such file or folder; give an export's model folder (e.g. export/rank1_trial3) "
                          "or one of its files")
    if p.name in (FILE_NAMES["json"], FILE_NAMES["weights"], INFO_FILE):
        return _load_folder(p.parent)
    if p.suffix == ".onnx":
        verify_files([p])
        return OnnxModel(p)
    if p.suffix == ".py":
        return _load_python(p)
    if p.suffix in (".pt", ".pth"):
        verify_files([p])
        if _is_torchscript(p) or p.name == FILE_NAMES["torchscript"]:
            return _load_torchscript(p)
        if (p.parent / FILE_NAMES["json"]).is_file():
            raise ExportError(f"{p}: a weights file other than {FILE_NAMES['weights']}; load its folder instead")
        raise CorruptExportError(f"{p}: neither a TorchScript archive nor weights beside an architecture.json; "
                                 f"the file is corrupt or misplaced: {_REEXPORT}")
    raise ExportError(f"{p}: unknown export file; expected a model folder, architecture.json, weights.pt, "
                      "model.torchscript.pt, model.onnx or model.py")


# -- experiments --------------------------------------------------------------------------------------------------
class ExperimentResults(ExperimentView):
    """A finished (or running) experiment, read-only, for notebooks: the :class:`~nas.outputs.view.ExperimentView`
    (``config``, ``trials`` by id, :meth:`ranked`, :meth:`counts`, ``supernet``, ...) plus lookups by trial,
    flat rows and the export manifest.

    ``trials`` are :class:`~nas.storage.store.StoredTrial` rows by id; :meth:`ranked` orders the completed ones that
    meet the config's constraints by validation score (ties: earlier trial first), exactly as the search reports
    them (:meth:`ranking` keeps the infeasible ones apart).
    """

    def best(self, k: int = 1) -> list[StoredTrial]:
        """The ``k`` best completed trials that meet the constraints."""
        return self.ranked()[:k]

    def trial(self, trial_id: int) -> StoredTrial:
        """The trial with id ``trial_id``; :class:`ExportError` if there is none."""
        for t in self.trials:
            if t.id == trial_id:
                return t
        ids = [t.id for t in self.trials]
        raise ExportError(f"{self.directory}: no trial {trial_id}; its trials are "
                          + (f"{ids[0]}..{ids[-1]}" if ids else "none yet"))

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per trial (id, status, score, seed, hash, metrics), e.g. for ``pandas.DataFrame``."""
        return [{"id": t.id, "status": t.status, "score": t.score, "seed": t.seed, "hash": t.hash, **t.metrics}
                for t in self.trials]

    def manifest(self, out: str | Path | None = None) -> dict[str, Any] | None:
        """The export manifest (``DIR/export/manifest.json`` unless ``out``), or None when not exported."""
        path = Path(out) if out is not None else self.directory / "export"
        return read_json(path / MANIFEST) if (path / MANIFEST).is_file() else None


def load_experiment(directory: str | Path) -> ExperimentResults:
    """Read an experiment directory (``config.yaml`` + ``trials.db``) without resuming or changing it (see
    :class:`~nas.outputs.view.ExperimentView`).

    Raises :class:`~nas.core.errors.ConfigError` when the directory holds no experiment."""
    return ExperimentResults.open(directory)
