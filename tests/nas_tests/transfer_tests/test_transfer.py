"""``nas.transfer``: tensors that fit are copied (and only those), the input stem adapts to new channels, the head to
new classes; each mode freezes exactly what it says (``requires_grad`` off, and the frozen tensors, batch-norm
statistics included, unchanged by real training on ``digits``); ``full`` trains the body at a scaled learning rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.tasks import Task, load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.transfer import (
    HEAD,
    FreezePlan,
    TransferSpec,
    apply_mode,
    body_units,
    copy_matching,
    frozen_names,
    read_weights,
    resolve_weights,
)
from search_spaces import get_space

SPACE = get_space("nb201", C=4, N=1)
ARCH = SPACE.sample(np.random.default_rng(3))


def _model(shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    with seeded(seed):
        return SPACE.compiler()(ARCH, shape, classes)


@pytest.fixture(scope="module")
def digits() -> Task:
    return load_task("digits", seed=0, limit=300)


def test_copies_exactly_the_tensors_whose_names_and_shapes_match() -> None:
    source, target = _model((1, 8, 8), 10, 1), _model((1, 8, 8), 10, 2)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = copy_matching(target, source.state_dict())
    assert report.reinit == {} and report.adapted == [] and report.unused == []
    assert sorted(report.copied) == sorted(source.state_dict())
    for name, tensor in target.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[name])
    assert any(not torch.equal(fresh[n], source.state_dict()[n]) for n in fresh)  # the copy did something


def test_head_and_stem_adapt_to_new_classes_and_channels() -> None:
    source = _model((3, 16, 16), 10, 1)
    target = _model((1, 8, 8), 4, 2)  # grey images of another size, 4 classes
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = copy_matching(target, source.state_dict())
    state = target.state_dict()
    assert report.adapted == ["stem.0.weight"]  # the RGB kernel summed over its channels
    assert torch.allclose(state["stem.0.weight"], source.state_dict()["stem.0.weight"].sum(1, keepdim=True))
    head = {n for n in state if n.startswith(HEAD + ".")}
    assert set(report.reinit) == head  # the classifier's shape changed: it keeps its fresh weights, listed
    assert all("in the source" in why for why in report.reinit.values())
    for name in head:
        assert torch.equal(state[name], fresh[name])
    assert set(report.copied) == set(state) - head - {"stem.0.weight"}
    # and up: 1 channel -> 3 channels tiles the kernel, scaled to keep the output's scale
    up = _model((3, 8, 8), 10, 4)
    report = copy_matching(up, _model((1, 8, 8), 10, 5).state_dict())
    assert report.adapted == ["stem.0.weight"]
    w = up.state_dict()["stem.0.weight"]
    assert torch.allclose(w[:, 0], w[:, 1]) and torch.allclose(w[:, 1], w[:, 2])


def test_exclude_keeps_a_fitting_head_fresh() -> None:
    source, target = _model((1, 8, 8), 10, 1), _model((1, 8, 8), 10, 2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = copy_matching(target, source.state_dict(), exclude=(HEAD,), reason="new head")
    assert set(report.reinit) == {n for n in before if n.startswith(HEAD + ".")}
    assert set(report.reinit.values()) == {"new head"}
    for n in report.reinit:
        assert torch.equal(target.state_dict()[n], before[n])


def _train_with(mode: TransferSpec, digits: Task, epochs: int = 2) -> tuple[nn.Module, dict, dict, FreezePlan]:
    source = _model((1, 8, 8), 10, 1)
    model = _model((1, 8, 8), 10, 2)
    copied = copy_matching(model, source.state_dict(), exclude=(HEAD,))
    plan = apply_mode(model, mode, copied)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=epochs, batch_size=32, device="cpu", threads=1, restore_best=False)
    train(model, digits, cfg, seed=0, lr_groups=plan.lr_groups, keep_eval=plan.eval_modules)
    return model, before, {k: v for k, v in model.state_dict().items()}, plan


def _changed(before: dict, after: dict) -> set[str]:
    return {n for n in before if not torch.equal(before[n], after[n])}


def test_features_mode_freezes_the_whole_body_and_trains_only_the_head(digits: Task) -> None:
    model, before, after, plan = _train_with(TransferSpec(mode="features"), digits)
    params = dict(model.named_parameters())
    body = {n for n in params if not n.startswith(HEAD + ".")}
    assert set(plan.frozen) == body
    assert all(not params[n].requires_grad for n in body)
    assert all(p.requires_grad for n, p in params.items() if n.startswith(HEAD + "."))
    changed = _changed(before, after)
    assert changed and all(n.startswith(HEAD + ".") for n in changed)  # batch-norm statistics included
    assert set(frozen_names(model, plan)) == {n for n in before if not n.startswith(HEAD + ".")}


def test_partial_mode_freezes_the_stem_and_the_first_k_cells(digits: Task) -> None:
    model = _model((1, 8, 8), 10, 2)
    stem, cells, tail = body_units(model)
    assert [n for n, _ in stem] == ["stem"] and [n for n, _ in tail] == ["lastact"] and len(cells) == 5
    model, before, after, plan = _train_with(TransferSpec(mode="partial", freeze=2), digits)
    frozen_prefixes = ("stem.", "body.0.", "body.1.")
    params = dict(model.named_parameters())
    assert set(plan.frozen) == {n for n in params if n.startswith(frozen_prefixes)}
    for name, p in params.items():
        assert p.requires_grad == (not name.startswith(frozen_prefixes)), name
    changed = _changed(before, after)
    assert not any(n.startswith(frozen_prefixes) for n in changed)  # nothing frozen moved, statistics included
    assert any(n.startswith("body.3.") for n in changed) and any(n.startswith(HEAD + ".") for n in changed)


def test_full_mode_trains_everything_with_a_slower_body(digits: Task) -> None:
    model, before, after, plan = _train_with(TransferSpec(mode="full", body_lr_scale=0.1), digits, epochs=1)
    assert plan.frozen == [] and all(p.requires_grad for p in model.parameters())
    (body, scale), = plan.lr_groups
    assert scale == 0.1 and len(body) == sum(1 for n, _ in model.named_parameters() if not n.startswith(HEAD))
    changed = _changed(before, after)
    assert any(n.startswith("stem.") for n in changed) and any(n.startswith(HEAD + ".") for n in changed)


def test_a_reinitialised_tensor_in_a_frozen_unit_is_trained_not_frozen() -> None:
    source = _model((3, 8, 8), 10, 1)
    model = _model((2, 8, 8), 10, 2)  # 3 -> 2 channels: the stem kernel is adapted (tiled), so it is loaded
    report = copy_matching(model, {k: v for k, v in source.state_dict().items() if k != "stem.1.weight"})
    plan = apply_mode(model, TransferSpec(mode="features"), report)
    assert "stem.1" in plan.kept_trainable  # its weight was not in the source
    assert model.stem[1].weight.requires_grad and not model.stem[0].weight.requires_grad


def test_bad_specs_name_the_field_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"--mode = 'featurs': choose one of full, features, partial.*features"):
        TransferSpec(mode="featurs")
    with pytest.raises(ConfigError, match=r"--mode = 'partial' needs --freeze K"):
        TransferSpec(mode="partial")
    with pytest.raises(ConfigError, match=r"--freeze = -1: give a whole number"):
        TransferSpec(mode="partial", freeze=-1)
    with pytest.raises(ConfigError, match=r"--freeze = 2 applies to mode 'partial' only"):
        TransferSpec(mode="full", freeze=2)
    with pytest.raises(ConfigError, match=r"--body-lr-scale = 0: give a fraction in \(0, 1\]"):
        TransferSpec(mode="full", body_lr_scale=0)
    with pytest.raises(ConfigError, match=r"evaluator.init_body_lr_scale = 0.5 applies to mode 'full' only"):
        TransferSpec(mode="features", body_lr_scale=0.5, where="evaluator.init_")
    model = _model((1, 8, 8), 10, 2)
    with pytest.raises(ConfigError, match=r"--freeze = 6: the network has 5 cells after its stem .*give 0 to 5"):
        apply_mode(model, TransferSpec(mode="partial", freeze=6), copy_matching(model, {}))


def test_read_weights_accepts_files_and_folders_and_refuses_the_rest(tmp_path: Path) -> None:
    state = _model((1, 8, 8), 10, 1).state_dict()
    torch.save(state, tmp_path / "w.pt")
    loaded, file, digest = read_weights(tmp_path / "w.pt")
    assert file == tmp_path / "w.pt" and len(digest) == 64 and loaded.keys() == state.keys()
    folder = tmp_path / "model"
    folder.mkdir()
    torch.save(state, folder / "weights.pt")
    assert resolve_weights(folder) == folder / "weights.pt"
    with pytest.raises(ConfigError, match=r"init_from = '.*nowhere': no such file or folder"):
        read_weights(tmp_path / "nowhere")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match=r"junk.pt cannot be read with torch.load\(weights_only=True\)"):
        read_weights(tmp_path / "junk.pt")
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # objects: weights_only refuses them
    with pytest.raises(ConfigError, match=r"pickled.pt cannot be read"):
        read_weights(tmp_path / "pickled.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ConfigError, match=r"holds list, not a state_dict"):
        read_weights(tmp_path / "list.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"a folder without manifest.json or weights.pt"):
        read_weights(tmp_path / "empty", "evaluator.init_from")
