"""Tasks (nas.evaluation.tasks): offline loading, shapes, disjoint stratified seed-stable splits, train-only
standardisation,
``limit``, the optional cifar10 task and user ``.npz`` files."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nas.core.errors import ConfigError, UnknownNameError
from nas.evaluation.tasks import Task, list_tasks, load_task, order_splits, split_shuffled, split_stratified

# name: (kind, input shape, classes, samples in the pooled dataset)
OFFLINE = {
    "digits": ("image", (1, 8, 8), 10, 1797),
    "mnist": ("image", (1, 28, 28), 10, 5000),
    "mnist32": ("image", (1, 32, 32), 10, 5000),
    "mnist1d": ("sequence", (40, 1), 10, 5000),
    "italy_power": ("sequence", (24, 1), 2, 1096),
    "gunpoint": ("sequence", (150, 1), 2, 200),
    "arrowhead": ("sequence", (251, 1), 3, 211),
    "basic_motions": ("sequence", (100, 6), 4, 80),
    "breast_cancer": ("tabular", (30,), 2, 569),
    "wine": ("tabular", (13,), 3, 178),
}


def _proportions(y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(y, minlength=num_classes) / len(y)


def _assert_stratified(task: Task) -> None:
    y_all = np.concatenate([task.y_train, task.y_val, task.y_test])
    overall = _proportions(y_all, task.num_classes)
    for split in (task.y_train, task.y_val, task.y_test):
        # per-class counts are rounded, so allow about one sample of slack per split
        tol = 0.01 + 1.0 / len(split)
        np.testing.assert_allclose(_proportions(split, task.num_classes), overall, atol=tol)


def test_list_tasks_names_every_documented_task():
    assert set(list_tasks()) == {*OFFLINE, "diabetes", "cifar10", "npz"}


@pytest.mark.parametrize("name", list(OFFLINE))
def test_offline_task_loads_with_documented_shape_classes_and_splits(name):
    kind, shape, classes, total = OFFLINE[name]
    task = load_task(name, seed=0)
    assert task.name == name
    assert task.kind == kind
    assert task.input_shape == shape
    assert task.num_classes == classes == len(task.classes)
    for x, y in ((task.x_train, task.y_train), (task.x_val, task.y_val), (task.x_test, task.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), *shape)
        assert len(y) > 0
        assert np.isfinite(x).all()
    # the three splits partition the pooled dataset
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == total
    assert set(np.unique(task.y_train)) == set(range(classes))
    assert abs(len(task.y_val) - 0.15 * total) <= classes
    assert abs(len(task.y_test) - 0.15 * total) <= classes
    _assert_stratified(task)
    assert name in task.describe() and str(classes) in task.describe()


def test_unknown_task_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        load_task("digit")


# -- split_stratified on the index level -----------------------------------------------------------------
def _labels() -> np.ndarray:
    rng = np.random.default_rng(123)
    return rng.choice(5, size=1000, p=[0.4, 0.3, 0.15, 0.1, 0.05])


def test_split_indices_are_disjoint_and_cover_everything():
    y = _labels()
    train, val, test = split_stratified(y, (0.7, 0.15, 0.15), seed=3)
    assert len(train) + len(val) + len(test) == len(y)
    assert not set(train) & set(val)
    assert not set(train) & set(test)
    assert not set(val) & set(test)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    for part in (train, val, test):
        assert len(np.unique(part)) == len(part)  # no index twice inside a split either


def test_split_indices_are_stratified():
    y = _labels()
    overall = _proportions(y, 5)
    for part in split_stratified(y, (0.7, 0.15, 0.15), seed=3):
        np.testing.assert_allclose(_proportions(y[part], 5), overall, atol=0.01 + 1.0 / len(part))


def test_split_indices_are_seed_stable():
    y = _labels()
    a = split_stratified(y, (0.7, 0.15, 0.15), seed=11)
    b = split_stratified(y, (0.7, 0.15, 0.15), seed=11)
    c = split_stratified(y, (0.7, 0.15, 0.15), seed=12)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
    assert any(not np.array_equal(pa, pc) for pa, pc in zip(a, c))


def test_tiny_classes_get_one_sample_in_every_split():
    y = np.array([0] * 3 + [1] * 50)
    train, val, test = split_stratified(y, (0.7, 0.15, 0.15), seed=0)
    for part in (train, val, test):
        assert 0 in set(y[part])


# -- load_task: seeds and standardisation ----------------------------------------------------------------
def test_same_seed_gives_identical_arrays_and_another_seed_another_split():
    a = load_task("digits", seed=5)
    b = load_task("digits", seed=5)
    c = load_task("digits", seed=6)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.x_val.shape == c.x_val.shape  # same sizes, different members
    assert not np.array_equal(a.x_val, c.x_val)
    assert not np.array_equal(a.y_train, c.y_train) or not np.array_equal(a.x_train, c.x_train)


def test_standardisation_uses_train_statistics_only():
    from sklearn.datasets import load_digits

    task = load_task("digits", seed=4)
    # the train split is standardised: mean ~0 and std ~1
    assert abs(float(task.x_train.mean())) < 1e-4
    assert abs(float(task.x_train.std()) - 1.0) < 1e-3
    # recompute independently: statistics of the raw train split applied to every split
    raw = (load_digits().images.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    y = load_digits().target
    labels = np.unique(y, return_inverse=True)[1]
    train, val, test = order_splits(split_stratified(labels, (0.7, 0.15, 0.15), seed=4), seed=4, y=labels)
    mean = raw[train].mean(axis=(0, 2, 3), keepdims=True)
    std = raw[train].std(axis=(0, 2, 3), keepdims=True) + 1e-6
    np.testing.assert_allclose(task.x_train, (raw[train] - mean) / std, atol=1e-4)
    np.testing.assert_allclose(task.x_val, (raw[val] - mean) / std, atol=1e-4)
    np.testing.assert_allclose(task.x_test, (raw[test] - mean) / std, atol=1e-4)
    # the held-out splits' own mean is not forced to zero (statistics did not leak from them)
    assert abs(float(task.x_val.mean())) > 1e-4 or abs(float(task.x_test.mean())) > 1e-4


def test_sequence_standardisation_is_per_feature():
    task = load_task("basic_motions", seed=0)
    np.testing.assert_allclose(task.x_train.mean(axis=(0, 1)), np.zeros(6), atol=1e-4)
    np.testing.assert_allclose(task.x_train.std(axis=(0, 1)), np.ones(6), atol=1e-3)


# -- the stored order of the splits ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "digits"])
def test_a_prefix_of_every_split_holds_many_classes(name: str) -> None:
    """mnist's source is ordered by class: a split in that order would give a prefix of one class."""
    task = load_task(name, seed=0)
    for split in (task.y_train, task.y_val, task.y_test):
        assert len(np.unique(split[:20])) >= 8
        assert len(np.unique(split[:50])) == task.num_classes
    assert not np.array_equal(load_task(name, seed=1).y_test, task.y_test)  # the order follows the seed


