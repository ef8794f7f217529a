"""The search as TensorBoard event files (``torch.utils.tensorboard``, which needs the ``tensorboard`` package).

Layout under the tracker's directory (``tensorboard/`` in the experiment by default; ``tensorboard --logdir``
on it shows every run)::

    search/            search/score and search/best_so_far by trial number; search/best_architecture (text)
    trials/trial_000007/
                       epoch/<metric> per training epoch (the curves), final/<metric>, the architecture (text),
                       and the trial's decisions and status as hyper-parameters with its final metrics (HParams)
    jobs/<job>/        job/<figure> per epoch of a strategy's job (a supernet search)
    baselines/<name>/  a baseline of the config (``baselines:``), as a trial's directory (kept out of search/)

A trial's curve is written while it trains (:class:`~nas.tracking.base.TrialEpoch`), into its directory; the
finished trial adds the epochs the stream missed, the final metrics and the HParams, then the marker file
:data:`DONE`. A trial with the marker was written before (an earlier session) and is skipped; a directory without
it holds the partial curve of a run that never finished (a worker died, the search was killed) and is replaced
when the trial runs again.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from nas.tracking.base import Scalar, TrackedTrial, TrialEpoch, finite

__all__ = ["TensorBoardTracker", "trial_dir", "baseline_dir", "DONE"]

#: the file that marks a trial's directory complete
DONE = ".nas_done"


def trial_dir(root: Path, trial_id: int) -> Path:
    """Where trial ``trial_id``'s events go under ``root``."""
    return root / "trials" / f"trial_{trial_id:06d}"


def baseline_dir(root: Path, name: str) -> Path:
    """Where baseline ``name``'s events go under ``root`` (characters other than letters, digits, ``-``, ``_``
    and ``.`` replaced by ``_``)."""
    return root / "baselines" / re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class TensorBoardTracker:
    """Write event files under ``directory`` (created if missing)."""

    name = "tensorboard"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._search = SummaryWriter(log_dir=str(self.directory / "search"))
        self._jobs: dict[str, Any] = {}
        #: trials training now: trial id -> (attempt, last epoch, writer, epochs written)
        self._live: dict[int, tuple[int, int, Any, set[int]]] = {}

    def _fresh(self, trial_id: int) -> Any:
        """A writer for trial ``trial_id``'s directory, emptied of a partial run's curve first."""
        folder = trial_dir(self.directory, trial_id)
        if folder.exists():
            shutil.rmtree(folder)
        return SummaryWriter(log_dir=str(folder))

    def epoch(self, event: TrialEpoch) -> None:
        if (trial_dir(self.directory, event.trial_id) / DONE).exists():
            return
        live = self._live.get(event.trial_id)
        if live is None or live[0] != event.attempt or event.epoch <= live[1]:
            if live is not None:
                live[2].close()
            live = (event.attempt, event.epoch, self._fresh(event.trial_id), set())
        writer, written = live[2], live[3]
        self._live[event.trial_id] = (event.attempt, event.epoch, writer, written)
        _scalars(writer, event.metrics, event.epoch)
        written.add(event.epoch)
        writer.flush()

    def trial(self, trial: TrackedTrial) -> None:
        folder = trial_dir(self.directory, trial.id)
        if (folder / DONE).exists():
            self._drop(trial.id)
            return
        score = finite(trial.score)
        if score is not None:
            self._search.add_scalar("search/score", score, trial.n)
        if trial.best is not None:
            self._search.add_scalar("search/best_so_far", trial.best, trial.n)
        self._search.flush()
        live = self._live.pop(trial.id, None)
        writer, written = (live[2], live[3]) if live is not None else (self._fresh(trial.id), set())
        self._write(folder, writer, trial, written, {"trial": trial.id})

    def baseline(self, name: str, trial: TrackedTrial) -> None:
        """Baseline ``name`` in ``baselines/<name>/``, with the contents of a trial's directory; not in the
        search's score and best-so-far curves. Written once (:data:`DONE`)."""
        folder = baseline_dir(self.directory, name)
        if (folder / DONE).exists():
            return
        if folder.exists():
            shutil.rmtree(folder)
        self._write(folder, SummaryWriter(log_dir=str(folder)), trial, set(), {"baseline": name})

    def _write(self, folder: Path, writer: Any, trial: TrackedTrial, written: set[int],
               label: Mapping[str, Scalar]) -> None:
        """The epochs of ``trial`` not in ``written``, its final metrics, architecture and HParams (with ``label``)
        into ``writer`` at ``folder``; closes it and marks the folder :data:`DONE`."""
        score = finite(trial.score)
        try:
            for i, epoch in enumerate(trial.history):
                step = int(epoch.get("epoch", i + 1))
                if step not in written:  # streamed while it trained: not twice
                    _scalars(writer, epoch, step)
            final = {key: finite(value) for key, value in trial.metrics.items()}
            if score is not None:
                final["score"] = score
            for key, number in final.items():
                if number is not None:
                    writer.add_scalar(f"final/{key}", number, 0)
            writer.add_text("architecture", "```\n" + trial.arch.to_json(indent=2) + "\n```", 0)
            if trial.error:
                writer.add_text("error", trial.error, 0)
            hparams: dict[str, Any] = {**label, "status": trial.status.value, **trial.params}
            metrics = {f"hparam/{key}": number for key, number in final.items() if number is not None}
            # run_name ".": the HParams summary goes into this trial's own directory, not a new one
            writer.add_hparams(hparams, metrics or {"hparam/score": float("nan")}, run_name=".")
        finally:
            writer.close()
        (folder / DONE).write_text(f"{trial.status.value}\n")

    def _drop(self, trial_id: int) -> None:
        live = self._live.pop(trial_id, None)
        if live is not None:
            live[2].close()

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
        for trial_id in list(self._live):  # a trial still training at the end (time box): its partial curve stays
            self._drop(trial_id)


def _scalars(writer: Any, metrics: Mapping[str, Any], step: int) -> None:
    """``epoch/<metric>`` at ``step`` for each finite metric but ``epoch``."""
    for key, value in metrics.items():
        number = finite(value)
        if key != "epoch" and number is not None:
            writer.add_scalar(f"epoch/{key}", number, step)
