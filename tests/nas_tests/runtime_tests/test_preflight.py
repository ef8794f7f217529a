"""The preflight and the other up-front refusals: a mistake a search could see before it started exits 2 with the
field, the value and the fix, before any trial and without creating the experiment directory; a search in which
every trial failed exits 1 and names the most common reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation.evaluators import EVALUATORS, Evaluator, register_evaluator
from nas.evaluation.tasks import load_task
from nas.runtime.config import build, load_config, parse_config
from nas.runtime.experiment import Experiment
from nas.runtime.preflight import check_candidate, check_device_use, preflight
from nas.trials.trial import Result, Trial
from search_spaces import get_space

SPACE = {"name": "nb201", "options": {"C": 4, "N": 1}}


def _config(npz: Path | None = None, **changes: Any) -> dict[str, Any]:
    """A small valid config: nb201 trained on an npz task, local executor (``changes`` replace top-level keys)."""
    cfg: dict[str, Any] = {
        "name": "pre", "seed": 1, "space": SPACE, "strategy": {"name": "random"},
        "evaluator": {"name": "train", "task": "npz", "task_options": {"path": str(npz)} if npz else {},
                      "train": {"epochs": 1, "batch_size": 16}},
        "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1}}
    cfg.update(changes)
    return cfg


def _images(n: int = 60, classes: int = 3, shape: tuple[int, ...] = (3, 8, 8), seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(np.float32), np.arange(n) % classes


def _save(path: Path, **arrays: Any) -> Path:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _search(tmp_path: Path, cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    """Run `nas search` on ``cfg``: (exit code, stderr, the --out directory)."""
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "runs" / "exp"
    code = main(["search", str(config), "--out", str(out), "--quiet"])
    return code, capsys.readouterr().err, out


# -- bad data behind the npz task -------------------------------------------------------------------------------
def _npz_case(writer: Callable[[Path], Any]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        target = tmp / "data.npz"
        writer(target)
        return target
    return make


x_ok, y_ok = _images()
BAD_DATA: dict[str, tuple[Callable[[Path], Any], list[str]]] = {
    "missing file": (lambda p: None, ["does not exist"]),
    "a directory": (lambda p: p.mkdir(), ["is a directory"]),
    "a text file": (lambda p: p.write_text("x,y\n1,2\n"), ["not a readable .npz"]),
    "an empty file": (lambda p: p.write_bytes(b""), ["not a readable .npz"]),
    "a bare npy array": (lambda p: np.save(open(p, "wb"), x_ok), ["single array"]),
    "wrong keys": (lambda p: _save(p, a=x_ok, b=y_ok), ["lacks array(s) ['x', 'y']"]),
    "no y": (lambda p: _save(p, x=x_ok), ["holds unlabeled data (its .npz has no array 'y'", "add the labels"]),
    "mismatched lengths": (lambda p: _save(p, x=x_ok, y=y_ok[:-5]), ["(60, 3, 8, 8)", "(55,)"]),
    "2-d x for a conv space": (lambda p: _save(p, x=x_ok.reshape(60, -1), y=y_ok),
                               ["holds tabular data (192,)", "space 'nb201' builds image models"]),
    "5-d x": (lambda p: _save(p, x=x_ok[..., None], y=y_ok), ["(N, C, H, W)"]),
    "2-d y": (lambda p: _save(p, x=x_ok, y=y_ok[:, None]), ["y", "(60, 1)"]),
    "zero samples": (lambda p: _save(p, x=x_ok[:0], y=y_ok[:0]), ["no samples"]),
    "three samples": (lambda p: _save(p, x=x_ok[:3], y=np.array([0, 1, 1])), ["fewer than 3 samples", "0 (1)"]),
    "one class": (lambda p: _save(p, x=x_ok, y=np.zeros(60, int)), ["1 class(es)", "at least 2"]),
    "a rare class": (lambda p: _save(p, x=x_ok, y=np.r_[np.zeros(58, int), 1, 1]), ["class(es) 1 (2)", "fewer"]),
    "NaN features": (lambda p: _save(p, x=np.where(np.arange(60)[:, None, None, None] == 7, np.nan, x_ok), y=y_ok),
                     ["NaN", "sample 7", "remove or impute"]),
    "inf features": (lambda p: _save(p, x=np.where(x_ok > 2.5, np.inf, x_ok), y=y_ok), ["infinite"]),
    "-inf features": (lambda p: _save(p, x=np.where(x_ok > 2.5, -np.inf, x_ok), y=y_ok), ["infinite"]),
    "string features": (lambda p: _save(p, x=x_ok.astype(str), y=y_ok), ["dtype <U", "must be numeric"]),
    "complex features": (lambda p: _save(p, x=x_ok + 1j, y=y_ok), ["complex", "must be numeric"]),
    "regression targets": (lambda p: _save(p, x=x_ok, y=np.linspace(0, 1, 60)), ["fractional", "regression"]),
    "NaN labels": (lambda p: _save(p, x=x_ok, y=np.where(y_ok == 0, np.nan, y_ok)), ["NaN or infinite label"]),
    "channels-last RGB": (lambda p: _save(p, x=x_ok.transpose(0, 2, 3, 1), y=y_ok),
                          ["channels-last", "channels_last: true"]),
    "channels-last gray": (lambda p: _save(p, x=np.zeros((60, 12, 12, 1)) + np.arange(60)[:, None, None, None],
                                           y=y_ok), ["channels-last", "(60, 12, 12, 1)"]),
    "channels-last RGBA": (lambda p: _save(p, x=np.ones((60, 9, 10, 4)) * y_ok[:, None, None, None], y=y_ok),
                           ["channels-last"]),
    "sequences for an image space": (lambda p: _save(p, x=x_ok.reshape(60, 24, 8), y=y_ok),
                                     ["sequence data", "builds image models"]),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_npz_data_exits_2_before_anything_is_created(case: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    writer, expected = BAD_DATA[case]
    npz = _npz_case(writer)(tmp_path)
    code, err, out = _search(tmp_path, _config(npz), capsys)
    assert code == 2, err
    assert "evaluator.task = 'npz'" in err and "Traceback" not in err
    for text in expected:
        assert text in err, (case, err)
    assert not out.exists() and not out.parent.exists()


# -- task options -------------------------------------------------------------------------------------------------
BAD_OPTIONS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "misspelt option": ({"lmit": 30}, ["evaluator.task_options.lmit", "did you mean 'limit'"]),
    "unknown option": ({"resize": 32}, ["evaluator.task_options.resize", "allowed: path, limit"]),
    "no path": ({"path": None}, ["needs a path"]),
    "path not a string": ({"path": 5}, ["path = 5", "file path"]),
    "val_fraction too large": ({"val_fraction": 0.7}, ["val_fraction = 0.7", "between 0 and 0.5"]),
    "test_fraction zero": ({"test_fraction": 0}, ["test_fraction = 0", "between 0 and 0.5"]),
    "fractions leave no training data": ({"val_fraction": 0.45, "test_fraction": 0.45}, ["at least 20%"]),
    "limit below ten per class": ({"limit": 12}, ["limit", "12"]),
    "limit not a number": ({"limit": "all"}, ["limit", "'all'"]),
    "channels_last not a bool": ({"channels_last": "yes"}, ["channels_last = 'yes'", "true, false"]),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_task_options_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options, expected = BAD_OPTIONS[case]
    npz = _save(tmp_path / "data.npz", x=x_ok, y=y_ok)
    cfg = _config(npz)
    cfg["evaluator"]["task_options"].update(options)
    code, err, out = _search(tmp_path, cfg, capsys)
    assert code == 2, err
    for text in expected:
        assert text in err, (case, err)
    assert not out.parent.exists()


def test_channels_last_option_on_a_sequence_task_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    cfg = _config(space={"name": "rnn"})
    cfg["evaluator"].update(task="italy_power", task_options={"channels_last": True})
    code, err, out = _search(tmp_path, cfg, capsys)
    assert code == 2 and "channels_last = True" in err and "remove the option" in err
    assert not out.parent.exists()


@pytest.mark.parametrize("layout", ["channels_last: true", "channels_last: false"])
def test_channels_last_option_decides_the_layout(layout: str, tmp_path: Path) -> None:
    x = x_ok.transpose(0, 2, 3, 1)  # (60, 8, 8, 3)
    npz = _save(tmp_path / "d.npz", x=x, y=y_ok)
    task = load_task("npz", path=str(npz), channels_last=layout.endswith("true"))
    assert task.input_shape == ((3, 8, 8) if layout.endswith("true") else (8, 8, 3))


# -- objectives and constraints name metrics the evaluator produces ------------------------------------------------
BAD_METRICS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "train: latency": ({"objectives": ["max:score", "min:latency"]},
                       ["objectives[1] = 'min:latency'", "no metric 'latency'", "did you mean 'latency_ms'"]),
    "train: accuracy": ({"objectives": ["max:accuracy"]}, ["objectives[0] = 'max:accuracy'", "val_acc"]),
    "train: a mapping objective": ({"objectives": [{"metric": "size", "direction": "min"}]}, ["no metric 'size'"]),
    "train: constraint": ({"constraints": {"param": {"max": 1000}}},
                          ["constraints.param", "did you mean 'params'"]),
    "train: latency not measured": ({"objectives": ["min:latency_ms"], "evaluator_options": {"latency_runs": 0}},
                                    ["no metric 'latency_ms'", "latency_runs > 0"]),
    "nb201: latency": ({"objectives": ["min:latency_ms"], "evaluator": {"name": "nb201"}},
                       ["'nb201' evaluator produces no metric 'latency_ms'"]),
    "nb201: constraint": ({"constraints": {"train_seconds": {"max": 5}}, "evaluator": {"name": "nb201"}},
                          ["constraints.train_seconds"]),
    "proxy: flops": ({"objectives": ["max:score", "min:flops"],
                      "evaluator": {"name": "proxy", "options": {"proxy": "synflow", "input_shape": [3, 8, 8]}}},
                     ["'proxy' evaluator produces no metric 'flops'", "synflow"]),
}


@pytest.mark.parametrize("case", list(BAD_METRICS))
def test_an_objective_or_constraint_on_a_metric_never_produced_exits_2(case: str, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    changes, expected = BAD_METRICS[case]
    npz = _save(tmp_path / "data.npz", x=x_ok, y=y_ok)
    changes = dict(changes)
    options = changes.pop("evaluator_options", None)
    cfg = _config(npz, **changes)
    if options:
        cfg["evaluator"]["options"] = options
    code, err, out = _search(tmp_path, cfg, capsys)
    assert code == 2, err
    for text in expected:
        assert text in err, (case, err)
    assert not out.parent.exists()


@pytest.mark.parametrize("objectives", [["max:score"], ["max:val_acc", "min:params"], ["min:latency_ms"],
                                        ["max:score", "min:flops"]])
def test_objectives_on_produced_metrics_pass(objectives: list[str], tmp_path: Path) -> None:
    npz = _save(tmp_path / "data.npz", x=x_ok, y=y_ok)
    report = preflight(parse_config(_config(npz, objectives=objectives)))
    assert report.metrics is not None and "val_acc" in report.metrics


# -- the candidate is built and run ------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [5, 6, 7, 9, 11, 13])
def test_odd_and_even_image_sides_pass_the_preflight(side: int, tmp_path: Path) -> None:
    npz = _save(tmp_path / "data.npz", x=np.random.default_rng(side).standard_normal((30, 1, side, side)),
                y=np.arange(30) % 2)
    report = preflight(parse_config(_config(npz)))
    assert report.input_shape == (1, side, side) and report.num_classes == 2 and report.candidate


@pytest.mark.parametrize("space", ["rnn", "transformer"])
def test_a_candidate_that_cannot_run_on_the_input_is_refused(space: str) -> None:
    cfg = parse_config(_config(space={"name": space}, evaluator={"name": "train", "task": "italy_power"}))
    x, y = _images(4, 2)  # image batches for a sequence space
    with pytest.raises(ConfigError, match=rf"space.name = '{space}': a sampled candidate \(seed 1\) cannot "
                                          r"(compile|run forward and backward) for the input \(3, 8, 8\)"):
        check_candidate(cfg, get_space(space), x, y, 2)


def test_the_preflight_leaves_torch_random_state_alone(tmp_path: Path) -> None:
    npz = _save(tmp_path / "data.npz", x=x_ok, y=y_ok)
    cfg = parse_config(_config(npz))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    preflight(cfg)
    torch.testing.assert_close(torch.rand(3), expected)


def test_the_preflight_is_usable_alone_and_writes_nothing(tmp_path: Path) -> None:
    npz = _save(tmp_path / "data.npz", x=x_ok, y=y_ok)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config(npz, output=str(tmp_path / "out"))))
    report = preflight(load_config(path))
    assert report.task == "npz" and report.input_shape == (3, 8, 8) and report.num_classes == 3
    assert "preflight: task npz (3, 8, 8), 3 classes" in report.describe()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "data.npz"]


def test_a_failed_preflight_leaves_the_experiment_it_would_overwrite(tmp_path: Path) -> None:
    npz = _save(tmp_path / "data.npz", x=x_ok, y=y_ok)
    old = Experiment.create(parse_config(_config(npz)), tmp_path / "exp")
    old.close()
    before = sorted(p.name for p in (tmp_path / "exp").iterdir())
    with pytest.raises(ConfigError, match="no metric 'accuracy'"):
        Experiment.create(parse_config(_config(npz, objectives=["max:accuracy"])), tmp_path / "exp", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == before


# -- the config file and the output path --------------------------------------------------------------------------
DUPLICATES = {
    "top-level": ("name: a\nseed: 0\nname: b\n", "'name'", "lines 1 and 3"),
    "nested": ("name: a\nspace:\n  name: nb201\n  options: {}\n  name: darts\n", "'name'", "lines 3 and 5"),
    "flow style": ("name: a\nspace: {name: nb201, name: darts}\n", "'name'", "twice on line 2"),
    "in options": ("name: a\nstrategy:\n  name: evolution\n  options:\n    population: 4\n    population: 8\n",
                   "'population'", "lines 5 and 6"),
    "integer keys": ("name: a\nsearchable:\n  1: [a]\n  1: [b]\n", "1", "lines 3 and 4"),
}


@pytest.mark.parametrize("case", list(DUPLICATES))
def test_duplicate_yaml_keys_are_refused(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, key, where = DUPLICATES[case]
    config = tmp_path / "dup.yaml"
    config.write_text(text)
    assert main(["search", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"key {key} appears twice" in err and where in err and "keep one of them" in err
    assert not (tmp_path / "out").exists()


def test_a_config_path_that_is_a_directory_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    assert main(["search", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "is a directory; give the path of a YAML file" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_a_binary_config_file_exits_2(content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_bytes(content)
    assert main(["search", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "config file" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["file", "file/sub", "file/sub/deeper"])
def test_an_output_path_that_cannot_be_created_exits_2(out: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("not a directory")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_config(evaluator={"name": "nb201"})))
    assert main(["search", str(config), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert f"output directory '{tmp_path / out}'" in err and "file" in err and "choose another --out" in err
    assert (tmp_path / "file").read_text() == "not a directory"


@pytest.mark.parametrize("command", ["status", "report", "export"])
@pytest.mark.parametrize("top", ["0", "-1", "-100", "x", "1.5"])
def test_top_below_one_is_refused(command: str, top: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                  ) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, str(tmp_path / "none"), "--top", top])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--top" in err and "at least 1" in err
    assert not (tmp_path / "none").exists()


# -- every trial failed --------------------------------------------------------------------------------------------
class _AlwaysFails(Evaluator):
    """Fails every trial, with one of two reasons (the second twice as often)."""

    name = "always_fails_test"

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        return Result.failed("disk full" if trial.id % 3 == 0 else "ValueError: the data went away")


@pytest.fixture
def failing() -> Iterator[None]:
    register_evaluator(_AlwaysFails)
    yield
    EVALUATORS.unregister(_AlwaysFails.name)


@pytest.mark.parametrize("command", ["search", "demo"])
def test_a_search_in_which_every_trial_failed_exits_1(command: str, failing: None, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_config(evaluator={"name": "always_fails_test"},
                                             budget={"max_trials": 6})))
    out = tmp_path / "exp"
    args = ["search", str(config)] if command == "search" else ["demo", "--config", str(config), "--no-export"]
    assert main([*args, "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "no completed trial" in captured.out
    assert "every trial failed (6 of 6, none completed)" in captured.err
    assert "most common reason (4 of 6): ValueError: the data went away" in captured.err
    assert main(["resume", str(out), "--max-trials", "7", "--quiet"]) == 1
    assert "every trial failed (7 of 7" in capsys.readouterr().err


def test_memory_format_channels_last_on_a_sequence_task_is_refused(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(space={"name": "rnn"})
    cfg["evaluator"].update(task="italy_power", train={"epochs": 1, "memory_format": "channels_last"})
    code, err, out = _search(tmp_path, cfg, capsys)
    assert code == 2 and "train.memory_format = 'channels_last'" in err and "sequence data" in err, err
    assert not out.parent.exists()


@pytest.mark.parametrize(("execution", "cuda_here", "refused"), [
    ({"executor": "ray", "workers": 2, "gpus_per_trial": 0}, True, "execution.gpus_per_trial = 0"),
    ({"executor": "ray", "workers": 2, "gpus_per_trial": 0.5}, False, None),  # the workers have the GPUs
    ({"executor": "local", "workers": 1}, False, "no CUDA device is visible"),
    ({"executor": "local", "workers": 1}, True, None),
])
def test_fp16_needs_gpus_where_the_trials_run(execution: dict[str, Any], cuda_here: bool, refused: str | None
                                              ) -> None:
    cfg = parse_config(_config(evaluator={"name": "train", "task": "digits",
                                          "train": {"epochs": 1, "precision": "fp16"}}, execution=execution))
    evaluator = build(cfg).evaluator
    if refused is None:
        check_device_use(cfg, evaluator, None, cuda_here=cuda_here)
    else:
        with pytest.raises(ConfigError, match=r"precision = 'fp16' needs .*" + refused + r".*'bf16'"):
            check_device_use(cfg, evaluator, None, cuda_here=cuda_here)


@pytest.mark.parametrize(("execution", "cuda_here", "refused"), [
    ({"executor": "ray", "workers": 2, "gpus_per_trial": 0}, True, "execution.gpus_per_trial = 0"),
    ({"executor": "ray", "workers": 2, "gpus_per_trial": 0.5}, False, None),
    ({"executor": "local", "workers": 1}, False, "no CUDA device is visible"),
    ({"executor": "local", "workers": 1}, True, None),
])
def test_a_constraint_on_peak_gpu_memory_needs_gpus(execution: dict[str, Any], cuda_here: bool, refused: str | None
                                                    ) -> None:
    cfg = parse_config(_config(evaluator={"name": "train", "task": "digits", "train": {"epochs": 1}},
                               execution=execution, constraints={"peak_gpu_memory_mb": {"max": 2000}}))
    evaluator = build(cfg).evaluator
    if refused is None:
        check_device_use(cfg, evaluator, None, cuda_here=cuda_here)
    else:
        with pytest.raises(ConfigError, match=r"names peak_gpu_memory_mb.*" + refused + r".*give the trials GPUs"):
            check_device_use(cfg, evaluator, None, cuda_here=cuda_here)
