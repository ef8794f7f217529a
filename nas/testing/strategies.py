"""The :class:`~strategies.Strategy` contract as a reusable pytest suite (the pattern of optuna's
``testing/pytest_samplers.py`` and nni's ``test_sanity.py``).

Subclass :class:`StrategyConformance` in a test module, set ``strategy`` to the registered name (or override
:meth:`~StrategyConformance.names` to test several), and pytest runs every check on it, each with and
without the :class:`~strategies.Deduplicate` wrapper::

    class TestHillClimb(StrategyConformance):
        strategy = "hill_climb"

Covered: the ask/tell contract, results told out of order / failed / pruned, seeded determinism, exact
resumption from a JSON ``state_dict()`` with trials in flight (on NAS-Bench-201, on the darts space and with
two objectives and a constraint), option validation, de-duplication, and doing at least as well as random
search on a toy objective with a known optimum. Results come from the NAS-Bench-201 table or from toy
functions: nothing is trained, and the whole suite takes seconds for a light strategy.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from nas.core.errors import ConfigError
from nas.evaluation.evaluators import NB201Evaluator
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Status, Trial
from search_spaces import NB201Space, SearchSpace, get_space
from strategies import Deduplicate, Strategy, get_strategy, trial_seed

__all__ = ["StrategyConformance", "Proposal", "ResultFn", "nb201", "big", "nb201_result", "toy_score", "toy_result",
           "big_result", "key", "drive", "unwrap", "toy_optimum", "best_toy_score", "TOY_SEEDS", "TOY_TRIALS"]

Proposal = tuple[int, int, str]
ResultFn = Callable[[Trial], Result]


@functools.cache
def nb201() -> NB201Space:
    """The NAS-Bench-201 space (results are table look-ups)."""
    space = get_space("nb201")
    assert isinstance(space, NB201Space)
    return space


@functools.cache
def big() -> SearchSpace:
    """A space with many more decisions (24, some with a single choice) than nb201."""
    return get_space("darts", C=4, layers=3)


@functools.cache
def _evaluator() -> NB201Evaluator:
    return NB201Evaluator()


def nb201_result(trial: Trial) -> Result:
    """The NAS-Bench-201 result of an nb201 trial."""
    return _evaluator().evaluate(trial)


def toy_score(arch: Architecture) -> float:
    """Edges with ``nor_conv_3x3``, plus 0.5 per ``skip_connect`` edge leaving node 0 (nb201 cells)."""
    edges = arch.cell("cell").edges
    return (sum(op == "nor_conv_3x3" for _, _, op in edges)
            + 0.5 * sum(op == "skip_connect" and src == 0 for src, _, op in edges))


def toy_result(trial: Trial) -> Result:
    return Result(Status.COMPLETE, score=toy_score(trial.arch))


def big_result(trial: Trial) -> Result:
    """Toy results on the darts space: some failures and prunings, otherwise a score of the decisions."""
    if trial.id % 5 == 3:
        return Result.failed("boom")
    if trial.id % 7 == 5:
        return Result(Status.PRUNED, score=1.0, error="pruned")
    decisions = big().encode(trial.arch)
    return Result(Status.COMPLETE, score=float(sum((i % 3) * v for i, v in enumerate(decisions))),
                  metrics={"params": float(sum(decisions))})


def key(trial: Trial) -> Proposal:
    return trial.id, trial.seed, trial.arch.to_json()


def drive(strategy: Strategy, rounds: int, result_fn: ResultFn, batch: int = 1) -> list[Proposal]:
    """``rounds`` rounds of ``ask(batch)`` then telling every trial (last asked first); the proposals."""
    out: list[Proposal] = []
    for _ in range(rounds):
        trials = strategy.ask(batch)
        assert len(trials) == batch
        assert all(strategy.space.contains(t.arch) for t in trials)
        out += [key(t) for t in trials]
        for t in reversed(trials):
            strategy.tell(t, result_fn(t))
    return out


def unwrap(strategy: Strategy) -> Strategy:
    return strategy.inner if isinstance(strategy, Deduplicate) else strategy


TOY_SEEDS = range(5)
TOY_TRIALS = 60


@functools.cache
def toy_optimum() -> float:
    return max(toy_score(arch) for arch in nb201().enumerate())


def best_toy_score(strategy: Strategy, trials: int = TOY_TRIALS) -> float:
    """The best toy score ``strategy`` (on nb201) finds in ``trials`` sequential trials."""
    best = float("-inf")
    for _ in range(trials):
        (trial,) = strategy.ask(1)
        score = toy_score(trial.arch)
        best = max(best, score)
        strategy.tell(trial, Result(Status.COMPLETE, score=score))
    return best


def _outcome(k: int, trial: Trial) -> Result:
    """Cycle through a completed, a failed, a pruned (with a partial score) and another completed result."""
    if k % 4 == 1:
        return Result.failed("boom")
    if k % 4 == 2:
        return Result(Status.PRUNED, score=50.0, metrics={"val_acc": 50.0}, error="pruned at epoch 3")
    return nb201_result(trial)


class StrategyConformance:
    """The contract tests; subclass as ``Test...`` and set :attr:`strategy` (or override :meth:`names`).

    Hooks: :meth:`prepare` readies a freshly built strategy (a one-shot strategy needs its supernet search
    outcome before its first ``ask``); :meth:`expects_duplicates` tightens the de-duplication check;
    :meth:`toy_best` may be overridden to cache toy runs.
    """

    #: the registered name of the strategy under test
    strategy: ClassVar[str | None] = None

    def names(self) -> list[str]:
        """The registered names of the strategies under test (hook; by default :attr:`strategy`)."""
        if self.strategy is None:
            raise TypeError(f"{type(self).__name__}: set the class attribute `strategy` to the registered name "
                            "of the strategy under test, or override `names()`")
        return [self.strategy]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Each test runs for every strategy of :meth:`names`."""
        if "name" in metafunc.fixturenames:
            metafunc.parametrize("name", self.names())

    @pytest.fixture(params=[True, False], ids=["dedup", "raw"])
    def dedup(self, request: pytest.FixtureRequest) -> bool:
        return bool(request.param)

    def prepare(self, strategy: Strategy) -> Strategy:
        """``strategy`` ready to ``ask`` (hook; by default unchanged)."""
        return strategy

    def make(self, name: str, *, seed: int = 0, dedup: bool = True, space: SearchSpace | None = None,
             **options: Any) -> Strategy:
        """Strategy ``name`` through :func:`strategies.get_strategy` (on nb201 by default), prepared."""
        return self.prepare(get_strategy(name, space=space or nb201(), seed=seed, dedup=dedup, **options))

    def expects_duplicates(self, name: str) -> bool:
        """Whether strategy ``name`` is known to propose architectures computing the same function within 100
        trials on nb201 (so de-duplication must have skipped some; hook, by default False)."""
        return False

    def toy_best(self, name: str, seed: int) -> float:
        """The best toy score of strategy ``name`` seeded with ``seed`` in :data:`TOY_TRIALS` trials."""
        return best_toy_score(self.make(name, seed=seed))

    # -- construction ------------------------------------------------------------------------------------
    def test_get_strategy_wraps_in_deduplicate(self, name: str, dedup: bool) -> None:
        strategy = self.make(name, seed=3, dedup=dedup)
        assert isinstance(strategy, Deduplicate) is dedup
        assert strategy.name == name and strategy.seed == 3 and strategy.space is nb201()
        assert unwrap(strategy).name == name
        assert f"{type(unwrap(strategy)).__name__}(space='nb201', seed=3)" in repr(strategy)

    # -- ask / tell --------------------------------------------------------------------------------------
    def test_ask_returns_members_with_consecutive_ids_and_derived_seeds(self, name: str, dedup: bool) -> None:
        strategy = self.make(name, seed=7, dedup=dedup)
        first, second = strategy.ask(3), strategy.ask(2)
        assert len(first) == 3 and len(second) == 2
        trials = first + second
        ids = [t.id for t in trials]
        assert ids == sorted(set(ids))
        if getattr(strategy, "skipped", 0) == 0:  # de-duplication skips the ids of the duplicates it drops
            assert ids == list(range(5))
        for t in trials:
            assert isinstance(t, Trial)
            assert nb201().contains(t.arch)
            assert t.seed == trial_seed(7, t.id)
        assert [t.id for t in strategy.pending] == ids
        assert trial_seed(7, 0) == trial_seed(7, 0) != trial_seed(8, 0)
        assert self.make(name, seed=8, dedup=dedup).ask(1)[0].seed == trial_seed(8, 0)

    @pytest.mark.parametrize("n", [0, -1, True, 1.5, "2"])
    def test_ask_rejects_non_positive_counts(self, name: str, dedup: bool, n: Any) -> None:
        strategy = self.make(name, dedup=dedup)
        with pytest.raises(ValueError):
            strategy.ask(n)
        assert strategy.pending == []

    def test_tell_rejects_unknown_and_already_told_trials(self, name: str, dedup: bool) -> None:
        strategy = self.make(name, dedup=dedup)
        (trial,) = strategy.ask(1)
        with pytest.raises(ValueError, match="not asked"):
            strategy.tell(Trial(999, trial.arch, 0), nb201_result(trial))
        strategy.tell(trial, nb201_result(trial))
        assert strategy.pending == []
        assert strategy.n_told == 1
        with pytest.raises(ValueError, match="already told"):
            strategy.tell(trial, nb201_result(trial))
        assert strategy.n_told == 1

    def test_out_of_order_failed_and_pruned_results_are_accepted(self, name: str, dedup: bool) -> None:
        strategy = self.make(name, seed=1, dedup=dedup)
        for _ in range(6):
            trials = strategy.ask(4)
            assert len(trials) == 4 and all(nb201().contains(t.arch) for t in trials)
            for k in reversed(range(4)):
                strategy.tell(trials[k], _outcome(k, trials[k]))
        assert strategy.pending == []
        assert all(nb201().contains(t.arch) for t in strategy.ask(3))

    def test_only_failures_still_gives_members(self, name: str, dedup: bool) -> None:
        strategy = self.make(name, seed=2, dedup=dedup)
        drive(strategy, 14, lambda t: Result.failed("diverged"))
        assert len(drive(strategy, 2, nb201_result, batch=2)) == 4

    def test_fitness_ignores_failed_pruned_and_infeasible_results(self, name: str, dedup: bool) -> None:
        strategy = self.make(name, dedup=dedup, constraints={"params": {"max": 1000}})
        ok = Result(Status.COMPLETE, score=90.0, metrics={"params": 500.0})
        assert strategy.fitness(ok) == (90.0,)
        assert strategy.fitness(Result(Status.COMPLETE, score=91.0, metrics={"params": 5000.0})) is None
        assert strategy.fitness(Result(Status.COMPLETE, score=91.0)) is None  # the constrained metric is missing
        assert strategy.fitness(Result.failed("boom")) is None
        assert strategy.fitness(Result(Status.PRUNED, score=95.0, metrics={"params": 500.0})) is None

    # -- determinism and resumption ----------------------------------------------------------------------
    def test_same_seed_same_proposals_different_seed_different(self, name: str, dedup: bool) -> None:
        def run(seed: int) -> list[Proposal]:
            return drive(self.make(name, seed=seed, dedup=dedup), 15, toy_result, batch=2)

        a, b, c = run(3), run(3), run(4)
        assert a == b
        assert [p[2] for p in a] != [p[2] for p in c]
        assert [p[1] for p in a] != [p[1] for p in c]

    def resume_and_compare(self, name: str, dedup: bool, space: SearchSpace, result_fn: ResultFn, *, before: int,
                           after: int, **options: Any) -> None:
        """Run ``before`` rounds, leave two trials in flight, snapshot through JSON into a fresh strategy, tell
        the in-flight trials to both, then ``after`` more rounds each: the proposals must be identical.

        As the experiment does, the strategy's journal records are taken before each snapshot (and kept through
        JSON, as the store keeps them) and given back to the restored strategy's ``restore``; records taken after
        the snapshot (of trials it holds in flight) are given back too and must be ignored."""
        original = self.make(name, seed=5, dedup=dedup, space=space, **options)
        kept: dict[int, Any] = {}

        def take() -> None:
            kept.update(json.loads(json.dumps(original.journal(), allow_nan=False)))

        for _ in range(before // 2):
            drive(original, 1, result_fn, batch=2)
            take()
        held = original.ask(2)
        take()
        text = json.dumps(original.state_dict(), allow_nan=False)  # strict JSON data
        state = json.loads(text)
        assert state["strategy"] == (f"dedup:{name}" if dedup else name)
        late = held[:1]  # told and taken after the snapshot (the store is ahead of the checkpoint)
        result = result_fn(late[0])
        original.tell(late[0], result)
        take()

        restored = self.make(name, seed=5, dedup=dedup, space=space, **options)
        restored.load_state_dict(state)
        restored.restore(sorted(kept.items()))
        restored.tell(late[0], result)
        held = held[1:]
        assert [key(t) for t in restored.pending] == [key(t) for t in original.pending] == [key(t) for t in held]
        assert restored.n_told == original.n_told
        original.journal(), restored.journal()  # the records of the late trial, already kept
        for t in held:
            result = result_fn(t)
            original.tell(t, result)
            restored.tell(t, result)
        assert original.pending == restored.pending == []
        assert drive(original, after, result_fn) == drive(restored, after, result_fn)
        assert json.dumps(original.state_dict(), sort_keys=True) == json.dumps(restored.state_dict(), sort_keys=True)

    def test_state_dict_resumes_exactly_nb201(self, name: str, dedup: bool) -> None:
        self.resume_and_compare(name, dedup, nb201(), nb201_result, before=12, after=20)

    def test_state_dict_resumes_exactly_on_a_space_with_more_decisions(self, name: str, dedup: bool) -> None:
        self.resume_and_compare(name, dedup, big(), big_result, before=12, after=20)

    def test_state_dict_resumes_exactly_multi_objective(self, name: str) -> None:
        self.resume_and_compare(name, True, nb201(), nb201_result, before=12, after=12,
                                objectives=["max:score", "min:params"], constraints={"params": {"max": 800000}})

    def test_load_state_dict_of_another_strategy_raises(self, name: str, dedup: bool) -> None:
        other = "evolution" if name == "random" else "random"
        state = self.make(other, dedup=dedup).state_dict()
        with pytest.raises(ConfigError):
            self.make(name, dedup=dedup).load_state_dict(state)
        with pytest.raises(ConfigError):  # wrapped and bare states are not interchangeable
            self.make(name, dedup=not dedup).load_state_dict(self.make(name, dedup=dedup).state_dict())

    # -- search quality on a toy objective with a known optimum ------------------------------------------
    def test_at_least_as_good_as_random_search_on_a_toy_objective(self, name: str) -> None:
        if name == "random":
            pytest.skip("random search is the baseline")
        mean = statistics.fmean(self.toy_best(name, s) for s in TOY_SEEDS)
        random_mean = statistics.fmean(self.toy_best("random", s) for s in TOY_SEEDS)
        assert mean >= random_mean

    # -- option validation -------------------------------------------------------------------------------
    def test_unknown_option_raises_with_the_known_ones(self, name: str) -> None:
        with pytest.raises(ConfigError, match=f"strategy '{name}' has no option 'bogus_option'"):
            self.make(name, bogus_option=1)

    def test_seed_must_be_an_integer(self, name: str) -> None:
        with pytest.raises(ConfigError, match="seed"):
            self.make(name, seed="0")  # type: ignore[arg-type]  # the wrong type is the point

    # -- de-duplication ----------------------------------------------------------------------------------
    def test_deduplicate_never_proposes_a_seen_function(self, name: str) -> None:
        strategy = self.make(name, seed=0)
        assert isinstance(strategy, Deduplicate)
        hashes = []
        for _ in range(25):
            trials = strategy.ask(4)
            hashes += [t.arch.canonical_hash() for t in trials]
            for t in trials:
                strategy.tell(t, nb201_result(t))
        assert len(hashes) == len(set(hashes)) == 100
        # every duplicate the inner strategy proposed was told to it (at once, or when its twin finished)
        assert strategy.inner.pending == []
        assert strategy.inner.n_told == strategy.n_told == 100 + strategy.skipped
        if self.expects_duplicates(name):
            assert strategy.skipped > 0
