"""``nas pretrain`` then ``nas finetune --mode features``: a reference model pretrained self-supervised on unlabeled
digits, probed on the labeled digits with its body frozen; and ``nas export`` of a label-free search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nas.cli import main
from nas.core.errors import ConfigError
from nas.outputs.finetune import finetune
from nas.outputs.pretrain import PRETRAIN_FILE, export_pretrained, pretrain
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def _unlabeled(tmp_path: Path, n: int = 400) -> str:
    path = tmp_path / "unlabeled.npz"
    np.savez(path, x=load_digits().images[:n].reshape(-1, 1, 8, 8) / 16.0)
    return str(path)


def test_pretrain_then_a_linear_probe_of_the_frozen_features(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pre"
    code = main(["pretrain", "lenet5", "--task", "npz", "--task-option", f"path={_unlabeled(tmp_path)}",
                 "--pretext", "contrastive", "--option", "dim=32", "--epochs", "1", "--train", "optimizer=adam",
                 "--train", "lr=0.003", "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "pretrained (contrastive, 1 epochs" in text and "weights reload" in text
    record = json.loads((out / PRETRAIN_FILE).read_text())
    assert record["labeled"] is False and record["source"] == "reference lenet5"
    assert record["metrics"]["contrastive_loss"] > 0 and len(record["history"]) == 1
    weights = torch.load(out / "pretrained" / "weights.pt", weights_only=True)
    head = [k for k in weights if k.startswith("classifier.") and k.endswith("weight")]
    assert weights[head[-1]].shape[0] == 32  # the pretext head's last layer: the first projection layer

    probe = finetune(out, task="digits", task_options={"limit": 300}, mode="features", epochs=1, formats="json,weights",
                     out=tmp_path / "probe", train_settings={"optimizer": "adam", "lr": 0.01})
    p = probe.provenance
    assert probe.ok and p["mode"] == "features" and p["frozen_unchanged"]
    body = {k for k in weights if not k.startswith("classifier.")}
    assert body and body <= set(p["copied"]) | set(p["adapted"])  # every pretrained tensor but the head's
    assert set(head) <= set(p["reinit"])
    assert 10 < p["scores"]["val_acc"] <= 100


def test_pretrain_refuses_what_it_cannot_use_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--pretext = 'jigsaw': choose one of rotation, contrastive, masked"):
        pretrain("lenet5", task="digits", pretext="jigsaw", out=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"SOURCE 'lenet9': not a reference model"):
        pretrain("lenet9", task="digits", pretext="rotation", out=tmp_path / "b")
    with pytest.raises(ConfigError, match=r"pretext = 'rotation' needs image data, but the task holds sequence"):
        pretrain("gru", task="italy_power", pretext="rotation", out=tmp_path / "c")
    assert not any((tmp_path / name).exists() for name in "abc")


def test_export_of_a_label_free_search_is_pretrained_again_and_reproduces(tmp_path: Path) -> None:
    cfg = parse_config({
        "name": "ssl_export", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "strategy": {"name": "random"},
        "evaluator": {"name": "ssl", "task": "npz", "task_options": {"path": _unlabeled(tmp_path, 300)},
                      "train": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "threads": 1,
                                "device": "cpu"},
                      "options": {"pretext": "masked"}},
        "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    try:
        ranked = exp.run()
    finally:
        exp.close()
    assert main(["export", str(tmp_path / "exp"), "--quiet"]) == 0  # `nas export` takes the ssl path
    manifest = json.loads((tmp_path / "exp" / "export" / "manifest.json").read_text())
    assert manifest["pretrained"]["pretext"] == "masked"
    report = export_pretrained(tmp_path / "exp", top=1)  # again, from Python: the same trial, reproduced
    (model,) = report.manifest["models"]
    assert report.ok and model["trial_id"] == ranked[0].id and model["metrics"]["reproduced"]
    assert model["metrics"]["search_score"] == ranked[0].score
    info = json.loads((report.out / model["files"]["info"]["path"]).read_text())
    assert info["pretext"] == "masked" and info["num_classes"] == 64  # the reconstruction of an 8x8 image
