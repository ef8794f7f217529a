"""The one failure tail of the training evaluators (:func:`failures_as_results`): what an attempt raises becomes a
FAILED result with its reason, and the attempt's objects are released afterwards; the ssl evaluator, which shares
it with the train and gan evaluators, records a diverging candidate as FAILED with the epoch."""

from __future__ import annotations

import weakref

import numpy as np
import torch

from nas.evaluation.evaluators import failures_as_results
from nas.evaluation.ssl import SslEvaluator
from nas.evaluation.training import Diverged
from nas.trials.trial import Result, Status, Trial
from search_spaces import get_space


class _Cycle:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_divergence_is_failed_with_its_message_and_an_exception_with_its_type_and_first_line() -> None:
    def diverge() -> Result:
        raise Diverged("diverged at epoch 2: training loss is nan")

    def crash() -> Result:
        raise ValueError("bad shape\nsecond line")

    diverged, crashed = failures_as_results(diverge), failures_as_results(crash)
    assert diverged.status is Status.FAILED and diverged.error == "diverged at epoch 2: training loss is nan"
    assert crashed.status is Status.FAILED and crashed.error == "ValueError: bad shape"
    assert crashed.traceback is not None and "second line" in crashed.traceback
    oom = failures_as_results(lambda: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("CUDA out of memory. x")))
    assert oom.error == "out of memory: CUDA out of memory. x"


def test_the_attempts_objects_are_collected_when_it_returns_or_raises() -> None:
    refs: list[weakref.ref[_Cycle]] = []

    def attempt(fail: bool) -> Result:
        model = _Cycle()
        refs.append(weakref.ref(model))
        if fail:
            raise RuntimeError("boom")
        return Result(Status.COMPLETE, score=1.0)

    assert failures_as_results(lambda: attempt(False)).status is Status.COMPLETE
    assert failures_as_results(lambda: attempt(True)).status is Status.FAILED
    assert [r() for r in refs] == [None, None]


def test_the_ssl_evaluator_records_a_diverging_candidate_failed_with_the_epoch() -> None:
    space = get_space("nb201", C=4, N=1)
    ev = SslEvaluator(compiler=space.compiler(), task="digits", task_options={"limit": 300}, pretext="rotation",
                      train={"epochs": 2, "lr": 1e8, "grad_clip": None, "device": "cpu", "threads": 1})
    result = ev.evaluate(Trial(0, space.sample(np.random.default_rng(0)), seed=0))
    assert result.status is Status.FAILED and result.score is None
    assert (result.error or "").startswith("diverged at epoch 1"), result.error
