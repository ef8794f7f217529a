"""nas.storage.weights: the content-addressed, bounded weight store of weight inheritance: hash-checked reads, its
index reconciled with its files after a kill, garbage collection."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.storage.faults import FAULT_ENV
from nas.storage.weights import WeightStore, WeightsUnavailableError


def blob(i: int, size: int = 1000) -> bytes:
    return bytes([i % 256]) * size


def test_put_get_content_addressed(tmp_path: Path) -> None:
    store = WeightStore(tmp_path / "w")
    digest = store.put(3, blob(3), 0.5)
    assert digest == hashlib.sha256(blob(3)).hexdigest()
    assert store.path(digest) == tmp_path / "w" / digest[:2] / f"{digest}.pt"
    assert store.get(3) == (digest, blob(3))
    with pytest.raises(WeightsUnavailableError, match="trial 4 are not kept"):
        store.get(4)
    store.put(4, blob(3), 0.6)  # the same bytes: one file for both
    store.remove(3)
    assert store.get(4) == (digest, blob(3))
    store.remove(4)
    assert not store.path(digest).exists()
    store.close()


def test_a_corrupt_file_is_detected_on_read(tmp_path: Path) -> None:
    store = WeightStore(tmp_path / "w")
    digest = store.put(0, blob(1), 1.0)
    data = bytearray(store.path(digest).read_bytes())
    data[10] ^= 0xFF
    store.path(digest).write_bytes(bytes(data))
    with pytest.raises(WeightsUnavailableError, match="trial 0 are corrupt: their sha256 is"):
        store.get(0)
    store.close()


def test_reconcile_after_a_kill(tmp_path: Path) -> None:
    store = WeightStore(tmp_path / "w")
    kept, lost = store.put(0, blob(0), 1.0), store.put(1, blob(1), 1.0)
    store.path(lost).unlink()  # a row without its file
    orphan = store.path(hashlib.sha256(blob(9)).hexdigest())  # a file without its row
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(blob(9))
    temp = store.path(kept).parent / f".{kept}.pt.abc.tmp"  # an interrupted atomic write
    temp.write_bytes(b"partial")
    store.close()
    again = WeightStore(tmp_path / "w")
    assert [e.trial for e in again.entries()] == [0]
    assert not orphan.exists() and not temp.exists()
    assert again.get(0) == (kept, blob(0))
    again.close()


def test_killed_between_file_and_index_row(tmp_path: Path) -> None:
    """A real SIGKILL after the file is written and before its row: the reopened store has neither."""
    pid = os.fork()
    if pid == 0:
        try:
            os.environ[FAULT_ENV] = "weights.before:2"
            store = WeightStore(tmp_path / "w")
            store.put(0, blob(0), 1.0)
            store.put(1, blob(1), 1.0)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    store = WeightStore(tmp_path / "w")
    assert [e.trial for e in store.entries()] == [0]
    assert sorted(p.stem for p in (tmp_path / "w").rglob("*.pt")) == [hashlib.sha256(blob(0)).hexdigest()]
    store.close()


def test_collect_keeps_the_recent_and_the_best_within_a_byte_budget(tmp_path: Path) -> None:
    store = WeightStore(tmp_path / "w")
    scores = [0.9, 0.1, 0.2, 0.3, 0.8, 0.4, 0.5]
    for i, s in enumerate(scores):
        store.put(i, blob(i), s)
    dropped = store.collect(keep=2)
    assert sorted(e.trial for e in store.entries()) == [0, 4, 5, 6]  # the 2 best (0, 4) and the 2 most recent
    assert sorted(dropped) == [1, 2, 3]
    assert len(list((tmp_path / "w").rglob("*.pt"))) == 4
    store.collect(keep=2, max_bytes=2500)  # 4 x 1000 bytes kept: the oldest go first, the newest stays
    assert [e.trial for e in store.entries()] == [5, 6]
    assert store.total_bytes() == 2000
    store.close()


def test_collect_never_drops_a_protected_trial(tmp_path: Path) -> None:
    """The weights of parents the strategy may still pick outlive ``keep`` and the byte budget."""
    store = WeightStore(tmp_path / "w")
    for i, s in enumerate([0.9, 0.1, 0.2, 0.3, 0.8, 0.4, 0.5]):
        store.put(i, blob(i), s)
    assert store.has(1) and not store.has(7)
    dropped = store.collect(keep=1, protect={1, 2})
    assert sorted(e.trial for e in store.entries()) == [0, 1, 2, 6]  # the best, the most recent, the protected
    assert sorted(dropped) == [3, 4, 5]
    store.collect(keep=1, max_bytes=1000, protect={1, 2})  # over budget: only unprotected ones go, never the newest
    assert [e.trial for e in store.entries()] == [1, 2, 6]
    store.collect(keep=1, protect=())  # no longer protected: collected as usual
    assert [e.trial for e in store.entries()] == [6] and not store.has(1)
    store.close()


def test_an_unusable_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "w").write_text("a file")
    with pytest.raises(ConfigError, match=r"weight store .* cannot be used"):
        WeightStore(tmp_path / "w")


def test_index_is_sqlite_with_one_row_per_trial(tmp_path: Path) -> None:
    store = WeightStore(tmp_path / "w")
    store.put(0, blob(0), 1.0)
    store.put(0, blob(5), 2.0)  # a trial run again replaces its row
    store.close()
    with sqlite3.connect(tmp_path / "w" / "index.db") as con:
        assert con.execute("SELECT trial, score FROM weights").fetchall() == [(0, 2.0)]
    con.close()
    assert len(list((tmp_path / "w").rglob("*.pt"))) == 1
