"""The search as TensorBoard event files (``torch.utils.tensorboard``, which needs the ``tensorboard`` package).

Layout under the tracker's directory (``tensorboard/`` in the experiment by default; ``tensorboard --logdir``
on it shows every run)::

    search/            search/score and search/best_so_far by trial number; search/best_architecture (text)
    trials/trial_000007/
                       epoch/<metric> per training epoch (the curves), final/<metric>, the architecture (text),
                       and the trial's decisions and status as hyper-parameters with its final metrics (HParams)
    jobs/<job>/        job/<figure> per epoch of a strategy's job (a supernet search)

A trial whose directory exists was written before (an earlier session) and is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from nas.tracking.base import TrackedTrial, finite

__all__ = ["TensorBoardTracker", "trial_dir"]


def trial_dir(root: Path, trial_id: int) -> Path:
    """Where trial ``trial_id``'s events go under ``root``."""
    return root / "trials" / f"trial_{trial_id:06d}"


class TensorBoardTracker:
    """Write event files under ``directory`` (created if missing)."""

    name = "tensorboard"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._search = SummaryWriter(log_dir=str(self.directory / "search"))
        self._jobs: dict[str, Any] = {}

    def trial(self, trial: TrackedTrial) -> None:
        folder = trial_dir(self.directory, trial.id)
        if folder.exists():
            return
        score = finite(trial.score)
        if score is not None:
            self._search.add_scalar("search/score", score, trial.n)
        if trial.best is not None:
            self._search.add_scalar("search/best_so_far", trial.best, trial.n)
        self._search.flush()
        writer = SummaryWriter(log_dir=str(folder))
        try:
            for i, epoch in enumerate(trial.history):
                step = int(epoch.get("epoch", i + 1))
                for key, value in epoch.items():
                    number = finite(value)
                    if key != "epoch" and number is not None:
                        writer.add_scalar(f"epoch/{key}", number, step)
            final = {key: finite(value) for key, value in trial.metrics.items()}
            if score is not None:
                final["score"] = score
            for key, number in final.items():
                if number is not None:
                    writer.add_scalar(f"final/{key}", number, 0)
            writer.add_text("architecture", "```\n" + trial.arch.to_json(indent=2) + "\n```", 0)
            if trial.error:
                writer.add_text("error", trial.error, 0)
            hparams: dict[str, Any] = {"trial": trial.id, "status": trial.status.value, **trial.params}
            metrics = {f"hparam/{key}": number for key, number in final.items() if number is not None}
            # run_name ".": the HParams summary goes into this trial's own directory, not a new one
            writer.add_hparams(hparams, metrics or {"hparam/score": float("nan")}, run_name=".")
        finally:
            writer.close()

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None:
        writer = self._jobs.get(job)
        if writer is None:
            writer = self._jobs[job] = SummaryWriter(log_dir=str(self.directory / "jobs" / job))
        step = int(record.get("epoch", 0)) + 1  # a job's records count epochs from 0
        for key, value in record.items():
            number = finite(value)
            if key != "epoch" and number is not None:
                writer.add_scalar(f"job/{key}", number, step)
        writer.flush()

    def artifacts(self, files: Mapping[str, Path]) -> None:
        """TensorBoard keeps no files: the best architecture is shown as text, the other files by path."""
        for name, path in files.items():
            if name == "best.json" and path.is_file():
                text = json.dumps(json.loads(path.read_text()), indent=2)
                self._search.add_text("search/best_architecture", "```\n" + text + "\n```", 0)
            else:
                self._search.add_text(f"search/{name}", str(path), 0)
        self._search.flush()

    def close(self) -> None:
        self._search.close()
        for writer in self._jobs.values():
            writer.close()
        self._jobs.clear()
