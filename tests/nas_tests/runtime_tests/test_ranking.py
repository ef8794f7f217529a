"""Ranking obeys the experiment's constraints (nas.trials.ranking): the loop's ranking, ``Experiment.ranked()``,
``best.json``, ``nas status`` (text and --json), the report's table and export's choice all rank only feasible
completed trials by validation score, show the infeasible ones as such, and rank nothing (no best.json, export
refused with exit 2 naming the constraint) when no trial is feasible. A relative Optuna ``sqlite:///`` storage
lives in the experiment directory, wherever the search runs from."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.outputs.export import ExportError, export_experiment
from nas.outputs.report.build import ReportOptions, build_report
from nas.outputs.view import ExperimentView
from nas.runtime.config import parse_config, resolve_storage
from nas.runtime.experiment import Experiment
from nas.runtime.loop import TrialRecord, rank
from nas.trials.objectives import Constraint, parse_constraints
from nas.trials.ranking import rank as rank_items
from nas.trials.trial import Result, Status, Trial

LIMIT = 300000
TABLE = {"name": "ranking", "seed": 1, "space": {"name": "nb201"}, "strategy": {"name": "random"},
         "evaluator": {"name": "nb201"}, "budget": {"max_trials": 60},
         "execution": {"executor": "local", "workers": 1}, "constraints": {"params": {"max": LIMIT}}}
TRAINED = {"name": "ranking_trained", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
           "strategy": {"name": "random"},
           "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300},
                         "train": {"epochs": 1, "batch_size": 64, "threads": 1}},
           "budget": {"max_trials": 3}, "execution": {"executor": "local", "workers": 1},
           "constraints": {"params": {"max": LIMIT}}}


def _result(score: float | None, status: Status = Status.COMPLETE, **metrics: float) -> Result:
    return Result(status, score=score, metrics=dict(metrics))


def _records(*results: Result) -> list[TrialRecord]:
    return [TrialRecord(Trial(i, None, 0), r, float(i)) for i, r in enumerate(results)]  # type: ignore[arg-type]  # no arch needed


# -- the one ranking function --------------------------------------------------------------------------------
def test_rank_orders_feasible_completed_trials_by_score_and_keeps_the_infeasible_apart() -> None:
    records = _records(
        _result(90.0, params=615386),  # 0: the best score, infeasible
        _result(80.0, params=200000),  # 1
        _result(85.0, params=250000),  # 2
        _result(80.0, params=100000),  # 3: ties with 1, lower id first
        _result(None, Status.FAILED),  # 4
        _result(99.0, Status.PRUNED, params=1),  # 5: pruned never ranks
        _result(math.nan, params=1),  # 6: no finite score
        _result(70.0),  # 7: params missing: a violation
        _result(95.0, params=LIMIT),  # 8: on the bound: feasible
    )
    constraints = parse_constraints({"params": {"max": LIMIT}})
    ranking = rank_items(records, constraints, ident=lambda r: r.trial.id, outcome=lambda r: r.result)
    assert [r.trial.id for r in ranking.ranked] == [8, 2, 1, 3]
    assert [r.trial.id for r in ranking.infeasible] == [0, 7]
    assert ranking.violations == ["params = 615386 > 300000", "params missing"]
    assert ranking.completed == 6 and ranking.reason() == ""
    assert ranking.counts() == {"constraints": ["params <= 300000"], "feasible": 4, "infeasible": 2}
    assert [r.trial.id for r in rank(records, constraints)] == [8, 2, 1, 3]
    assert [r.trial.id for r in rank(records)] == [8, 0, 2, 1, 3, 7]  # no constraints: every completed trial


def test_rank_with_several_constraints_and_none_feasible_says_why() -> None:
    constraints = parse_constraints({"params": {"max": 1000}, "flops": {"min": 5, "max": 10}})
    records = _records(_result(50.0, params=2000, flops=7), _result(60.0, params=10, flops=11))
    ranking = rank_items(records, constraints, ident=lambda r: r.trial.id, outcome=lambda r: r.result)
    assert ranking.ranked == [] and rank(records, constraints) == []
    assert ranking.reason() == "no feasible trial: 2 completed, all violate params <= 1000, 5 <= flops <= 10"
    assert ranking.violations == ["flops = 11 > 10", "params = 2000 > 1000"]
    empty = rank_items([], constraints, ident=lambda r: r.trial.id, outcome=lambda r: r.result)
    assert empty.reason() == "no completed trial"
    assert Constraint("flops", min=0.5).describe() == "flops >= 0.5"
    assert Constraint("score", min=10).violation(_result(9.5)) == "score = 9.5 < 10"


# -- a 60-trial search under a params constraint ------------------------------------------------------------
@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    directory = tmp_path_factory.mktemp("ranking") / "exp"
    exp = Experiment.create(parse_config(TABLE), directory)
    exp.run()
    return exp


def _params(t: object) -> float:
    return t.metrics["params"]  # type: ignore[attr-defined, no-any-return]  # a StoredTrial


def test_search_ranks_and_writes_best_json_under_the_constraint(searched: Experiment) -> None:
    completed = searched.store.trials("COMPLETE")
    assert len(completed) == 60
    best_overall = max(completed, key=lambda t: (t.score, -t.id))
    assert _params(best_overall) > LIMIT  # the case of the issue: the best score belongs to a too-large model
    feasible = sorted((t for t in completed if _params(t) <= LIMIT), key=lambda t: (-t.score, t.id))
    assert 0 < len(feasible) < 60
    ranked = searched.ranked()
    assert [t.id for t in ranked] == [t.id for t in feasible]
    assert json.loads((searched.directory / "best.json").read_text()) == json.loads(ranked[0].arch.to_json())
    ranking = searched.ranking()
    assert len(ranking.infeasible) == 60 - len(feasible) and ranking.infeasible[0].id == best_overall.id
    summary = searched.summary(top=3)
    assert [b["id"] for b in summary["best"]] == [t.id for t in feasible[:3]]
    assert summary["feasible"] == len(feasible) and summary["infeasible"] == 60 - len(feasible)
    view = ExperimentView.open(searched.directory)
    assert [t.id for t in view.ranked()] == [t.id for t in ranked] and view.summary(top=3) == summary


def test_status_text_and_json_show_only_feasible_trials_ranked(searched: Experiment,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    ranking = searched.ranking()
    n_ok, n_bad = len(ranking.ranked), len(ranking.infeasible)
    assert main(["status", str(searched.directory), "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert f"constraints params <= {LIMIT}: {n_ok} feasible, {n_bad} infeasible (not ranked)" in out
    table = out.split("top ", 1)[1].splitlines()[2:2 + min(5, n_ok)]
    assert [int(line.split()[1]) for line in table] == [t.id for t in ranking.ranked[:5]]
    worst = ranking.infeasible[0]
    assert f"infeasible, not ranked: trial {worst.id} " in out and f"params = {_params(worst):.0f} > {LIMIT}" in out
    assert main(["status", str(searched.directory), "--json", "--top", "50"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [b["id"] for b in summary["best"]] == [t.id for t in ranking.ranked]
    assert all(b["params"] <= LIMIT for b in summary["best"])
    assert summary["constraints"] == [f"params <= {LIMIT}"] and summary["ranking_note"] is None
    assert (summary["feasible"], summary["infeasible"]) == (n_ok, n_bad)
    assert all(e["params"] > LIMIT and "> 300000" in e["violates"] for e in summary["infeasible_best"])


def test_report_table_ranks_feasible_trials_and_flags_the_infeasible(searched: Experiment, tmp_path: Path) -> None:
    result = build_report(searched.directory, tmp_path / "report.html",
                          ReportOptions(top=3, draw=1, gradcam=False))
    page = result.path.read_text()
    ranking = searched.ranking()
    table = page.split('<table class="sortable data">', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tbody>", 1)[1].split("<tr")[1:]
    assert "<th>feasible</th>" in table and len(rows) == 6
    for rank_no, (row, t) in enumerate(zip(rows[:3], ranking.ranked), start=1):
        assert f'<td data-value="{rank_no}">{rank_no}</td><td data-value="{t.id}">{t.id}</td>' in row
        assert "<td>yes</td>" in row
    for row, t in zip(rows[3:], ranking.infeasible):
        assert 'class="infeasible"' in row and f'<td data-value="{t.id}">{t.id}</td>' in row
        assert f"<td>no: params = {_params(t):.0f} &gt; {LIMIT}</td>" in row
    assert f"params &lt;= {LIMIT}: {len(ranking.ranked)} feasible, {len(ranking.infeasible)} infeasible" in page


# -- nothing feasible ---------------------------------------------------------------------------------------
def test_no_feasible_trial_ranks_nothing_writes_no_best_and_says_why(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_config({**TABLE, "budget": {"max_trials": 20}, "constraints": {"params": {"max": 1000}}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    (exp.directory / "best.json").write_text("{}")  # as an earlier version could leave it: an infeasible best
    assert exp.run() == [] and not (exp.directory / "best.json").exists()
    reason = "no feasible trial: 20 completed, all violate params <= 1000"
    assert exp.ranking().reason() == reason
    assert main(["status", str(exp.directory)]) == 0
    out = capsys.readouterr().out
    assert reason in out and "top " not in out
    assert main(["status", str(exp.directory), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best"] == [] and summary["ranking_note"] == reason and summary["feasible"] == 0


# -- export chooses under the constraint ----------------------------------------------------------------------
def _fabricated(directory: Path, params: list[float]) -> Experiment:
    """A train-evaluator experiment whose trials are recorded by hand: scores 90, 80, ... and ``params``."""
    exp = Experiment.create(parse_config(TRAINED), directory)
    rng = np.random.default_rng(0)
    for i, p in enumerate(params):
        trial = Trial(i, exp.space.sample(rng), i)
        exp.store.submitted(trial)
        exp.store.finished(trial, Result(Status.COMPLETE, score=90.0 - 10 * i,
                                         metrics={"val_acc": 90.0 - 10 * i, "params": p}))
    exp.close()
    return exp


def test_export_chooses_the_best_feasible_trial(tmp_path: Path) -> None:
    exp = _fabricated(tmp_path / "exp", [615386, 250000, 100000])
    report = export_experiment(exp.directory, top=1, formats="json", verify=False)
    assert [m["trial_id"] for m in report.manifest["models"]] == [1]


def test_export_refuses_when_no_trial_is_feasible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = _fabricated(tmp_path / "exp", [615386, 400000])
    with pytest.raises(ExportError, match=r"no feasible trial: 2 completed, all violate params <= 300000"):
        export_experiment(exp.directory, formats="json", verify=False)
    assert main(["export", str(exp.directory), "--format", "json"]) == 2
    assert "params <= 300000" in capsys.readouterr().err
    assert not (exp.directory / "export").exists()


# -- Optuna storage -------------------------------------------------------------------------------------------
def test_resolve_storage_makes_relative_sqlite_paths_absolute_under_the_directory(tmp_path: Path) -> None:
    assert resolve_storage("sqlite:///study.db", tmp_path) == f"sqlite:///{tmp_path.resolve()}/study.db"
    assert resolve_storage("sqlite:///sub/s.db", tmp_path) == f"sqlite:///{tmp_path.resolve()}/sub/s.db"
    for url in ("sqlite:////abs/study.db", "sqlite://", "sqlite:///:memory:", "postgresql://u@h/db"):
        assert resolve_storage(url, tmp_path) == url


def test_relative_optuna_storage_lives_in_the_experiment_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = parse_config({**TABLE, "budget": {"max_trials": 4},
                        "strategy": {"name": "optuna", "options": {"storage": "sqlite:///study.db"}}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    exp.run()
    exp.close()
    assert (tmp_path / "exp" / "study.db").is_file() and not (elsewhere / "study.db").exists()
    assert "sqlite:///study.db" in (tmp_path / "exp" / "config.yaml").read_text()  # kept as written
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    resumed = Experiment.open(tmp_path / "exp", max_trials=6)
    resumed.run()
    resumed.close()
    assert not (other / "study.db").exists()
    with sqlite3.connect(tmp_path / "exp" / "study.db") as db:
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 6
