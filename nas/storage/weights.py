"""The weight store of weight inheritance: the trained weights of finished trials, bounded and content-addressed,
in the experiment's ``weights/`` folder.

A trial's weights (the bytes the train evaluator serialized) are kept at ``weights/<h[:2]>/<h>.pt``, ``h`` their
sha256, written atomically; ``weights/index.db`` (SQLite) maps trial id -> hash, size, score and the order they came
in. Writes go file first, then its index row (one transaction), so a kill -9 leaves at worst a file without a row,
which the next :class:`WeightStore` over the folder removes, as it drops a row whose file is gone. Reads check the
hash: a file whose bytes no longer hash to its name is reported (:class:`WeightsUnavailableError`), never handed out.

Garbage collection (:meth:`WeightStore.collect`) keeps the weights of the trials the strategy may still pick as a
parent (``protect``: evolution's population, see ``Strategy.live_parents``), of the ``keep`` most recent trials and
of the ``keep`` best, and within ``max_bytes`` (if set) drops the oldest of the unprotected ones first (never the
newest). Only the driver reads or writes it: workers get weights
through the executor (Ray's object store), never from this folder.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import ConfigError
from nas.core.io import atomic_write_bytes, remove_stray_temps
from nas.storage.faults import fault_point

__all__ = ["WeightStore", "StoredWeights", "WeightsUnavailableError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS weights (
    trial INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, score REAL, seq INTEGER NOT NULL
);
"""


class WeightsUnavailableError(LookupError):
    """The weights of a trial are not in the store, or fail their hash check; the message says which."""


@dataclass(frozen=True)
class StoredWeights:
    """One index row: the trial, the hash and size of its weights, its score and its place in arrival order."""

    trial: int
    sha256: str
    bytes: int
    score: float | None
    seq: int


class WeightStore:
    """The weights under ``directory`` (created if missing), reconciled with its index on opening."""

    INDEX = "index.db"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.directory / self.INDEX, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(f"weight store {str(self.directory)!r} cannot be used ({err}): check the disk space "
                              "and permissions; or delete the folder (children then train from scratch)") from None
        self.reconcile()

    def close(self) -> None:
        self._db.close()

    def path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / f"{sha256}.pt"

    def entries(self) -> list[StoredWeights]:
        """Every index row, oldest first."""
        rows = self._db.execute("SELECT trial, sha256, bytes, score, seq FROM weights ORDER BY seq").fetchall()
        return [StoredWeights(*r) for r in rows]

    def reconcile(self) -> tuple[int, int]:
        """Make the index and the files agree after a kill: drop rows whose file is missing, remove files (and temp
        files of interrupted writes) no row names. Returns (rows dropped, files removed)."""
        rows = self.entries()
        dropped = [e.trial for e in rows if not self.path(e.sha256).is_file()]
        if dropped:
            self._db.executemany("DELETE FROM weights WHERE trial = ?", [(t,) for t in dropped])
        named = {e.sha256 for e in rows if e.trial not in dropped}
        removed = 0
        for sub in self.directory.iterdir():
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            removed += len(remove_stray_temps(sub))
            for file in sub.glob("*.pt"):
                if file.stem not in named:
                    file.unlink(missing_ok=True)
                    removed += 1
        return len(dropped), removed

    def put(self, trial: int, data: bytes, score: float | None) -> str:
        """Keep ``data`` as trial ``trial``'s weights (again: replaced); returns their sha256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not (target.is_file() and target.stat().st_size == len(data)):
            target.parent.mkdir(exist_ok=True)
            atomic_write_bytes(target, data)
        seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM weights").fetchone()[0]
        old = self._db.execute("SELECT sha256 FROM weights WHERE trial = ?", (trial,)).fetchone()
        fault_point("weights.before")
        self._db.execute("INSERT OR REPLACE INTO weights VALUES (?, ?, ?, ?, ?)",
                         (trial, digest, len(data), score, seq))
        fault_point("weights.after")
        if old is not None and old[0] != digest:
            self._unlink_unused(old[0])
        return digest

    def get(self, trial: int) -> tuple[str, bytes]:
        """The sha256 and bytes of trial ``trial``'s weights, checked; else :class:`WeightsUnavailableError`."""
        row = self._db.execute("SELECT sha256 FROM weights WHERE trial = ?", (trial,)).fetchone()
        if row is None:
            raise WeightsUnavailableError(f"the weights of trial {trial} are not kept (never stored, or collected)")
        digest = row[0]
        try:
            data = self.path(digest).read_bytes()
        except OSError as err:
            raise WeightsUnavailableError(f"the weights of trial {trial} cannot be read ({err.strerror})") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise WeightsUnavailableError(f"the weights of trial {trial} are corrupt: their sha256 is {actual[:12]}, "
                                     f"expected {digest[:12]}")
        return digest, data

    def has(self, trial: int) -> bool:
        """Whether the index names weights of trial ``trial`` (not read, nor checked: :meth:`get` does)."""
        return self._db.execute("SELECT 1 FROM weights WHERE trial = ?", (trial,)).fetchone() is not None

    def total_bytes(self) -> int:
        return sum(e.bytes for e in {e.sha256: e for e in self.entries()}.values())

    def collect(self, keep: int, max_bytes: int | None = None, protect: Iterable[int] = ()) -> list[int]:
        """Drop the weights of every trial but those of ``protect`` (parents the strategy may still pick), the
        ``keep`` most recent and the ``keep`` best (by score), then, while above ``max_bytes``, the oldest of the
        rest but the newest and the protected (a parent's weights outrank the byte budget: without them its child
        trains from scratch); returns the trials dropped."""
        rows = self.entries()
        protected = set(protect)
        recent = {e.trial for e in rows[-keep:]}
        scored = sorted((e for e in rows if e.score is not None), key=lambda e: (-(e.score or 0.0), e.seq))
        kept = recent | {e.trial for e in scored[:keep]} | protected
        drop = [e.trial for e in rows if e.trial not in kept]
        if max_bytes is not None:
            alive = [e for e in rows if e.trial in kept]
            total = sum(e.bytes for e in {e.sha256: e for e in alive}.values())
            for e in alive[:-1]:
                if total <= max_bytes:
                    break
                if e.trial in protected:
                    continue
                drop.append(e.trial)
                if not any(o.sha256 == e.sha256 and o.trial not in drop for o in alive):
                    total -= e.bytes
        for trial in drop:
            self.remove(trial)
        return drop

    def remove(self, trial: int) -> None:
        row = self._db.execute("SELECT sha256 FROM weights WHERE trial = ?", (trial,)).fetchone()
        if row is None:
            return
        self._db.execute("DELETE FROM weights WHERE trial = ?", (trial,))
        self._unlink_unused(row[0])

    def _unlink_unused(self, digest: str) -> None:
        if self._db.execute("SELECT 1 FROM weights WHERE sha256 = ?", (digest,)).fetchone() is None:
            self.path(digest).unlink(missing_ok=True)
