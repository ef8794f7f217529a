"""How ``nas finetune`` and ``nas pretrain`` pick the model of an export folder SOURCE (``--trial``), in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.outputs.loading import MANIFEST, export_entry
from nas.outputs.pretrain import pretrain


def _export(folder: Path, models: list[dict]) -> Path:
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"models": models}))
    return folder


def test_the_rank_1_model_or_the_named_trial_is_taken(tmp_path: Path) -> None:
    export = _export(tmp_path / "export", [{"rank": 2, "trial_id": 3}, {"rank": 1, "trial_id": 7}])
    assert export_entry(export, None)["trial_id"] == 7
    assert export_entry(export, 3)["rank"] == 2


def test_a_trial_the_export_lacks_or_an_empty_manifest_is_refused_naming_what_it_holds(tmp_path: Path) -> None:
    export = _export(tmp_path / "export", [{"rank": 1, "trial_id": 7}, {"rank": 2, "trial_id": 3}])
    with pytest.raises(ConfigError, match=r"--trial 5: the export '.*export' holds trials 7, 3; give one of them$"):
        export_entry(export, 5)
    with pytest.raises(ConfigError, match=r"give one of them, or the experiment directory"):
        export_entry(export, 5, ", or the experiment directory to train trial 5 again first")
    with pytest.raises(ConfigError, match=rf"SOURCE '.*empty': its {MANIFEST} lists no model; export again"):
        export_entry(_export(tmp_path / "empty", []), None)


def test_pretrain_refuses_a_trial_its_export_source_lacks_before_training(tmp_path: Path) -> None:
    export = _export(tmp_path / "export", [{"rank": 1, "trial_id": 7}])
    with pytest.raises(ConfigError, match=r"--trial 2: the export '.*export' holds trials 7"):
        pretrain(str(export), task="digits", pretext="rotation", out=tmp_path / "out", trial=2)
    assert not (tmp_path / "out").exists()
