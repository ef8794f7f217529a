"""``nas export`` on a small real experiment: NAS-Bench-201 cells trained for real on ``digits`` (local executor,
3 trials of 1 epoch), the best two exported in every format, each reloaded in a fresh process and compared with
the PyTorch model; ``nas.load_model`` round trips; corrupted files give clear errors (CLI exit code 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nas
from nas.cli import main
from nas.core.errors import ConfigError, NASError
from nas.evaluation.tasks import load_task
from nas.outputs.export import FORMATS, ExportReport, export_experiment, parse_formats
from nas.outputs.loading import CorruptExportError, ExportError, OnnxModel, sha256_file
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

CONFIG = {
    "name": "export_test", "seed": 0,
    "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
    "strategy": {"name": "random"},
    "evaluator": {"name": "train", "task": "digits",
                  "train": {"epochs": 1, "batch_size": 64, "lr": 0.05, "threads": 1, "dropout": 0.1}},
    "budget": {"max_trials": 3},
    "execution": {"executor": "local", "workers": 1},
}
FILES = {"json": "architecture.json", "weights": "weights.pt", "torchscript": "model.torchscript.pt",
         "onnx": "model.onnx", "python": "model.py"}
# Installed first in a fresh interpreter: `import nas` (and the other packages) then fails, editable install or not.
BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("nas", "search_spaces", "strategies"):
                raise ModuleNotFoundError("blocked: " + name, name=name)
    sys.meta_path.insert(0, Block())
    sys.dont_write_bytecode = True
    try:
        import nas
        raise SystemExit("the framework is importable")
    except ModuleNotFoundError:
        pass
""")


def _fresh(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in an isolated interpreter (-I: no PYTHONPATH, no script or cwd directory on sys.path)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-I", "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExportReport]:
    directory = tmp_path_factory.mktemp("export") / "exp"
    exp = Experiment.create(parse_config(CONFIG), directory)
    try:
        ranked = exp.run()
    finally:
        exp.close()
    assert len(ranked) == 3
    torch.set_num_threads(1)
    return directory, export_experiment(directory, top=2)


@pytest.fixture(scope="module")
def test_inputs() -> tuple[torch.Tensor, np.ndarray]:
    task = load_task("digits", seed=0)
    return torch.as_tensor(task.x_test), task.y_test


def test_manifest_lists_every_file_with_its_checksum_metrics_and_provenance(exported: tuple[Path, ExportReport]
                                                                            ) -> None:
    directory, report = exported
    out = directory / "export"
    assert report.out == out and report.ok
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == report.manifest
    assert manifest["experiment"] == "export_test" and manifest["package_version"] == nas.__version__
    assert manifest["created"] and manifest["settings"]["formats"] == list(FORMATS)
    ranked = nas.load_experiment(directory).ranked()
    assert [m["rank"] for m in manifest["models"]] == [1, 2]
    for model, trial in zip(manifest["models"], ranked):
        assert model["trial_id"] == trial.id and model["seed"] == trial.seed and model["arch_hash"] == trial.hash
        folder = out / f"rank{model['rank']}_trial{trial.id}"
        assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES.values(), "model.json"])
        for fmt, name in FILES.items():
            entry = model["files"][fmt]
            assert entry["path"] == f"{folder.name}/{name}"
            assert entry["sha256"] == sha256_file(folder / name)
        info = json.loads((folder / "model.json").read_text())
        assert info["input_shape"] == [1, 8, 8] and info["num_classes"] == 10 and info["task"] == "digits"
        digits = load_task("digits", seed=0)  # the numbers to standardise raw inputs with
        assert info["standardise"] == {"mean": list(digits.mean), "std": list(digits.std), "axis": 1}
        # retrained with the trial's own config and seed: the search's validation score is reproduced
        assert model["training"]["mode"] == "reproduce" and model["training"]["reproduced"] is True
        assert model["metrics"]["val_acc"] == pytest.approx(trial.score)
        assert model["metrics"]["search_test_acc"] == pytest.approx(trial.metrics["test_acc"])
        assert 0 <= model["metrics"]["test_acc"] <= 100
        assert model["files"]["onnx"]["exporter"] in ("dynamo", "torchscript")