def test_the_order_keeps_the_members_of_each_split_and_is_seeded() -> None:
    y = np.repeat(np.arange(5), 40)  # ordered by class, as mnist's source
    splits = split_stratified(y, (0.7, 0.15, 0.15), seed=2)
    ordered = order_splits(splits, seed=2, y=y)
    for before, after in zip(splits, ordered):
        np.testing.assert_array_equal(np.sort(after), before)
        assert len(np.unique(y[after][:10])) == 5  # a prefix as long as two per class holds them all
    for a, b in zip(ordered, order_splits(splits, seed=2, y=y)):
        np.testing.assert_array_equal(a, b)
    plain = order_splits(split_shuffled(200, (0.7, 0.15, 0.15), seed=2), seed=2)  # regression, unlabeled
    assert sorted(np.concatenate(plain)) == list(range(200)) and not np.array_equal(plain[0], np.sort(plain[0]))


# -- limit -----------------------------------------------------------------------------------------------
def test_limit_keeps_a_stratified_subset():
    full = load_task("mnist", seed=0)
    small = load_task("mnist", seed=0, limit=500)
    total = len(small.y_train) + len(small.y_val) + len(small.y_test)
    assert abs(total - 500) <= small.num_classes  # per-class rounding
    assert small.num_classes == full.num_classes and small.input_shape == full.input_shape
    y_full = np.concatenate([full.y_train, full.y_val, full.y_test])
    y_small = np.concatenate([small.y_train, small.y_val, small.y_test])
    np.testing.assert_allclose(_proportions(y_small, 10), _proportions(y_full, 10), atol=0.01)
    _assert_stratified(small)
    again = load_task("mnist", seed=0, limit=500)
    np.testing.assert_array_equal(small.x_train, again.x_train)


