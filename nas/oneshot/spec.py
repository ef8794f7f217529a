"""A supernet search described as data (no torch): what a one-shot strategy asks the experiment to run.

:class:`SupernetJob` holds what every supernet job carries (the space, the task and its options, the seed, the
settings, the directory of its files, its thread count, where the files go, the task's data) and reads its
per-epoch records back; the one-shot search here and the weight-sharing evaluator's supernet training
(:class:`nas.weightsharing.spec.SposTraining`) extend it with their settings, name and progress lines.

:class:`SupernetSearch` holds everything the search needs (the space, the task, the seed, the settings, the
directory it keeps its files in) and what the experiment reads of it while it runs (its name and label for
progress lines, its epochs, the per-epoch records written so far). It trains nothing: the training code is
:func:`nas.oneshot.job.run_supernet_search`, which the runtime looks up by the search's ``name`` and runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from nas.core.io import DirectoryFiles
from nas.oneshot.config import OneShotConfig
from nas.oneshot.outcome import uniform_warning
from nas.trials.protocols import JobFiles

__all__ = ["SupernetJob", "SupernetSearch"]

#: the settings of a kind of supernet job
_Config = TypeVar("_Config")


@dataclass(frozen=True)
class SupernetJob(Generic[_Config]):
    """The fields and files every supernet job has: ``space`` (the configured space), the ``task`` to train on
    and its ``task_options``, the experiment ``seed``, the job's ``config`` (its settings), the ``directory`` of
    its files (``checkpoint.pt``, ``history.json``); torch uses ``threads`` threads if set. ``files`` (None:
    ``directory`` on the node the job runs on) is where those files go when the job may run on another node than
    the driver (:class:`~nas.trials.protocols.JobFiles`); ``data`` is the task's data when the driver loaded it
    (a :class:`nas.evaluation.tasks.Task`), so that a worker never reads the task's files itself; None: the job
    loads the task where it runs. Picklable. A subclass names the kind of job (``name``, ``label``), says how
    many epochs it runs and describes its epoch records (:class:`nas.trials.protocols.JobSpec`)."""

    space: Any
    task: str
    task_options: dict[str, Any]
    seed: int
    config: _Config
    directory: str
    threads: int | None = None
    files: JobFiles | None = None
    data: Any = None

    CHECKPOINT: ClassVar[str] = "checkpoint.pt"
    HISTORY: ClassVar[str] = "history.json"

    def storage(self) -> JobFiles:
        """Where the job's files are: ``files``, else ``directory``."""
        return self.files if self.files is not None else DirectoryFiles(Path(self.directory))

    def read_history(self) -> list[dict[str, Any]]:
        """The per-epoch records written so far (empty before the first epoch ends)."""
        data = self.storage().read(self.HISTORY)
        return json.loads(data) if data is not None else []


@dataclass(frozen=True)
class SupernetSearch(SupernetJob[OneShotConfig]):
    """One supernet search (:class:`SupernetJob` with :class:`OneShotConfig` settings; its directory also holds
    ``result.json``; the driver loads its data with :func:`nas.oneshot.job.with_data`). A job description in the
    sense of :class:`nas.trials.protocols.JobSpec`: progress lines read "supernet epoch 3/20: ...".
    """

    RESULT: ClassVar[str] = "result.json"
    #: the kind of job: names it in progress lines, and its runner in :mod:`nas.runtime.jobs`
    name: ClassVar[str] = "supernet"

    @property
    def label(self) -> str:
        """The algorithm, as progress lines name it."""
        return self.config.algorithm

    @property
    def epochs(self) -> int:
        return self.config.epochs

    def describe_epoch(self, record: dict[str, Any]) -> str:
        """Accuracies, collapse signals and the collapse guard's warning of one epoch record, on one line; on the
        last epoch also the warning when the architecture weights are still uniform."""
        uniform = uniform_warning(record["entropy"]) if record.get("epoch") == self.epochs - 1 else None
        return (f"train acc {record['train_acc']:.1f} | search-val acc {record['search_val_acc']:.1f} | "
                f"parameter-free {record['param_free_share']:.0%} | entropy {record['entropy']:.3f}"
                + (f" | WARNING {record['warning']}" if "warning" in record else "")
                + (f" | WARNING {uniform}" if uniform else ""))

    def failure_hint(self, message: str) -> str:
        """How to get past an out-of-memory failure ("" for other failures)."""
        if "out of memory" in message.lower():
            return " (out of memory: lower strategy.options.batch_size or set partial_channels: 2 or 4)"
        return ""
