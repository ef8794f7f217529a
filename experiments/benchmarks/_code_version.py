"""Which version of the library code a benchmark ran: the git commit and whether the library was modified."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["LIBRARY_DIRS", "code_version"]

REPO = Path(__file__).resolve().parents[2]
LIBRARY_DIRS = ("nas", "strategies", "search_spaces")


def _git(repo: Path, *args: str) -> str:
    """The output of ``git args`` in ``repo``, unstripped (``status --porcelain`` lines start with a space)."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def code_version(repo: Path = REPO) -> str:
    """``commit <hash> (<date>)``, plus the library files (``nas/``, ``strategies/``, ``search_spaces/``)
    that differ from it in the working tree of ``repo``, or ``unknown`` outside a git checkout."""
    try:
        head = _git(repo, "log", "-1", "--format=%h (%cd)", "--date=iso").strip()
        dirty = _git(repo, "status", "--porcelain", "--", *LIBRARY_DIRS).splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if not dirty:
        return f"commit {head}; library (`{'/`, `'.join(LIBRARY_DIRS)}/`) unmodified"
    files = ", ".join(f"`{line[3:]}`" for line in dirty)  # "XY path": two status letters and a space
    return f"commit {head} with uncommitted changes to {files}"
