"""``nas finetune`` end to end, with real training: a model trained on ``digits`` carried to a 3-channel, 4-class image
task (the stem adapted, the head new), its export verified in fresh processes and reloadable, its provenance written;
an experiment's trial as the source (trained again first, saying so); ``evaluator.init_from`` in a real search on the
local executor (every trial records what it copied); bad inputs exit 2 naming the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import nas
from nas.cli import main
from nas.evaluation.tasks import load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.outputs.export import check_export, export_info, export_model
from nas.outputs.finetune import PROVENANCE, finetune
from nas.outputs.loading import load_model
from nas.transfer import HEAD
from search_spaces import get_space

SPACE = get_space("nb201", C=4, N=1)
ARCH = SPACE.sample(np.random.default_rng(3))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder (architecture.json, model.json, weights.pt) of ``ARCH`` trained 2 epochs on digits."""
    task = load_task("digits", seed=0, limit=400)
    with seeded(0):
        model = SPACE.compiler()(ARCH, task.input_shape, task.num_classes)
    train(model, task, TrainConfig(epochs=2, batch_size=32, device="cpu", threads=1), seed=0)
    folder = tmp_path_factory.mktemp("source") / "model"
    export_model(model.cpu().eval(), ARCH, folder, info=export_info(task, ARCH, task_options={"limit": 400},
                                                                    data_seed=0),
                 formats=("json", "weights"), example=torch.as_tensor(task.x_test[:2]))
    return folder


@pytest.fixture(scope="module")
def rgb_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``.npz`` image task of 3-channel 8x8 images in 4 classes (digits 0-3, coloured)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keep = y < 4
    images = x[keep].reshape(-1, 1, 8, 8)
    rgb = np.concatenate([images, images[:, :, ::-1], images.transpose(0, 1, 3, 2)], axis=1).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "rgb.npz"
    np.savez(path, x=rgb, y=y[keep])
    return path