def test_limit_at_or_above_the_dataset_size_keeps_everything():
    task = load_task("gunpoint", seed=0, limit=10_000)
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 200


@pytest.mark.parametrize("limit", [5, 19, 0, -100, 2.5, True, "100"])
def test_bad_limit_raises(limit):
    with pytest.raises(ConfigError, match="limit"):
        load_task("digits", limit=limit)


# -- fractions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, field",
    [
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 0.5}, "val_fraction"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"test_fraction": 0.9}, "test_fraction"),
        ({"test_fraction": "0.1"}, "test_fraction"),
        ({"test_fraction": None}, "test_fraction"),
    ],
)
def test_bad_fractions_raise_naming_the_field(options, field):
    with pytest.raises(ConfigError, match=field):
        load_task("digits", **options)


def test_custom_fractions_are_used():
    task = load_task("digits", seed=0, val_fraction=0.1, test_fraction=0.2)
    total = 1797
    assert abs(len(task.y_val) - 0.1 * total) <= 10
    assert abs(len(task.y_test) - 0.2 * total) <= 10


# -- cifar10 ---------------------------------------------------------------------------------------------
def test_cifar10_without_torchvision_names_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now fails
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ConfigError, match="torchvision"):
        load_task("cifar10")


# -- npz -------------------------------------------------------------------------------------------------
def _images(n: int = 60, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 2, 5, 4)) + y[:, None, None, None]
    return x, y


def test_npz_images_load(tmp_path):
    x, y = _images()
    path = tmp_path / "images.npz"
    np.savez(path, x=x, y=y)
    task = load_task("npz", path=str(path), seed=0)
    assert task.kind == "image"
    assert task.input_shape == (2, 5, 4)
    assert task.num_classes == 3
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 60
    assert task.x_train.dtype == np.float32
    np.testing.assert_allclose(task.x_train.mean(axis=(0, 2, 3)), np.zeros(2), atol=1e-5)
    _assert_stratified(task)


def test_npz_sequences_with_string_labels_load(tmp_path):
    rng = np.random.default_rng(1)
    y = np.array(["up", "down"] * 20)
    x = rng.normal(size=(40, 12, 3)).astype(np.float32)
    path = tmp_path / "seq.npz"
    np.savez(path, x=x, y=y)
    task = load_task("npz", path=str(path))
    assert task.kind == "sequence"
    assert task.input_shape == (12, 3)
    assert task.classes == ("down", "up")
    assert task.num_classes == 2


def test_npz_without_path_raises():
    with pytest.raises(ConfigError, match="needs a path"):
        load_task("npz")


def test_npz_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_task("npz", path=str(tmp_path / "nothing.npz"))


