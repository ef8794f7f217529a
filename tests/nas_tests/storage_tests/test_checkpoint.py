"""Checkpoints (nas.storage.checkpoint): atomic writes leave no temporary files and never a half-written file; a
missing, corrupt or foreign checkpoint is a ConfigError (CLI exit code 2), never a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from nas.cli import main
from nas.core.errors import ConfigError
from nas.core.io import atomic_write_text
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.storage.checkpoint import CHECKPOINT_VERSION, read_checkpoint, write_checkpoint

STRATEGY = {"strategy": "random", "seed": 0, "next_id": 3, "pending": []}
LOOP = {"done": 3, "elapsed": 1.5, "max_trials": 10}


def test_write_then_read_round_trips_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    for i in range(5):
        write_checkpoint(path, {**STRATEGY, "next_id": i}, LOOP)
    data = read_checkpoint(path)
    assert data == {"version": CHECKPOINT_VERSION, "strategy": {**STRATEGY, "next_id": 4}, "loop": LOOP}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoint.json"
    write_checkpoint(path, STRATEGY, LOOP)
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(path, {**STRATEGY, "next_id": 99}, LOOP)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]


def test_atomic_write_text_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "best.json"
    atomic_write_text(path, "a" * 10000)
    atomic_write_text(path, "short")
    assert path.read_text() == "short" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("content, needle", [
    (b'{"version": 1, "strategy": {', "is corrupt"),           # truncated
    (b"", "is corrupt"),                                       # empty
    (b"\xff\xfe\x00\x01 binary", "is corrupt"),                 # not text
    (b"[1, 2, 3]", "is corrupt"),                              # JSON, but not an object
    (b'{"version": 1}', "is corrupt"),                         # an object without the state
    (b'{"version": 99, "strategy": {}, "loop": {}}', "version 99"),
])
def test_bad_checkpoint_is_a_clear_config_error(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle) as excinfo:
        read_checkpoint(path)
    assert "checkpoint.json" in str(excinfo.value)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint"):
        read_checkpoint(tmp_path / "checkpoint.json")


def _experiment(tmp_path: Path) -> Path:
    cfg = parse_config({"name": "ck", "space": "nb201", "strategy": "random", "evaluator": {"name": "nb201"},
                        "budget": {"max_trials": 4}, "execution": {"executor": "local", "workers": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    exp.run()
    exp.close()
    return tmp_path / "exp"


def test_experiment_checkpoint_is_written_atomically(tmp_path: Path) -> None:
    directory = _experiment(tmp_path)
    names = sorted(p.name for p in directory.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names
    data = read_checkpoint(directory / "checkpoint.json")
    assert data["loop"]["done"] == 4
    assert "max_trials" not in data["loop"]  # the budget has one source: config.yaml
    assert data["strategy"]["inner"]["next_id"] >= 4
    assert yaml.safe_load((directory / "config.yaml").read_text())["name"] == "ck"


def test_resuming_from_a_corrupt_checkpoint_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _experiment(tmp_path)
    text = (directory / "checkpoint.json").read_text()
    (directory / "checkpoint.json").write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError, match="corrupt"):
        Experiment.open(directory)
    assert main(["resume", str(directory)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main(["status", str(directory)]) == 2


def test_checkpoint_is_plain_json(tmp_path: Path) -> None:
    directory = _experiment(tmp_path)
    assert json.loads((directory / "checkpoint.json").read_text())["version"] == CHECKPOINT_VERSION


def test_atomic_writes_give_ordinary_file_permissions(tmp_path):
    import os

    from nas.core.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
    finally:
        os.umask(old)
    assert (tmp_path / "config.yaml").stat().st_mode & 0o777 == 0o644  # readable by others, like any new file


def test_the_trial_budget_has_one_source_and_older_checkpoints_still_resume(tmp_path: Path) -> None:
    directory = _experiment(tmp_path)  # 4 trials done, budget 4
    path = directory / "checkpoint.json"
    data = json.loads(path.read_text())
    data["loop"]["max_trials"] = 2  # checkpoints written before also held the budget (here a stale one)
    atomic_write_text(path, json.dumps(data))
    exp = Experiment.open(directory, max_trials=6)
    try:
        exp.run()
        assert exp.done() == 6
        assert exp.store.meta("config")["budget"]["max_trials"] == 6  # the store's copy follows config.yaml
    finally:
        exp.close()
    assert yaml.safe_load((directory / "config.yaml").read_text())["budget"]["max_trials"] == 6
    assert "max_trials" not in read_checkpoint(path)["loop"]