def test_features_mode_adapts_stem_and_head_and_writes_a_verified_export(source: Path, rgb_task: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "ft"
    report = finetune(source, task="npz", task_options={"path": str(rgb_task)}, mode="features", epochs=2,
                      out=out, train_settings={"batch_size": 32, "threads": 1})
    p = json.loads((out / PROVENANCE).read_text())
    assert p == json.loads(json.dumps(report.provenance))
    assert p["mode"] == "features" and p["task"] == "npz" and p["input_shape"] == [3, 8, 8] and p["num_classes"] == 4
    assert p["source"]["kind"] == "export" and len(p["source"]["weights_sha256"]) == 64
    assert p["adapted"] == ["stem.0.weight"]  # 1 -> 3 input channels
    assert set(p["reinit"]) == {"classifier.mlp.0.weight", "classifier.mlp.0.bias"}  # the new head
    state = torch.load(source / "weights.pt", weights_only=True)
    assert set(p["copied"]) == set(state) - set(p["reinit"]) - {"stem.0.weight"}
    params = {n for n, _ in SPACE.compiler()(ARCH, (3, 8, 8), 4).named_parameters()}
    assert set(p["frozen_parameters"]) == {n for n in params if not n.startswith(HEAD + ".")}
    assert p["frozen_unchanged"] is True and p["frozen_changed"] == []
    assert p["scores"]["epochs"] == 2 and len(p["scores"]["history"]) == 2 and 0 <= p["scores"]["test_acc"] <= 100
    assert p["export"]["ok"] is True and report.ok
    # the export is one like `nas export` writes: checked again, reloaded, the frozen body as trained on digits
    assert check_export(out / "export")["ok"]
    model = load_model(out / "export")
    loaded = model.state_dict()
    for name in p["copied"]:
        if not name.startswith(HEAD):
            assert torch.equal(loaded[name], state[name]), name
    task = load_task("npz", path=str(rgb_task), seed=0)
    with torch.no_grad():
        acc = float((model(torch.as_tensor(task.x_test)).argmax(1).numpy() == task.y_test).mean() * 100)
    assert abs(acc - p["scores"]["test_acc"]) < 1e-6
    assert json.loads((out / "export" / "manifest.json").read_text())["finetune"]["mode"] == "features"


def test_partial_and_full_modes_from_the_cli(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["finetune", str(source), "--task", "digits", "--task-option", "limit=300", "--mode", "partial",
                 "--freeze", "2", "--epochs", "1", "--format", "json,weights", "--out", str(tmp_path / "p"),
                 "--quiet"])
    assert code == 0, capsys.readouterr()
    p = json.loads((tmp_path / "p" / PROVENANCE).read_text())
    # ARCH's first cell has pooling and skip edges only (no tensors): the resblock after it is the first frozen
    assert {".".join(n.split(".")[:2]) for n in p["frozen_parameters"]} == {"stem.0", "stem.1", "body.1"}
    assert p["frozen_unchanged"] and p["freeze"] == 2
    assert "verified" in capsys.readouterr().out
    code = main(["finetune", str(source), "--task", "digits", "--task-option", "limit=300", "--mode", "full",
                 "--body-lr-scale", "0.1", "--epochs", "1", "--format", "json,weights", "--out",
                 str(tmp_path / "f"), "--quiet"])
    assert code == 0
    p = json.loads((tmp_path / "f" / PROVENANCE).read_text())
    assert p["frozen_parameters"] == [] and p["body_lr_scale"] == 0.1 and p["train_config"]["epochs"] == 1
    # K beyond the architecture's cells, an existing --out: exit 2, nothing written
    code = main(["finetune", str(source), "--task", "digits", "--mode", "partial", "--freeze", "9", "--out",
                 str(tmp_path / "k")])
    assert code == 2 and "--freeze 9: the source's architecture has 5 cells after its stem; give 0 to 5" in \
        capsys.readouterr().err
    assert not (tmp_path / "k").exists()
    code = main(["finetune", str(source), "--task", "digits", "--mode", "features", "--out", str(tmp_path / "f")])
    assert code == 2 and "already exists and is not empty" in capsys.readouterr().err


SEARCH = {"name": "init", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
          "strategy": {"name": "random"},
          "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300},
                        "train": {"epochs": 1, "batch_size": 32, "threads": 1}, "options": {"latency_runs": 0}},
          "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1}}


def test_a_trial_of_an_experiment_is_trained_again_then_fine_tuned(tmp_path: Path) -> None:
    exp = nas.search(SEARCH, directory=tmp_path / "exp")
    exp.close()
    report = finetune(tmp_path / "exp", trial=1, task="digits", task_options={"limit": 200}, mode="features",
                      epochs=1, out=tmp_path / "ft", formats="json,weights")
    p = report.provenance
    assert p["source"]["kind"] == "trial" and p["source"]["trial"] == 1 and p["source"]["task"] == "digits"
    assert "trials keep no weights: trial 1 was trained again" in p["source"]["note"]
    weights = tmp_path / "ft" / "source" / "weights.pt"
    assert weights.is_file()
    from nas.transfer.weights import sha256_of

    assert sha256_of(weights) == p["source"]["weights_sha256"]
    assert p["reinit"] == {"classifier.mlp.0.weight": "new head for task 'digits'",
                           "classifier.mlp.0.bias": "new head for task 'digits'"}


def test_init_from_starts_every_candidate_of_a_search_from_the_weights(source: Path, tmp_path: Path) -> None:
    config = json.loads(json.dumps(SEARCH))
    config["evaluator"].update(init_from=str(source), init_mode="partial", init_freeze=1)
    exp = nas.search(config, directory=tmp_path / "exp")
    try:
        trials = exp.store.trials()
        assert len(trials) == 2 and all(t.status == "COMPLETE" for t in trials)
        state = torch.load(source / "weights.pt", weights_only=True)
        for t in trials:
            # the stem, the head and the resblocks always fit; how much of the cells does depends on their ops
            assert 0 < t.metrics["init_copied"] <= len(state) and t.metrics["init_frozen"] >= 2
            assert t.metrics["init_copied"] + t.metrics["init_reinit"] == \
                len(SPACE.compiler()(t.arch, (1, 8, 8), 10).state_dict())
            assert f"from {source}; mode partial (stem and the first 1 cells frozen)" in t.info["init_from"]
    finally:
        exp.close()


def test_a_relative_init_from_is_a_path_from_the_config_folder(source: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The config's folder rule (as for a task function beside it): ``init_from: weights/model`` in
    ``conf/search.yaml`` names ``conf/weights/model`` whatever the working directory, and the experiment's own copy
    of the config keeps that file (a resume from anywhere reads the same weights)."""
    conf = tmp_path / "conf"
    shutil.copytree(source, conf / "weights" / "model")
    config = json.loads(json.dumps(SEARCH))
    config["evaluator"]["init_from"] = "weights/model"
    config["budget"]["max_trials"] = 1
    (conf / "search.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "weights").mkdir(parents=True)  # a decoy: the same relative path from the working directory
    torch.save({"junk": torch.zeros(1)}, elsewhere / "weights" / "model")
    monkeypatch.chdir(elsewhere)
    cfg = nas.load_config(Path("..") / "conf" / "search.yaml")
    assert cfg.evaluator.init_from == str((conf / "weights" / "model").resolve())
    exp = nas.search(Path("..") / "conf" / "search.yaml", directory=tmp_path / "exp")
    try:
        (trial,) = exp.store.trials()
        assert trial.status == "COMPLETE" and trial.metrics["init_copied"] > 0
        assert f"from {(conf / 'weights' / 'model').resolve()}; mode full" in trial.info["init_from"]
    finally:
        exp.close()
    saved = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert saved["evaluator"]["init_from"] == str((conf / "weights" / "model").resolve())
    # an absolute path is left alone
    config["evaluator"]["init_from"] = str(source)
    (conf / "abs.yaml").write_text(yaml.safe_dump(config))
    assert nas.load_config(conf / "abs.yaml").evaluator.init_from == str(source)


def test_the_folder_nas_train_wrote_is_a_source(tmp_path: Path) -> None:
    code = main(["train", "lenet5", "--task", "digits", "--task-option", "limit=200", "--epochs", "1", "--out",
                 str(tmp_path / "lenet"), "--quiet"])
    assert code == 0
    report = finetune(tmp_path / "lenet", task="digits", task_options={"limit": 200}, mode="features", epochs=1,
                      out=tmp_path / "ft", formats="json,weights")
    p = report.provenance
    assert p["source"]["kind"] == "baseline" and "the reference model lenet5 was trained again" in p["source"]["note"]
    assert p["frozen_parameters"] and p["frozen_unchanged"] and report.ok
