"""One-shot strategies: ``darts``, ``gdas`` and ``beta_darts``.

A one-shot strategy is still a small ask/tell object that trains nothing. It describes the supernet search it
needs (:meth:`OneShotStrategy.job` -> :class:`nas.oneshot.spec.SupernetSearch`, plain data); before its first
``ask`` the experiment runs that search (the runtime's runner, checkpointed every epoch) and hands the
:class:`~nas.oneshot.outcome.SearchOutcome` to :meth:`tell_job`. From
then on ``ask`` proposes the derived architecture first, then further candidates drawn from the learned op
distribution (Gumbel-max perturbations of the architecture parameters, from the strategy's own RNG); they are
trained from scratch, stored and ranked like any other trial.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.oneshot.config import OneShotConfig, SupernetSpace, place, proxy_space
from nas.oneshot.outcome import SearchOutcome
from nas.oneshot.spec import SupernetSearch
from nas.trials.protocols import JobContext, JobOutcome
from nas.trials.trial import Result, Trial
from strategies.base import Strategy

__all__ = ["OneShotStrategy", "DartsStrategy", "GDASStrategy", "BetaDartsStrategy"]


class OneShotStrategy(Strategy):
    """Base of the one-shot strategies. Options: every :class:`nas.oneshot.config.OneShotConfig` field, plus
    ``task`` / ``task_options`` to search on another task than the evaluator's."""

    algorithm: ClassVar[str]
    one_shot: ClassVar[bool] = True
    space: SupernetSpace

    def __init__(self, *, space: SupernetSpace, seed: int = 0, objectives: Any = None, constraints: Any = None,
                 task: str | None = None, task_options: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives, constraints=constraints)
        self.config = OneShotConfig.from_options(self.algorithm, options)
        self.proxy = proxy_space(space, self.config.space_options)  # the space the supernet searches
        if not self.proxy.searched_cells:
            raise ConfigError(f"strategy {self.name}: space {space.name!r} has no supernet; one-shot strategies "
                              "search nb201, darts and transformer")
        self.task = task
        self.task_options = dict(task_options or {})
        self.outcome: SearchOutcome | None = None
        self._proposed = 0

    @classmethod
    def option_names(cls) -> list[str]:
        return ["objectives", "constraints", "task", "task_options", *OneShotConfig.option_names()]

    # -- the search job ------------------------------------------------------------------------
    def job(self, context: JobContext) -> SupernetSearch | None:
        """The supernet search, on ``task`` (else the context's task), until it has been told (then None)."""
        return None if self.outcome is not None else self._search(context)

    def _search(self, context: JobContext) -> SupernetSearch:
        task = self.task or context.task
        if task is None:
            raise ConfigError(f"strategy.options.task: the {self.name} strategy trains a supernet on a task; "
                              "set evaluator.task or strategy.options.task")
        return SupernetSearch(space=self.space, task=task,
                              task_options=self.task_options if self.task else dict(context.task_options),
                              seed=context.seed, config=self.config, directory=str(context.directory),
                              threads=context.threads, files=context.files)

    def tell_job(self, outcome: JobOutcome) -> None:
        """Receive the :class:`SearchOutcome` of the supernet search."""
        if not isinstance(outcome, SearchOutcome):
            raise TypeError(f"{self.name}: expected the SearchOutcome of the supernet search, got "
                            f"{type(outcome).__name__}")
        outcome.arch.validate()
        self.outcome = outcome

    def job_summary(self, context: JobContext) -> dict[str, Any] | None:
        """The search in brief: epochs done while it runs, then :meth:`SearchOutcome.summary`."""
        if self.outcome is not None:
            return self.outcome.summary()
        search = self._search(context)
        return {"state": "searching", "epochs_run": len(search.read_history()), "epochs": search.epochs}

    def _propose(self, n: int) -> list[Architecture]:
        if self.outcome is None:
            raise RuntimeError(f"{self.name}: the supernet search has not run yet; the experiment runs it first")
        out = []
        for _ in range(n):
            if self._proposed == 0:
                out.append(self.outcome.arch)
            else:
                alphas = {k: np.asarray(v, dtype=np.float64) for k, v in self.outcome.alphas.items()}
                noisy = {k: a - np.log(-np.log(self.rng.uniform(1e-12, 1.0, size=a.shape))) for k, a in alphas.items()}
                out.append(place(self.space, self.proxy, self.proxy.derive(noisy)))
            self._proposed += 1
        return out

    def _observe(self, trial: Trial, result: Result) -> None:
        return None

    def _state(self) -> dict[str, Any]:
        return {"outcome": None if self.outcome is None else self.outcome.to_dict(), "proposed": self._proposed}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.outcome = None if state["outcome"] is None else SearchOutcome.from_dict(state["outcome"])
        self._proposed = state["proposed"]


class DartsStrategy(OneShotStrategy):
    """DARTS (Liu et al., ICLR 2019): softmax relaxation, first (``order: 1``) or second order."""

    name = "darts"
    algorithm = "darts"


class GDASStrategy(OneShotStrategy):
    """GDAS (Dong & Yang, CVPR 2019): one Gumbel-sampled op per edge and step; low memory."""

    name = "gdas"
    algorithm = "gdas"


class BetaDartsStrategy(OneShotStrategy):
    """beta-DARTS (Ye et al., CVPR 2022): DARTS with the beta-decay regulariser against collapse."""

    name = "beta_darts"
    algorithm = "beta_darts"
