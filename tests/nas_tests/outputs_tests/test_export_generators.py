"""Export of searched generators (the gan evaluator), verified like any export: a GAN search on real digits (8x8, a
few steps), class-conditional and not, its best generator trained again (reproducing the stored sample grid), written
as TorchScript, ONNX, model.py and weights (a conditional one with one packed input ``[z, one_hot(y)]``), and
reloaded in fresh processes that must give the same images from the same fixed latent vectors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.cli import main
from nas.outputs.export import generator_inputs
from nas.outputs.loading import load_model
from search_spaces import get_space

OPTIONS = {"steps": 3, "batch_size": 16, "disc_width": 8, "eval_samples": 100, "feature_epochs": 1,
           "collapse_ratio": 0.0, "diversity_samples": 32, "grid_samples": 10, "device": "cpu"}


def test_packed_input_gives_the_labelled_images() -> None:
    space = get_space("gan", C=4, latent_dim=8, conditional=True)
    model = space.build_model(space.sample(np.random.default_rng(0)), (1, 8, 8), 10).eval()
    x = generator_inputs(model, 10, n=20)
    assert x.shape == (20, 18) and model.input_size == 18
    z, y = x[:, :8], x[:, 8:].argmax(1)
    assert y.tolist() == [i % 10 for i in range(20)]
    with torch.no_grad():
        assert torch.allclose(model(x), model(z, y), atol=1e-6)


def _search_and_export(tmp_path: Path, name: str, space_options: dict[str, object], trials: int) -> Path:
    """A random search of ``trials`` gan-space candidates on digits, run and exported (rank 1) through the CLI,
    checked to be a reproduced generator verified in every format in a fresh process; its export folder."""
    cfg = {"name": name, "seed": 0, "space": {"name": "gan", "options": space_options},
           "strategy": {"name": "random"}, "evaluator": {"name": "gan", "task": "digits", "options": OPTIONS},
           "budget": {"max_trials": trials}, "execution": {"executor": "local", "workers": 1}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    assert main(["search", str(path), "--out", str(tmp_path / "exp"), "--quiet"]) == 0
    assert main(["export", str(tmp_path / "exp"), "--top", "1"]) == 0
    (entry,) = json.loads((tmp_path / "exp" / "export" / "manifest.json").read_text())["models"]
    assert entry["model_kind"] == "generator" and entry["training"]["reproduced"] is True
    verification = entry["verification"]
    assert verification["ok"] and verification["fresh_process"]
    assert set(verification["formats"]) == {"torchscript", "onnx", "python", "json+weights"}
    assert all(f["ok"] and f["max_abs_diff"] <= 1e-4 for f in verification["formats"].values())
    return tmp_path / "exp" / "export" / f"rank1_trial{entry['trial_id']}"


def test_conditional_gan_search_exports_verified_generators(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = _search_and_export(tmp_path, "cgan", {"C": 4, "latent_dim": 8, "conditional": True}, trials=2)
    info = json.loads((folder / "model.json").read_text())
    assert info["input_shape"] == [18] and info["image_shape"] == [1, 8, 8] and info["conditional"] is True
    model = load_model(folder)  # architecture.json + weights.pt, through the framework
    spec = importlib.util.spec_from_file_location("exported_generator", folder / "model.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # a .py path always has a spec
    spec.loader.exec_module(module)  # type: ignore[union-attr]  # ... and a loader
    plain = module.load(str(folder / "weights.pt"))
    x = generator_inputs(model, 10)
    with torch.no_grad():
        images = model(x)
        assert images.shape == (64, 1, 8, 8) and float(images.abs().max()) <= 1.0
        assert torch.allclose(plain(x), images, atol=1e-5)
    assert "exported generators" in capsys.readouterr().out


def test_unconditional_gan_search_exports_verified_generators(tmp_path: Path) -> None:
    folder = _search_and_export(tmp_path, "gan", {"C": 4, "latent_dim": 8}, trials=1)
    info = json.loads((folder / "model.json").read_text())
    assert info["input_shape"] == [8] and info["conditional"] is False
    # the verified inputs are the fixed latent vectors alone (no labels), those of every trial's sample grid
    assert torch.equal(generator_inputs(load_model(folder), 10),
                       torch.randn(64, 8, generator=torch.Generator().manual_seed(0)))
