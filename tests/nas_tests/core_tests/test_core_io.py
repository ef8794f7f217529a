"""nas.core.io: every file is replaced whole or not at all, with ordinary permissions and no temp file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nas.core.io import atomic_write, atomic_write_bytes, atomic_write_text, ordinary_mode


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_text_is_written_as_utf8_and_replaces_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    atomic_write_text(path, "new ünïcode\n")
    assert path.read_bytes() == "new ünïcode\n".encode()
    assert _names(tmp_path) == ["out.txt"]


def test_bytes_are_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    atomic_write_bytes(path, bytes(range(256)) * 10)
    assert path.read_bytes() == bytes(range(256)) * 10
    assert _names(tmp_path) == ["blob.bin"]


def test_a_writer_that_wants_a_path_writes_the_temp_file_beside_the_target(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        with open(tmp, "wb") as f:
            f.write(b"weights")

    atomic_write(path, write)
    assert path.read_bytes() == b"weights"
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".model.pt.") and seen[0].name.endswith(".tmp")
    assert not seen[0].exists()


def test_a_failing_writer_keeps_the_old_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text("previous")

    def write(tmp: Path) -> None:
        tmp.write_text("half of the new con")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, write)
    assert path.read_text() == "previous"
    assert _names(tmp_path) == ["checkpoint.json"]


def test_a_failing_first_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "new.json", lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert _names(tmp_path) == []


def test_a_failing_replace_keeps_the_old_content_and_leaves_no_temp_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.html"
    path.write_text("previous")

    def refuse(src: object, dst: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="read-only"):
        atomic_write_text(path, "new")
    assert path.read_text() == "previous"
    assert _names(tmp_path) == ["report.html"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_of_an_ordinary_new_file(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        assert ordinary_mode() == mode
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"x"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == mode
