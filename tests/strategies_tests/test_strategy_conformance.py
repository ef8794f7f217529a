"""The Strategy contract, checked for every registered strategy (new strategies are covered automatically),
each with and without the :class:`Deduplicate` wrapper (the pattern of optuna's ``pytest_samplers.py`` and
nni's ``test_sanity.py``).

Covered: the ask/tell contract, results told out of order / failed / pruned, seeded determinism, exact
resumption from a JSON ``state_dict()`` with trials in flight, beating random search on a toy objective with
a known optimum, multiple objectives and constraints, option validation, de-duplication, and Optuna's
persistent storage. Results come from the NAS-Bench-201 table or from toy functions: nothing is trained.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Callable

import pytest
from conftest import ready  # one-shot strategies get a real search outcome first

from nas.core.errors import ConfigError, UnknownNameError
from nas.evaluation.evaluators import NB201Evaluator
from nas.graph.architecture import Architecture
from nas.trials.objectives import Objective
from nas.trials.trial import Result, Status, Trial
from search_spaces import get_space
from strategies import Deduplicate, RandomSearch, Strategy, get_strategy, list_strategies, trial_seed

STRATEGIES = list_strategies()
NB201 = get_space("nb201")
#: A space with many more decisions (24, some with a single choice) than nb201.
BIG = get_space("darts", C=4, layers=3)
EVALUATOR = NB201Evaluator()

Proposal = tuple[int, int, str]
ResultFn = Callable[[Trial], Result]


@pytest.fixture(params=STRATEGIES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=[True, False], ids=["dedup", "raw"])
def dedup(request: pytest.FixtureRequest) -> bool:
    return request.param


def make(name: str, *, seed: int = 0, dedup: bool = True, space=NB201, **options) -> Strategy:
    return ready(get_strategy(name, space=space, seed=seed, dedup=dedup, **options))


def unwrap(strategy: Strategy) -> Strategy:
    return strategy.inner if isinstance(strategy, Deduplicate) else strategy


def nb201_result(trial: Trial) -> Result:
    return EVALUATOR.evaluate(trial)


def toy_score(arch: Architecture) -> float:
    """Edges with ``nor_conv_3x3``, plus 0.5 per ``skip_connect`` edge leaving node 0."""
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
    decisions = BIG.encode(trial.arch)
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


# -- registry --------------------------------------------------------------------------------------------
def test_registry_lists_the_known_strategies():
    assert {"random", "evolution", "rl", "optuna", "gp_bo"} <= set(STRATEGIES)
    with pytest.raises(UnknownNameError, match="did you mean 'evolution'"):
        make("evolutoin")


def test_get_strategy_wraps_in_deduplicate(name, dedup):
    strategy = make(name, seed=3, dedup=dedup)
    assert isinstance(strategy, Deduplicate) is dedup
    assert strategy.name == name and strategy.seed == 3 and strategy.space is NB201
    assert unwrap(strategy).name == name
    assert f"{type(unwrap(strategy)).__name__}(space='nb201', seed=3)" in repr(strategy)


# -- ask / tell ------------------------------------------------------------------------------------------
def test_ask_returns_members_with_consecutive_ids_and_derived_seeds(name, dedup):
    strategy = make(name, seed=7, dedup=dedup)
    first, second = strategy.ask(3), strategy.ask(2)
    assert len(first) == 3 and len(second) == 2
    trials = first + second
    ids = [t.id for t in trials]
    assert ids == sorted(set(ids))
    if getattr(strategy, "skipped", 0) == 0:  # de-duplication skips the ids of the duplicates it drops
        assert ids == list(range(5))
    for t in trials:
        assert isinstance(t, Trial)
        assert NB201.contains(t.arch)
        assert t.seed == trial_seed(7, t.id)
    assert [t.id for t in strategy.pending] == ids
    assert trial_seed(7, 0) == trial_seed(7, 0) != trial_seed(8, 0)
    assert make(name, seed=8, dedup=dedup).ask(1)[0].seed == trial_seed(8, 0)


@pytest.mark.parametrize("n", [0, -1, True, 1.5, "2"])
def test_ask_rejects_non_positive_counts(name, dedup, n):
    strategy = make(name, dedup=dedup)
    with pytest.raises(ValueError):
        strategy.ask(n)
    assert strategy.pending == []


def test_tell_rejects_unknown_and_already_told_trials(name, dedup):
    strategy = make(name, dedup=dedup)
    (trial,) = strategy.ask(1)
    with pytest.raises(ValueError, match="not asked"):
        strategy.tell(Trial(999, trial.arch, 0), nb201_result(trial))
    strategy.tell(trial, nb201_result(trial))
    assert strategy.pending == []
    assert strategy.n_told == 1
    with pytest.raises(ValueError, match="already told"):
        strategy.tell(trial, nb201_result(trial))
    assert strategy.n_told == 1


def outcome(k: int, trial: Trial) -> Result:
    """Cycle through a completed, a failed, a pruned (with a partial score) and another completed result."""
    if k % 4 == 1:
        return Result.failed("boom")
    if k % 4 == 2:
        return Result(Status.PRUNED, score=50.0, metrics={"val_acc": 50.0}, error="pruned at epoch 3")
    return nb201_result(trial)


def test_out_of_order_failed_and_pruned_results_are_accepted(name, dedup):
    strategy = make(name, seed=1, dedup=dedup)
    for _ in range(6):
        trials = strategy.ask(4)
        assert len(trials) == 4 and all(NB201.contains(t.arch) for t in trials)
        for k in reversed(range(4)):
            strategy.tell(trials[k], outcome(k, trials[k]))
    assert strategy.pending == []
    assert all(NB201.contains(t.arch) for t in strategy.ask(3))


def test_only_failures_still_gives_members(name, dedup):
    strategy = make(name, seed=2, dedup=dedup)
    drive(strategy, 14, lambda t: Result.failed("diverged"))
    assert len(drive(strategy, 2, nb201_result, batch=2)) == 4


def test_fitness_ignores_failed_pruned_and_infeasible_results(name, dedup):
    strategy = make(name, dedup=dedup, constraints={"params": {"max": 1000}})
    ok = Result(Status.COMPLETE, score=90.0, metrics={"params": 500.0})
    assert strategy.fitness(ok) == (90.0,)
    assert strategy.fitness(Result(Status.COMPLETE, score=91.0, metrics={"params": 5000.0})) is None
    assert strategy.fitness(Result(Status.COMPLETE, score=91.0)) is None  # the constrained metric is missing
    assert strategy.fitness(Result.failed("boom")) is None
    assert strategy.fitness(Result(Status.PRUNED, score=95.0, metrics={"params": 500.0})) is None


# -- determinism and resumption --------------------------------------------------------------------------
def test_same_seed_same_proposals_different_seed_different(name, dedup):
    def run(seed: int) -> list[Proposal]:
        return drive(make(name, seed=seed, dedup=dedup), 15, toy_result, batch=2)

    a, b, c = run(3), run(3), run(4)
    assert a == b
    assert [p[2] for p in a] != [p[2] for p in c]
    assert [p[1] for p in a] != [p[1] for p in c]


def resume_and_compare(name: str, dedup: bool, space, result_fn: ResultFn, *, before: int, after: int,
                       **options) -> None:
    """Run ``before`` rounds, leave two trials in flight, snapshot through JSON into a fresh strategy, tell
    the in-flight trials to both, then ``after`` more rounds each: the proposals must be identical."""
    original = make(name, seed=5, dedup=dedup, space=space, **options)
    drive(original, before // 2, result_fn, batch=2)
    held = original.ask(2)
    text = json.dumps(original.state_dict(), allow_nan=False)  # strict JSON data
    state = json.loads(text)
    assert state["strategy"] == (f"dedup:{name}" if dedup else name)

    restored = make(name, seed=5, dedup=dedup, space=space, **options)
    restored.load_state_dict(state)
    assert [key(t) for t in restored.pending] == [key(t) for t in original.pending] == [key(t) for t in held]
    assert restored.n_told == original.n_told
    for t in held:
        result = result_fn(t)
        original.tell(t, result)
        restored.tell(t, result)
    assert original.pending == restored.pending == []
    assert drive(original, after, result_fn) == drive(restored, after, result_fn)
    assert json.dumps(original.state_dict(), sort_keys=True) == json.dumps(restored.state_dict(), sort_keys=True)


def test_state_dict_resumes_exactly_nb201(name, dedup):
    resume_and_compare(name, dedup, NB201, nb201_result, before=12, after=20)


def test_state_dict_resumes_exactly_on_a_space_with_more_decisions(name, dedup):
    resume_and_compare(name, dedup, BIG, big_result, before=12, after=20)


def test_state_dict_resumes_exactly_multi_objective(name):
    resume_and_compare(name, True, NB201, nb201_result, before=12, after=12, objectives=["max:score", "min:params"],
                       constraints={"params": {"max": 800000}})


def test_load_state_dict_of_another_strategy_raises(name, dedup):
    other = "evolution" if name == "random" else "random"
    state = make(other, dedup=dedup).state_dict()
    with pytest.raises(ConfigError):
        make(name, dedup=dedup).load_state_dict(state)
    with pytest.raises(ConfigError):  # wrapped and bare states are not interchangeable
        make(name, dedup=not dedup).load_state_dict(make(name, dedup=dedup).state_dict())


# -- search quality on a toy objective with a known optimum ----------------------------------------------
TOY_SEEDS = range(5)
TOY_TRIALS = 60
#: Strategies that must beat random search strictly; the others must do at least as well. With these seeds
#: (means of the best toy score: random 3.6, evolution 5.5, rl 4.7, optuna 5.6, gp_bo 6.0) every one is
#: strictly better, but REINFORCE learns slowly over 60 trials and TPE's first 10 trials are random, so
#: for those two only ">=" is asserted.
STRICTLY_BETTER = {"evolution", "gp_bo"}


@functools.cache
def toy_optimum() -> float:
    return max(toy_score(arch) for arch in NB201.enumerate())


@functools.cache
def toy_best(name: str, seed: int) -> float:
    strategy = make(name, seed=seed)
    best = float("-inf")
    for _ in range(TOY_TRIALS):
        (trial,) = strategy.ask(1)
        result = toy_result(trial)
        best = max(best, result.score)
        strategy.tell(trial, result)
    return best


def test_toy_optimum_is_six_convolutions():
    assert toy_optimum() == 6.0  # all six edges nor_conv_3x3; a skip from node 0 trades 1 for 0.5
    best = [a for a in NB201.enumerate() if toy_score(a) == toy_optimum()]
    assert len(best) == 1 and set(best[0].cell("cell").ops()) == {"nor_conv_3x3"}


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "random"])
def test_beats_random_search_on_a_toy_objective(strategy):
    mean = statistics.fmean(toy_best(strategy, s) for s in TOY_SEEDS)
    random_mean = statistics.fmean(toy_best("random", s) for s in TOY_SEEDS)
    if strategy in STRICTLY_BETTER:
        assert mean > random_mean
    else:
        assert mean >= random_mean


def test_some_strategy_reaches_the_known_optimum():
    reached = [n for n in STRATEGIES if any(toy_best(n, s) == toy_optimum() for s in TOY_SEEDS)]
    assert reached
    assert "gp_bo" in reached and "evolution" in reached


# -- multiple objectives and constraints -----------------------------------------------------------------
OBJECTIVES = ["max:score", "min:params"]


@pytest.mark.parametrize("strategy", ["evolution", "optuna"])
def test_multi_objective_search(strategy, dedup):
    s = make(strategy, seed=0, dedup=dedup, objectives=OBJECTIVES)
    inner = unwrap(s)
    assert inner.objectives == (Objective("score", "max"), Objective("params", "min"))
    results: dict[int, Result] = {}

    def remember(trial: Trial) -> Result:
        results[trial.id] = nb201_result(trial)
        return results[trial.id]

    drive(s, 20, remember, batch=2)
    assert len(results) == 40
    sample = next(iter(results.values()))
    expected = (sample.score, -sample.metrics["params"])
    assert inner.fitness(sample) == s.fitness(sample) == expected
    if strategy == "optuna":
        assert type(inner.study.sampler).__name__ == "NSGAIISampler"
        assert len(inner.study.directions) == 2
        done = [t for t in inner.study.trials if t.values is not None]
        assert len(done) >= 40 and all(len(t.values) == 2 for t in done)
    else:
        assert len(inner.population) == inner.population_size
        assert all(len(fit) == 2 and fit[1] < 0 for _, fit in inner.population)


def test_optuna_defaults_to_tpe_for_one_objective():
    assert type(make("optuna").inner.study.sampler).__name__ == "TPESampler"
    assert type(make("optuna", sampler="random").inner.study.sampler).__name__ == "RandomSampler"
    assert type(make("optuna", sampler="NSGAIISampler").inner.study.sampler).__name__ == "NSGAIISampler"


LIMIT = 400_000
CONSTRAINT = {"params": {"max": LIMIT}}


@pytest.mark.parametrize("objectives", [None, OBJECTIVES], ids=["single", "multi"])
def test_evolution_population_only_holds_feasible_members(objectives, dedup):
    s = make("evolution", seed=0, dedup=dedup, objectives=objectives, constraints=CONSTRAINT)
    told: list[Result] = []

    def record(trial: Trial) -> Result:
        told.append(nb201_result(trial))
        return told[-1]

    drive(s, 60, record)
    assert any(r.metrics["params"] > LIMIT for r in told)  # violations did occur
    inner = unwrap(s)
    assert len(inner.population) == inner.population_size
    for arch, _ in inner.population:
        assert nb201_result(Trial(0, arch)).metrics["params"] <= LIMIT


def test_optuna_tells_infeasible_results_as_failures():
    from optuna.trial import TrialState

    s = make("optuna", seed=0, objectives=OBJECTIVES, constraints=CONSTRAINT)
    drive(s, 30, nb201_result)
    trials = s.inner.study.trials
    assert any(t.state is TrialState.FAIL for t in trials)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert complete and all(-t.values[1] <= LIMIT for t in complete)


@pytest.mark.parametrize("strategy", ["gp_bo", "rl"])
def test_model_based_strategies_learn_only_from_feasible_results(strategy):
    s = make(strategy, seed=0, dedup=False, constraints=CONSTRAINT, **({"batch_size": 100} if strategy == "rl" else {}))
    told = []

    def record(trial: Trial) -> Result:
        told.append(nb201_result(trial))
        return told[-1]

    drive(s, 16, record)
    feasible = [r.score for r in told if r.metrics["params"] <= LIMIT]
    assert 0 < len(feasible) < len(told)
    learned = s.y if strategy == "gp_bo" else [r for _, r in s.buffer]
    assert learned == feasible


def test_optuna_pruned_results_are_told_as_pruned():
    from optuna.trial import TrialState

    s = make("optuna", seed=0, dedup=False)
    a, b, c = s.ask(3)
    s.tell(a, Result(Status.PRUNED, score=50.0, error="pruned"))
    s.tell(b, Result.failed("boom"))
    s.tell(c, nb201_result(c))
    states = [t.state for t in s.study.trials]
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]


# -- option validation -----------------------------------------------------------------------------------
def test_unknown_option_raises_with_the_known_ones(name):
    with pytest.raises(ConfigError, match=f"strategy '{name}' has no option 'bogus_option'"):
        make(name, bogus_option=1)


@pytest.mark.parametrize("strategy, option, hint", [
    ("evolution", "populaton", "population"),
    ("evolution", "sample_sise", "sample_size"),
    ("rl", "batchsize", "batch_size"),
    ("gp_bo", "n_inits", "n_init"),
    ("optuna", "samplr", "sampler"),
])
def test_unknown_option_suggests_the_closest(strategy, option, hint):
    with pytest.raises(ConfigError, match=f"did you mean '{hint}'"):
        make(strategy, **{option: 1})


@pytest.mark.parametrize("strategy, options, named", [
    ("evolution", {"population": 0}, "population"),
    ("evolution", {"population": 2.5}, "population"),
    ("evolution", {"sample_size": 0}, "sample_size"),
    ("evolution", {"population": 5, "sample_size": 6}, "sample_size"),
    ("evolution", {"crossover": 2}, "crossover"),
    ("evolution", {"crossover": -0.1}, "crossover"),
    ("rl", {"lr": 0}, "lr"),
    ("rl", {"batch_size": 0}, "batch_size"),
    ("rl", {"hidden": 0}, "hidden"),
    ("rl", {"baseline_decay": 1.5}, "baseline_decay"),
    ("gp_bo", {"n_init": 0}, "n_init"),
    ("gp_bo", {"window": 0}, "window"),
    ("gp_bo", {"refit_every": True}, "refit_every"),
    ("optuna", {"sampler": "tpee"}, "did you mean 'tpe'"),
    ("optuna", {"sampler": "NoSuchSampler"}, "unknown sampler 'NoSuchSampler'"),
    ("optuna", {"sampler_options": {"bogus": 1}}, "sampler_options"),
    ("random", {"objectives": ["sideways:score"]}, "direction"),
    ("random", {"constraints": {"params": 5}}, "constraint 'params'"),
])
def test_bad_option_values_raise_config_errors_naming_them(strategy, options, named):
    with pytest.raises(ConfigError, match=named):
        make(strategy, **options)


def test_seed_must_be_an_integer(name):
    with pytest.raises(ConfigError, match="seed"):
        make(name, seed="0")


# -- de-duplication --------------------------------------------------------------------------------------
def test_deduplicate_never_proposes_a_seen_function(name):
    strategy = make(name, seed=0)
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
    if name in ("evolution", "gp_bo"):  # both propose neighbours of good cells, which often compute the same
        assert strategy.skipped > 0


def tiny_dedup(max_retries: int = 3) -> Deduplicate:
    """De-duplicated random search on the nb201 space restricted to one op: a single member."""
    return Deduplicate(RandomSearch(space=get_space("nb201", ops=["none"]), seed=0), max_retries=max_retries)


def test_deduplicate_holds_duplicates_of_a_trial_in_flight():
    strategy = tiny_dedup()
    (a,) = strategy.ask(1)
    (b,) = strategy.ask(1)  # two duplicates wait for a; after max_retries the third proposal is let through
    assert a.arch == b.arch and (a.id, b.id) == (0, 3) and strategy.skipped == 2
    assert [t.id for t in strategy.pending] == [0, 3]
    assert [t.id for t in strategy.inner.pending] == [0, 1, 2, 3]
    done = Result(Status.COMPLETE, score=1.0)
    strategy.tell(a, done)
    assert strategy.n_told == 3 and [t.id for t in strategy.inner.pending] == [3]
    strategy.tell(b, done)
    (c,) = strategy.ask(1)  # a known result: duplicates are told it at once
    assert c.id == 6 and strategy.skipped == 4 and strategy.n_told == 6


def test_deduplicate_retries_a_failed_architecture():
    strategy = tiny_dedup()
    (a,) = strategy.ask(1)
    strategy.tell(a, Result.failed("out of memory"))
    (b,) = strategy.ask(1)
    assert b.id == 1 and strategy.skipped == 0


def test_deduplicate_state_dict_keeps_waiting_duplicates():
    strategy = tiny_dedup()
    (a,) = strategy.ask(1)
    strategy.ask(1)
    restored = tiny_dedup()
    restored.load_state_dict(json.loads(json.dumps(strategy.state_dict())))
    assert restored.skipped == 2 and restored.waiting == strategy.waiting and restored.inflight == strategy.inflight
    restored.tell(a, Result(Status.COMPLETE, score=1.0))
    assert restored.n_told == 3
    assert [t.id for t in restored.pending] == [3]


def test_deduplicate_lets_duplicates_through_once_the_space_is_exhausted():
    strategy = tiny_dedup(max_retries=5)
    trials = drive(strategy, 4, lambda t: Result(Status.COMPLETE, score=1.0))
    assert [p[0] for p in trials] == [0, 5, 10, 15]


# -- Optuna's persistent storage -------------------------------------------------------------------------
def test_optuna_sqlite_storage_is_readable_by_optuna(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path}/study.db"
    strategy = make("optuna", seed=3, storage=url)
    drive(strategy, 5, nb201_result)
    study = optuna.load_study(study_name="nas-nb201-3", storage=url)
    assert len(study.trials) == strategy.n_told >= 5
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    assert study.best_value == max(t.value for t in strategy.inner.study.trials)


def test_optuna_sqlite_storage_resumes_from_state_dict(tmp_path):
    def url(name: str) -> str:
        return f"sqlite:///{tmp_path}/{name}.db"

    options = {"study_name": "s", "sampler_options": {"n_startup_trials": 3}}  # TPE proper after 3 trials
    reference = make("optuna", seed=1, storage=url("a"), **options)
    drive(reference, 5, nb201_result)
    held = reference.ask(1)
    reference.tell(held[0], nb201_result(held[0]))
    expected = drive(reference, 4, nb201_result)

    first = make("optuna", seed=1, storage=url("b"), **options)
    drive(first, 5, nb201_result)
    assert [key(t) for t in first.ask(1)] == [key(t) for t in held]  # left in flight (RUNNING in the store)
    state = json.loads(json.dumps(first.state_dict()))
    del first
    resumed = make("optuna", seed=1, storage=url("b"), **options)  # loads the stored study
    resumed.load_state_dict(state)
    assert len(resumed.inner.study.trials) == resumed.n_told + 1
    resumed.tell(held[0], nb201_result(held[0]))
    assert drive(resumed, 4, nb201_result) == expected
