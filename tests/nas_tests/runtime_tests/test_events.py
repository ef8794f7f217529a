"""Progress events (nas.runtime.events): ``str(event)`` is the progress line, exactly as the search has always
written it to the terminal and to search.log; the executors' typed completions and the Executor Protocol."""

from __future__ import annotations

import numpy as np

from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.events import BudgetSpent, JobDone, JobEpoch, JobStarted, SearchStarted, TrialFinished
from nas.runtime.executors import LocalExecutor
from nas.trials.protocols import Completion
from nas.trials.trial import Status, Trial
from search_spaces import get_space


def test_each_event_renders_its_progress_line():
    assert str(SearchStarted(name="q", done=3, max_trials=16, rerun=1, executor="ray")) == \
        "search q: 3/16 trials done, 1 to run again, executor ray"
    assert str(BudgetSpent(done=16, directory="runs/q")) == \
        "budget already spent (16 trials); extend it with `nas resume runs/q --max-trials N`"
    ok = TrialFinished(n=4, max_trials=16, trial_id=7, status=Status.COMPLETE, score=91.234, error=None, best=93.5,
                       running=2, failed=1, eta=12.4)
    assert str(ok) == "[4/16] trial 7 COMPLETE score 91.23 | best 93.50 | running 2 | failed 1 | eta 12s"
    assert not ok.last
    failed = TrialFinished(n=16, max_trials=16, trial_id=0, status=Status.FAILED, score=None, error="diverged",
                           best=None, running=0, failed=1, eta=0.0)
    assert str(failed) == "[16/16] trial 0 FAILED FAILED: diverged | best nan | running 0 | failed 1 | eta 0s"
    assert failed.last
    assert str(JobStarted(name="supernet", label="darts", epochs=12, done=0)) == \
        "supernet search (darts, 12 epochs): starting"
    assert str(JobStarted(name="supernet", label="gdas", epochs=12, done=5)) == \
        "supernet search (gdas, 12 epochs): resuming after epoch 5"
    assert str(JobEpoch(name="supernet", epoch=2, epochs=3, figures="train acc 50.0")) == \
        "supernet epoch 2/3: train acc 50.0"
    assert str(JobDone(name="supernet", summary="3 epochs")) == "supernet search done: 3 epochs"


def test_the_local_executor_returns_typed_completions_in_submission_order():
    space = get_space("nb201")
    evaluator = NB201Evaluator()
    executor = LocalExecutor()
    trials = [Trial(i, space.sample(np.random.default_rng(i)), i) for i in range(2)]
    for t in trials:
        executor.submit(evaluator, t)
    done = [executor.next_done() for _ in trials]
    assert done == [Completion(t, evaluator.evaluate(t)) for t in trials]
    assert all(c.worker is None and c.retries == 0 for c in done)
