"""The supernet search (described by nas.oneshot.spec, run by nas.oneshot.job): settings validation naming the
field, per-epoch records and checkpoints, resumption mid-search with identical architecture parameters (DARTS 2nd
order, GDAS with its Gumbel generator, beta-DARTS), the collapse guard (warn, stop with the last healthy alphas,
regularize), a diverging search recorded as such, and a checkpoint from other settings refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError
from nas.oneshot.config import OneShotConfig
from nas.oneshot.job import run_supernet_search
from nas.oneshot.spec import SupernetSearch
from search_spaces import get_space

SPACE = get_space("nb201", C=4, N=1)
SMALL = {"C": 2, "N": 1}
TASK = {"limit": 240}


def search(tmp: Path, algorithm: str = "darts", **options) -> SupernetSearch:
    settings = {"epochs": 3, "batch_size": 32, "space_options": SMALL, "arch_lr": 0.01, **options}
    return SupernetSearch(space=SPACE, task="digits", task_options=TASK, seed=3,
                          config=OneShotConfig.from_options(algorithm, settings), directory=str(tmp))


class KillError(Exception):
    """Stands in for the process dying right after an epoch's checkpoint was written."""


@pytest.mark.parametrize(("option", "value", "message"), [
    ("epochs", 0, "strategy.options.epochs = 0: must be an integer >= 1"),
    ("order", 3, "strategy.options.order = 3: must be an integer in 1..2"),
    ("train_portion", 1.5, r"strategy.options.train_portion = 1.5: must be a number in \[0.05, 0.95\]"),
    ("collapse_action", "panic", "strategy.options.collapse_action = 'panic': expected one of warn, stop"),
    ("device", "tpu", "strategy.options.device = 'tpu'"),
    ("edge_normalization", "yes", "strategy.options.edge_normalization = 'yes': must be true or false"),
    ("space_options", [1], "strategy.options.space_options = \\[1\\]: must be a mapping"),
    ("epoch", 3, "strategy.options.epoch is not an option of darts \\(did you mean 'epochs'\\?\\)"),
])
def test_bad_settings_name_the_field_and_the_fix(option, value, message):
    with pytest.raises(ConfigError, match=message):
        OneShotConfig.from_options("darts", {option: value})


def test_gdas_is_first_order_only():
    with pytest.raises(ConfigError, match="gdas samples one path per step and is first order"):
        OneShotConfig.from_options("gdas", {"order": 2})


def test_search_records_every_epoch_and_derives_a_member_of_the_configured_space(tmp_path):
    epochs_seen = []
    out = run_supernet_search(search(tmp_path), lambda r: epochs_seen.append(r["epoch"]))
    assert epochs_seen == [0, 1, 2] and out.epochs_run == 3 and out.stopped is None
    arch = out.arch
    assert SPACE.contains(arch)  # C=4 space, though the supernet was the C=2 proxy
    assert arch == SPACE.decode(get_space("nb201", **SMALL).encode(get_space("nb201", **SMALL).derive(
        {k: np.asarray(v) for k, v in out.alphas.items()})))
    record = out.history[-1]
    for key in ("train_loss", "train_acc", "search_val_loss", "search_val_acc", "param_free_share", "entropy", "lr"):
        assert np.isfinite(record[key]), key
    assert out.cpu_seconds > 0 and out.wall_seconds > 0
    assert json.loads((tmp_path / "history.json").read_text()) == out.history
    assert json.loads((tmp_path / "result.json").read_text()) == out.to_dict()
    # the checkpoint is plain tensors and containers: loadable without unpickling code
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["state"]["epoch"] == 3
    # the architecture parameters moved away from their initial values
    assert max(abs(np.asarray(v)).max() for v in out.alphas.values()) > 0.01


@pytest.mark.parametrize(("algorithm", "options"), [("darts", {"order": 2}), ("gdas", {}), ("beta_darts", {})])
def test_resume_mid_search_gives_identical_alphas_and_history(tmp_path, algorithm, options):
    straight = run_supernet_search(search(tmp_path / "straight", algorithm, epochs=4, **options))

    def kill_after_second(record):
        if record["epoch"] == 1:
            raise KillError

    interrupted = search(tmp_path / "resumed", algorithm, epochs=4, **options)
    with pytest.raises(KillError):
        run_supernet_search(interrupted, kill_after_second)
    assert len(interrupted.read_history()) == 2
    seen = []
    resumed = run_supernet_search(search(tmp_path / "resumed", algorithm, epochs=4, **options),
                                  lambda r: seen.append(r["epoch"]))
    assert seen == [2, 3]  # continued from the saved epoch
    assert resumed.final_alphas == straight.final_alphas  # bit-identical (JSON floats)
    strip = [{k: v for k, v in h.items()} for h in straight.history]
    assert resumed.history == strip and resumed.arch == straight.arch


