"""The runners of strategies' jobs, by the kind of job they run.

A strategy only describes the job it needs done before it can propose (a :class:`nas.trials.protocols.JobSpec`,
plain data: strategies never train); the experiment looks up the runner registered under the description's
``name`` here and has its executor run ``runner(spec)``. Built in: ``supernet``, the one-shot supernet search
(:class:`nas.oneshot.spec.SupernetSearch`, run by :func:`nas.oneshot.job.run_supernet_search`) and
``weight_sharing``, the single-path supernet training of the weight-sharing evaluator
(:class:`nas.weightsharing.spec.SposTraining`, run by :func:`nas.weightsharing.job.run_spos_training`). A strategy of
a plugin that needs another kind of job registers that job's runner with :func:`register_job_runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from nas.core.errors import NASError, UnknownNameError
from nas.core.registry import Registry
from nas.oneshot.job import run_supernet_search, with_data
from nas.oneshot.spec import SupernetSearch
from nas.trials.protocols import JobRunner, JobSpec
from nas.weightsharing.job import run_spos_training
from nas.weightsharing.job import with_data as spos_with_data
from nas.weightsharing.spec import SposTraining

_Spec = TypeVar("_Spec", bound=JobSpec)

__all__ = ["JOB_RUNNERS", "register_job_runner", "job_runner", "on_driver"]


def _check_runner(name: str, runner: Any) -> JobRunner[Any]:
    if not callable(runner):
        raise TypeError(f"expected a callable runner(spec, on_epoch=None) -> outcome, got {runner!r}")
    return runner


#: job runners by the ``name`` of the job descriptions they run
JOB_RUNNERS: Registry[JobRunner[Any]] = Registry("job runner", check=_check_runner)


def register_job_runner(name: str, runner: JobRunner[Any]) -> JobRunner[Any]:
    """Register ``runner`` for the jobs whose description has the ``name`` (a module-level function, so that it
    pickles to a Ray worker); returns it unchanged. A name is registered once."""
    return JOB_RUNNERS.register(name, runner)


def job_runner(spec: JobSpec) -> JobRunner[Any]:
    """The runner of the job ``spec`` describes; :class:`NASError` naming the job and the fix when none is
    registered for its ``name``."""
    try:
        return JOB_RUNNERS.get(spec.name)
    except UnknownNameError as err:
        raise NASError(f"no runner for the {spec.name!r} job of {type(spec).__qualname__} ({err}); register one "
                       "with nas.runtime.jobs.register_job_runner") from None


register_job_runner(SupernetSearch.name, run_supernet_search)
register_job_runner(SposTraining.name, run_spos_training)


#: by a job's ``name``: what the driver does to a job description before it goes to a worker (the supernet
#: search loads its task's data here, so that the worker reads no file that only the driver has)
_ON_DRIVER: dict[str, Callable[[Any], Any]] = {SupernetSearch.name: with_data, SposTraining.name: spos_with_data}


def on_driver(spec: _Spec) -> _Spec:
    """``spec`` ready to run on any node: with what only the driver can load (its task's data) loaded; ``spec``
    itself for kinds of job that need nothing."""
    prepare = _ON_DRIVER.get(spec.name)
    return spec if prepare is None else prepare(spec)
