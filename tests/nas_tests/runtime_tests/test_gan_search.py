"""GAN search as a first-class ``nas search``: a ``gan`` config on real digits (8x8, a few generator steps) runs
through the preflight, the runner and the SQLite store on the local executor and on Ray, is ranked by FID (lower is
better) in ``nas search`` / ``nas status``, records mode collapse as FAILED with its reason, and a search killed
mid-way resumes to exactly the trials of an uninterrupted one. A relative feature cache folder (``cache_dir``) is
the config file's folder's (or, for a config made without a file, the experiment directory's), never the working
directory's."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from _experiments import stored
from _ray import quiet_ray

from nas.cli import main
from nas.runtime.config import load_config, parse_config, read_config
from nas.runtime.events import Event, TrialFinished
from nas.runtime.experiment import Experiment

for _key, _value in (("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before Ray is imported and started

#: a few steps of a tiny generator on digits: seconds per trial
OPTIONS = {"steps": 3, "batch_size": 16, "disc_width": 8, "eval_samples": 100, "feature_epochs": 1,
           "collapse_ratio": 0.0, "diversity_samples": 32, "grid_samples": 8, "device": "cpu"}


def gan_config(trials: int = 3, executor: str = "local", **options: Any) -> dict[str, Any]:
    return {"name": "gan_digits", "seed": 0, "space": {"name": "gan", "options": {"C": 4, "latent_dim": 8}},
            "strategy": {"name": "evolution", "options": {"population": 2, "sample_size": 1}},
            "evaluator": {"name": "gan", "task": "digits", "options": {**OPTIONS, **options}},
            "budget": {"max_trials": trials}, "execution": {"executor": executor, "workers": 1}}


def test_gan_search_is_ranked_by_fid_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gan.yaml"
    path.write_text(json.dumps(gan_config()))
    assert main(["search", str(path), "--out", str(tmp_path / "exp"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "by FID against the validation images, lower is better" in out and "not Inception-v3" in out
    exp = Experiment.open(tmp_path / "exp")
    try:
        trials = exp.store.trials()
        ranked = exp.ranking().ranked
    finally:
        exp.close()
    assert len(trials) == 3 and all(t.status == "COMPLETE" for t in trials)
    for t in trials:
        assert t.score == pytest.approx(-t.metrics["fid"]) and t.metrics["fid"] > 0
        assert {"density", "coverage", "train_seconds", "fid_floor", "params"} <= set(t.metrics)
        assert (t.info["metric"], t.info["direction"]) == ("fid", "min")
        assert base64.b64decode(t.info["samples_png"]).startswith(b"\x89PNG")
    fids = [t.metrics["fid"] for t in ranked]
    assert fids == sorted(fids)  # the best trial has the lowest FID
    assert main(["status", str(tmp_path / "exp")]) == 0
    status = capsys.readouterr().out
    lines = status.splitlines()
    header = next(line for line in lines if "rank" in line and "trial" in line)
    assert "-fid" in header and " fid " in header and "coverage" in header
    first = lines[lines.index(header) + 1].split()
    assert int(first[1]) == ranked[0].id and float(first[3]) == pytest.approx(fids[0], abs=0.01)


def test_mode_collapse_is_recorded_failed_with_its_reason(tmp_path: Path) -> None:
    exp = Experiment.create(parse_config(gan_config(trials=1, collapse_ratio=0.99)), tmp_path / "exp")
    try:
        exp.run()
        (t,) = exp.store.trials()
    finally:
        exp.close()
    assert t.status == "FAILED" and t.error is not None and t.error.startswith("mode collapse: sample diversity")
    assert "params" in t.metrics


class KilledError(Exception):
    """Stands for the process dying."""


def test_killed_gan_search_resumes_to_the_uninterrupted_trials(tmp_path: Path) -> None:
    cfg = parse_config(gan_config(trials=4))
    full = Experiment.create(cfg, tmp_path / "full")
    full.run()
    full.close()

    def die_after_two(event: Event) -> None:
        if isinstance(event, TrialFinished) and event.n == 2:
            raise KilledError

    exp = Experiment.create(parse_config(gan_config(trials=4)), tmp_path / "resumed")
    with pytest.raises(KilledError):
        exp.run(progress=die_after_two)
    exp.close()
    assert [r[3] for r in stored(tmp_path / "resumed")] == ["COMPLETE", "COMPLETE"]
    again = Experiment.open(tmp_path / "resumed")
    again.run()
    again.close()
    rows = stored(tmp_path / "resumed")
    assert len(rows) == 4 and rows == stored(tmp_path / "full")


def test_gan_search_on_ray(tmp_path: Path) -> None:
    with quiet_ray(num_cpus=1):
        exp = Experiment.create(parse_config(gan_config(trials=2, executor="ray")), tmp_path / "exp")
        try:
            exp.run()
            trials = exp.store.trials()
        finally:
            exp.close()
    assert len(trials) == 2 and all(t.status == "COMPLETE" and t.metrics["fid"] > 0 for t in trials)
    assert all(t.worker for t in trials)


def test_relative_cache_dir_is_taken_from_the_config_folder_not_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, elsewhere = tmp_path / "configs", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    cfg = gan_config(trials=1, cache_dir="features")
    (folder / "gan.yaml").write_text(json.dumps(cfg))
    monkeypatch.chdir(elsewhere)
    exp = Experiment.create(load_config(folder / "gan.yaml"), tmp_path / "exp")
    try:
        exp.run()
        (t,) = exp.store.trials()
    finally:
        exp.close()
    assert t.status == "COMPLETE"
    assert len(list((folder / "features").glob("featnet-*.pt"))) == 1  # beside the config
    assert not (elsewhere / "features").exists()  # not in the working directory
    # the experiment's copy of the config names the folder, so a resume from anywhere finds the same cache
    assert read_config(tmp_path / "exp" / "config.yaml").evaluator.options["cache_dir"] == str(
        (folder / "features").resolve())


def test_relative_cache_dir_of_a_config_made_without_a_file_is_in_the_experiment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment.create(parse_config(gan_config(trials=1, cache_dir="features")), tmp_path / "exp")
    try:
        evaluator = exp.evaluator
    finally:
        exp.close()
    assert evaluator.cache_dir == (tmp_path / "exp" / "features").resolve()  # type: ignore[attr-defined]  # gan
