"""One-shot defaults that learn: the automatic architecture learning rate moves the op weights within the few
epochs a CPU user runs (DARTS' 3e-4 does not), and a search whose op weights stayed uniform says so in the progress
line, ``nas status`` and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.cli import main
from nas.oneshot.config import DARTS_ARCH_LR, DARTS_ARCH_STEPS, OneShotConfig
from nas.oneshot.job import run_supernet_search
from nas.oneshot.outcome import UNIFORM_ENTROPY, uniform_warning
from nas.oneshot.spec import SupernetSearch
from nas.outputs.report.build import build_report
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from search_spaces import get_space

SPACE = get_space("nb201", C=2, N=1)


def _search(tmp: Path, algorithm: str, seed: int = 0, **options) -> SupernetSearch:
    settings = {"epochs": 3, "batch_size": 32, **options}
    return SupernetSearch(space=SPACE, task="digits", task_options={"limit": 600}, seed=seed,
                          config=OneShotConfig.from_options(algorithm, settings), directory=str(tmp))


def test_the_automatic_arch_lr_is_darts_at_darts_length_and_larger_for_short_searches():
    cfg = OneShotConfig.from_options("darts", {"epochs": 50})
    assert cfg.arch_lr is None
    assert cfg.arch_lr_for(391) == pytest.approx(DARTS_ARCH_LR)  # DARTS' CIFAR-10 search: its own setting
    short = OneShotConfig.from_options("darts", {"epochs": 5})
    assert short.arch_lr_for(12) == pytest.approx(min(0.1, DARTS_ARCH_LR * DARTS_ARCH_STEPS / 60))
    assert OneShotConfig.from_options("darts", {"arch_lr": 0.002}).arch_lr_for(12) == 0.002  # a set value wins


@pytest.mark.parametrize("algorithm", ["darts", "gdas"])
def test_defaults_move_the_op_weights_on_a_short_real_run_and_darts_lr_does_not(tmp_path, algorithm):
    moved = run_supernet_search(_search(tmp_path / "auto", algorithm))
    assert moved.history[-1]["entropy"] < UNIFORM_ENTROPY
    assert moved.history[-1]["arch_lr"] > DARTS_ARCH_LR
    assert moved.uniform_warning is None and "WARNING" not in moved.describe()
    stuck = run_supernet_search(_search(tmp_path / "darts_lr", algorithm, arch_lr=DARTS_ARCH_LR))
    assert stuck.history[-1]["entropy"] >= UNIFORM_ENTROPY  # the behaviour the default used to have
    assert "architecture weights still uniform (entropy" in stuck.describe()
    assert stuck.summary()["uniform"] == stuck.uniform_warning


def test_the_warning_names_the_entropy_and_the_fix():
    assert uniform_warning(None) is None and uniform_warning(0.95) is None
    message = uniform_warning(0.9996)
    assert message is not None and "entropy 1.000" in message and "arch_lr" in message


def test_a_search_that_stayed_uniform_says_so_in_progress_status_and_report(tmp_path, capsys):
    data = {"name": "uniform", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
            "strategy": {"name": "darts", "options": {"epochs": 2, "batch_size": 32, "arch_lr": 1e-6}},
            "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 240},
                          "train": {"epochs": 1, "batch_size": 32}},
            "budget": {"max_trials": 1}, "execution": {"executor": "local", "workers": 1}}
    exp = Experiment.create(parse_config(data), tmp_path / "exp")
    lines: list[str] = []
    exp.run(progress=lambda event: lines.append(str(event)))
    exp.close()
    assert any(line.startswith("supernet epoch 2/2") and "still uniform" in line for line in lines)
    assert any(line.startswith("supernet search done") and "still uniform" in line for line in lines)
    assert main(["status", str(tmp_path / "exp")]) == 0
    assert "WARNING supernet search: architecture weights still uniform" in capsys.readouterr().out
    page = build_report(tmp_path / "exp").path.read_text()
    assert "architecture weights still uniform" in page