def test_every_format_reloads_in_a_fresh_process_and_matches(exported: tuple[Path, ExportReport]) -> None:
    """The export's own verification: each file reloaded in a fresh process, whole test split, <= 1e-4."""
    _, report = exported
    for model in report.manifest["models"]:
        v = model["verification"]
        assert v["ok"] and v["fresh_process"] and v["tolerance"] == 1e-4 and v["samples"] > 200
        assert v["framework_importable_in_framework_free_process"] is False
        assert v["framework_modules_loaded_in_framework_free_process"] == []
        assert set(v["formats"]) == {"torchscript", "onnx", "python", "json+weights"}
        for fmt in v["formats"].values():
            assert fmt["ok"] and fmt["max_abs_diff"] <= 1e-4
            assert fmt["test_acc"] == pytest.approx(model["metrics"]["test_acc"], abs=0.5)


def test_torchscript_onnx_and_python_run_where_the_framework_cannot_be_imported(
        exported: tuple[Path, ExportReport], test_inputs: tuple[torch.Tensor, np.ndarray], tmp_path: Path) -> None:
    directory, report = exported
    folder = directory / "export" / report.manifest["models"][0]["files"]["json"]["path"].split("/")[0]
    x, _ = test_inputs
    np.save(tmp_path / "x.npy", x[:50].numpy())
    code = BLOCKER + textwrap.dedent(f"""
        import runpy, numpy as np, torch, onnxruntime as ort
        torch.set_num_threads(1)
        folder, x = {str(folder)!r}, np.load("x.npy")
        sys.argv = ["model.py", folder + "/weights.pt"]
        runpy.run_path(folder + "/model.py", run_name="__main__")   # the file's own self-check
        standalone = runpy.run_path(folder + "/model.py")["load"](folder + "/weights.pt")
        scripted = torch.jit.load(folder + "/model.torchscript.pt")
        session = ort.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
        with torch.no_grad():
            np.save("python.npy", standalone(torch.from_numpy(x)).numpy())
            np.save("torchscript.npy", scripted(torch.from_numpy(x)).numpy())
        np.save("onnx.npy", session.run(None, {{session.get_inputs()[0].name: x}})[0])
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("nas", "search_spaces")))
    """)
    result = _fresh(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok: input (2, 1, 8, 8) -> logits (2, 10)" in result.stdout and "loaded: []" in result.stdout
    with torch.no_grad():
        reference = nas.load_model(folder)(x[:50]).numpy()
    for fmt in ("python", "torchscript", "onnx"):
        assert np.abs(np.load(tmp_path / f"{fmt}.npy") - reference).max() <= 1e-4, fmt
    assert not (folder / "__pycache__").exists()


def test_load_model_round_trips_every_format(exported: tuple[Path, ExportReport],
                                             test_inputs: tuple[torch.Tensor, np.ndarray]) -> None:
    directory, report = exported
    out = directory / "export"
    x, y = test_inputs
    entry = report.manifest["models"][0]
    folder = out / entry["files"]["json"]["path"].split("/")[0]
    model = nas.load_model(folder)
    assert not model.training and isinstance(model, torch.nn.Module)
    weights = torch.load(folder / "weights.pt", weights_only=True)
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        reference = model(x)
        assert 100.0 * float((reference.argmax(1).numpy() == y).mean()) == pytest.approx(
            entry["metrics"]["test_acc"])
        for target in ("weights.pt", "architecture.json", "model.torchscript.pt", "model.onnx", "model.py"):
            loaded = nas.load_model(folder / target)
            assert float((loaded(x) - reference).abs().max()) <= 1e-4, target
    with torch.no_grad():  # the export folder itself: its rank-1 model
        assert torch.equal(nas.load_model(out)(x), reference)
    assert isinstance(nas.load_model(folder / "model.onnx"), OnnxModel)
    assert nas.load_model(folder / "model.onnx")(x[:3].numpy()).shape == (3, 10)


def test_load_experiment_gives_trials_best_and_config(exported: tuple[Path, ExportReport]) -> None:
    directory, report = exported
    results = nas.load_experiment(directory)
    assert len(results.trials) == 3 and results.counts() == {"COMPLETE": 3}
    assert results.config.name == "export_test" and results.config.space.name == "nb201"
    best = results.best(2)
    assert [t.score for t in best] == sorted((t.score for t in results.trials), reverse=True)[:2]
    assert results.trial(best[0].id) == best[0]
    assert results.manifest() == report.manifest
    assert {"id", "score", "val_acc", "test_acc"} <= results.rows()[0].keys()
    with pytest.raises(ExportError, match="no trial 99"):
        results.trial(99)
    with pytest.raises(ConfigError, match="not an experiment directory"):
        nas.load_experiment(directory / "export")


def _copy(exported: tuple[Path, ExportReport], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the export (so each test may corrupt it) and its first model folder."""
    out = tmp_path / "export"
    shutil.copytree(exported[0] / "export", out)
    return out, out / exported[1].manifest["models"][0]["files"]["json"]["path"].split("/")[0]


def test_a_changed_file_fails_its_checksum_naming_the_file_and_the_fix(
        exported: tuple[Path, ExportReport], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, folder = _copy(exported, tmp_path)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(CorruptExportError, match=r"model\.onnx: sha256 .* does not match .*manifest\.json.*"
                                                 r"nas export") as info:
        nas.load_model(folder / "model.onnx")
    assert isinstance(info.value, NASError)
    assert main(["export", str(exported[0]), "--check", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.onnx" in err and "export the model again" in err
    # the untouched export checks fine
    assert main(["export", str(exported[0]), "--check"]) == 0
    assert "export ok" in capsys.readouterr().out


@pytest.mark.parametrize(("target", "corrupt", "message"), [
    ("weights.pt", lambda p: p.write_bytes(p.read_bytes()[:500]), r"weights\.pt: not a readable state_dict"),
    ("architecture.json", lambda p: p.write_text('{"space": "nb2'), r"architecture\.json: not a valid architecture"),
    ("model.json", lambda p: p.write_text("{input_shape"), r"model\.json: not valid JSON"),
    ("model.torchscript.pt", lambda p: p.write_bytes(p.read_bytes()[:1000]),
     r"model\.torchscript\.pt: not a readable TorchScript archive"),
    ("model.onnx", lambda p: p.write_bytes(p.read_bytes()[:300]), r"model\.onnx: onnxruntime cannot read it"),
])
def test_unreadable_files_without_a_manifest_give_clear_errors(
        exported: tuple[Path, ExportReport], tmp_path: Path, target: str, corrupt: Any, message: str) -> None:
    out, folder = _copy(exported, tmp_path)
    (out / "manifest.json").unlink()  # no checksums to catch it: the reader itself must say what is wrong
    corrupt(folder / target)
    load = folder if target in ("weights.pt", "architecture.json", "model.json") else folder / target
    with pytest.raises(CorruptExportError, match=message) as info:
        nas.load_model(load)
    assert "export the model again" in str(info.value)


def test_a_corrupt_manifest_is_named(exported: tuple[Path, ExportReport], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, folder = _copy(exported, tmp_path)
    (out / "manifest.json").write_text('{"models": [')
    with pytest.raises(CorruptExportError, match=r"manifest\.json: not valid JSON"):
        nas.load_model(folder)
    assert main(["export", str(exported[0]), "--check", "--out", str(out)]) == 2
    assert "manifest.json: not valid JSON" in capsys.readouterr().err


def test_cli_retrains_on_train_and_validation_and_exports_the_chosen_format(
        exported: tuple[Path, ExportReport], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    directory, _ = exported
    out = tmp_path / "onnx_only"
    monkeypatch.chdir(tmp_path)  # relative paths, as typed in a shell (the verifying processes run elsewhere)
    assert main(["export", os.path.relpath(directory, tmp_path), "--top", "1", "--format", "onnx",
                 "--retrain-epochs", "1", "--out", "onnx_only", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "manifest:" in printed and "onnx" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    (model,) = manifest["models"]
    assert set(model["files"]) == {"onnx", "info"} and manifest["settings"]["retrain_epochs"] == 1
    task = load_task("digits", seed=0)
    assert model["training"]["mode"] == "train+val"
    assert model["training"]["train_samples"] == len(task.y_train) + len(task.y_val)
    assert model["metrics"]["val_held_out"] is False
    assert model["verification"]["ok"] and set(model["verification"]["formats"]) == {"onnx"}


def test_bad_options_exit_2_with_a_hint(exported: tuple[Path, ExportReport], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    directory, _ = exported
    assert main(["export", str(directory), "--format", "onnx,torchscrpt"]) == 2
    assert "did you mean 'torchscript'?" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2
    assert "not an experiment directory" in capsys.readouterr().err
    assert main(["export", str(directory), "--check", "--out", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_parse_formats() -> None:
    assert parse_formats(None) == FORMATS
    assert parse_formats("onnx, torchscript") == ("torchscript", "onnx")
    assert parse_formats(["python"]) == ("json", "weights", "python")  # model.py loads weights.pt
    assert parse_formats("weights") == ("json", "weights")
    with pytest.raises(ConfigError, match="empty"):
        parse_formats(",")