def test_a_finished_search_run_again_returns_the_same_outcome_without_training(tmp_path):
    first = run_supernet_search(search(tmp_path))
    again = run_supernet_search(search(tmp_path), lambda r: pytest.fail("trained again"))
    assert again.final_alphas == first.final_alphas and again.history == first.history


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    run_supernet_search(search(tmp_path, epochs=1))
    with pytest.raises(ConfigError, match="written by a search with other settings; delete"):
        run_supernet_search(search(tmp_path, epochs=1, lr=0.1))


def test_an_unreadable_checkpoint_is_named_with_the_fix(tmp_path):
    run_supernet_search(search(tmp_path, epochs=1))
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"checkpoint.pt cannot be read .*delete .* to start the supernet search"):
        run_supernet_search(search(tmp_path, epochs=1))


def test_collapse_guard_warns_every_collapsed_epoch(tmp_path):
    out = run_supernet_search(search(tmp_path, collapse_threshold=0.0, collapse_warmup=1))
    assert len(out.warnings) == 2 and "parameter-free" in out.warnings[0]
    assert "warning" not in out.history[0] and "warning" in out.history[1]
    assert out.stopped is None and out.epochs_run == 3


def test_collapse_guard_stop_derives_from_the_last_healthy_epoch(tmp_path):
    out = run_supernet_search(search(tmp_path, collapse_threshold=0.0, collapse_warmup=1, collapse_action="stop"))
    assert out.epochs_run == 2 and out.stopped.startswith("collapse guard: epoch 1")
    assert out.alphas != out.final_alphas  # the epoch-0 alphas, not the collapsed ones
    proxy = get_space("nb201", **SMALL)
    healthy = proxy.derive({k: np.asarray(v) for k, v in out.alphas.items()})
    assert healthy.canonical_hash() == out.history[0]["derived_hash"]
    assert out.arch == SPACE.decode(proxy.encode(healthy))


def test_collapse_guard_regularize_switches_on_beta_decay(tmp_path):
    out = run_supernet_search(search(tmp_path, collapse_threshold=0.0, collapse_warmup=1,
                                     collapse_action="regularize", beta_weight=0.5))
    weights = [h["reg_weight"] for h in out.history]
    assert weights[0] == 0.0 and weights[1] == 0.0 and weights[2] >= 1.0  # boosted after the first collapsed epoch


def test_beta_darts_weight_grows_linearly(tmp_path):
    out = run_supernet_search(search(tmp_path, "beta_darts", beta_weight=4.0))
    assert [h["reg_weight"] for h in out.history] == [0.0, 2.0, 4.0]


def test_gdas_anneals_the_temperature(tmp_path):
    out = run_supernet_search(search(tmp_path, "gdas", tau_max=10.0, tau_min=1.0))
    assert [h["tau"] for h in out.history] == [10.0, 5.5, 1.0]


def test_a_diverging_search_is_stopped_and_said_so(tmp_path):
    out = run_supernet_search(search(tmp_path, lr=1e12, grad_clip=1e30, momentum=0.0))
    assert out.stopped is not None and out.stopped.startswith("diverged in epoch")
    assert SPACE.contains(out.arch)


def test_pc_darts_with_edge_normalization_searches_the_darts_space(tmp_path):
    space = get_space("darts", C=4, layers=3, steps=2)
    config = OneShotConfig.from_options("darts", {"epochs": 1, "batch_size": 32, "partial_channels": 2,
                                                  "edge_normalization": True})
    out = run_supernet_search(SupernetSearch(space=space, task="digits", task_options={"limit": 200}, seed=0,
                                             config=config, directory=str(tmp_path)))
    assert set(out.alphas) == {"normal", "reduce", "normal.edges", "reduce.edges"}
    assert space.contains(out.arch)


@pytest.mark.parametrize(("value", "message"), [
    ("fp16", r"precision = 'fp16': choose from fp32, bf16; fp16 needs loss scaling.*use bf16"),
    ("bf61", r"precision = 'bf61': choose from fp32, bf16 \(did you mean 'bf16'\?\)"),
])
def test_precision_is_fp32_or_bf16(value, message):
    with pytest.raises(ConfigError, match=message):
        OneShotConfig.from_options("darts", {"precision": value})


@pytest.mark.parametrize("order", [1, 2])
def test_a_bf16_search_runs_its_forward_passes_in_bf16_and_tracks_fp32(tmp_path, order):
    records = {}
    for precision in ("fp32", "bf16"):
        out = run_supernet_search(search(tmp_path / precision, epochs=2, order=order, precision=precision,
                                         device="cpu"))
        assert out.epochs_run == 2 and out.stopped is None
        records[precision] = out.history
    for a, b in zip(records["fp32"], records["bf16"]):
        assert all(np.isfinite(b[k]) for k in ("train_loss", "search_val_loss"))
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
        assert b["search_val_loss"] == pytest.approx(a["search_val_loss"], rel=0.05)
    # close, but not the same numbers: the bf16 search's passes really ran in bfloat16
    assert [r["train_loss"] for r in records["fp32"]] != [r["train_loss"] for r in records["bf16"]]