def test_npz_missing_y_names_the_missing_array(tmp_path):
    x, _ = _images()
    path = tmp_path / "no_y.npz"
    np.savez(path, x=x, labels=np.zeros(60))
    with pytest.raises(ConfigError, match=r"holds unlabeled data \(its .npz has no array 'y'") as err:
        load_task("npz", path=str(path))
    assert "labels" in str(err.value)  # lists what the file has


@pytest.mark.parametrize(
    "x_shape, y_shape",
    [((60,), (60,)), ((60, 2, 3, 4, 5), (60,)), ((60, 2, 5, 4), (59,)), ((60, 5, 4), ())],
)
def test_npz_wrong_shapes_raise(tmp_path, x_shape, y_shape):
    path = tmp_path / "shapes.npz"
    np.savez(path, x=np.zeros(x_shape), y=np.zeros(y_shape, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"x must be \(N, C, H, W\) images, \(N, T, C\) sequences or \(N, F\)"):
        load_task("npz", path=str(path))


def test_npz_labels_of_two_columns_are_refused_for_classification(tmp_path):
    path = tmp_path / "shapes.npz"
    np.savez(path, x=np.zeros((60, 2, 5, 4)), y=np.zeros((60, 1), dtype=np.int64))
    with pytest.raises(ConfigError, match=r"one label per sample, shape \(60,\)"):
        load_task("npz", path=str(path))


def test_npz_tables_are_tabular_tasks(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "table.npz"
    np.savez(path, x=rng.normal(3.0, 2.0, (60, 5)), y=np.arange(60) % 3)
    task = load_task("npz", path=str(path))
    assert task.kind == "tabular" and task.input_shape == (5,) and task.num_classes == 3
    assert np.allclose(task.x_train.mean(axis=0), 0.0, atol=1e-5)  # standardised per feature
    with pytest.raises(ConfigError, match=r"holds tabular data .*, which have no channel layout"):
        load_task("npz", path=str(path), channels_last=True)


def test_npz_object_arrays_are_refused(tmp_path):
    x = np.empty((30, 1, 2, 2), dtype=object)
    x[...] = 1.0
    path = tmp_path / "objects.npz"
    np.savez(path, x=x, y=np.arange(30) % 2, allow_pickle=True)
    with pytest.raises(ConfigError, match=r"not a readable \.npz of plain arrays"):
        load_task("npz", path=str(path))


def test_npz_non_numeric_x_is_refused(tmp_path):
    path = tmp_path / "text.npz"
    np.savez(path, x=np.full((30, 4, 2), "a"), y=np.arange(30) % 2)
    with pytest.raises(ConfigError, match="must be numeric"):
        load_task("npz", path=str(path))


def test_npz_that_is_a_bare_npy_array_is_refused(tmp_path):
    path = tmp_path / "bare.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((30, 4, 2)))
    with pytest.raises(ConfigError, match="single array"):
        load_task("npz", path=str(path))


def test_npz_that_is_not_numpy_at_all_is_refused(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_text("not an archive")
    with pytest.raises(ConfigError, match=r"not a readable \.npz"):
        load_task("npz", path=str(path))


def test_npz_with_a_single_class_is_refused(tmp_path):
    path = tmp_path / "one_class.npz"
    np.savez(path, x=np.zeros((30, 4, 2)), y=np.zeros(30))
    with pytest.raises(ConfigError, match="at least 2"):
        load_task("npz", path=str(path))


def test_tasks_state_their_standardisation():
    task = load_task("digits", seed=0)
    assert len(task.mean) == len(task.std) == 1
    raw = task.x_train * np.asarray(task.std).reshape(1, -1, 1, 1) + np.asarray(task.mean).reshape(1, -1, 1, 1)
    sixteenths = raw * 16.0  # the digits loader yields pixel / 16
    assert np.allclose(sixteenths, np.round(sixteenths), atol=1e-3) and sixteenths.min() > -1e-3
    seq = load_task("basic_motions", seed=0)
    assert len(seq.mean) == seq.input_shape[1]  # per feature
