"""``nas report DIR``: one self-contained HTML file describing an experiment.

Sections (ids in :data:`SECTIONS`): a summary; the best-so-far score over finished trials and over wall time;
every completed trial as score against parameters, FLOPs and latency with the Pareto fronts; a table of the top
K; for a generator search, the sample grids of the top trials; drawings of the best architectures' cells; op
frequencies among the best trials, decision importances (fANOVA) and the SHAP values of a surrogate of the score
(:mod:`nas.outputs.explain.surrogate`); failures grouped by reason; the supernet search of one-shot strategies;
Grad-CAM heat maps of the best conv model on validation images; the explanations ``nas explain`` wrote to
``DIR/explain`` with their sanity checks.
A section that has nothing to show says why instead, so every section is always there.

Plots are PNG ``data:`` URIs, style and script are inline: the file loads nothing else and can be mailed or
archived on its own. It is written atomically (a reader sees the previous report or the new one).
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from nas.core.checks import check_int
from nas.core.errors import ConfigError, NASError
from nas.core.io import atomic_write_text
from nas.core.requires import require
from nas.core.version import __version__
from nas.graph.architecture import Architecture
from nas.outputs.explain.attribution import METHODS
from nas.outputs.explain.run import EXPLAIN_DIR, read_index
from nas.outputs.explain.surrogate import search_shap, shap_figure
from nas.outputs.report.analysis import best_fraction_count, decision_importance, op_frequency
from nas.outputs.report.cam import grad_cam
from nas.outputs.report.cells import draw_architecture
from nas.outputs.report.gradcam import (
    ExperimentModels,
    SkipSection,
    best_trained_model,
    gradcam_figure,
    pick_images,
    training_task,
)
from nas.outputs.report.plots import (
    bar_figure,
    best_so_far_figure,
    pareto_front,
    png_data_uri,
    supernet_figure,
    tradeoff_figure,
)
from nas.outputs.report.text import cell_summary, format_metric, score_header, score_metric, top_columns
from nas.outputs.view import ExperimentView
from nas.storage.store import RUNNING, StoredBaseline, StoredTrial
from nas.trials.baselines import place
from nas.trials.ranking import Ranking

__all__ = ["build_report", "ReportResult", "ReportOptions", "SECTIONS", "REPORT_FILE", "GRADCAM_MIN_SIZE"]

REPORT_FILE = "report.html"
#: Grad-CAM uses the last feature map at least this high and wide (see :func:`nas.outputs.report.cam.last_feature_map`).
GRADCAM_MIN_SIZE = 4

#: (id, title) of every section, in page order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("progress", "Best-so-far score"),
    ("tradeoffs", "Score against cost"),
    ("top", "Top trials"),
    ("samples", "Generated samples"),
    ("cells", "Best architectures"),
    ("ops", "Ops and decisions"),
    ("failures", "Failures"),
    ("supernet", "One-shot search"),
    ("gradcam", "Grad-CAM"),
    ("explain", "Explanations"),
)


@dataclass(frozen=True)
class ReportOptions:
    """What to put in the report: ``top`` rows in the table, ``draw`` architectures drawn, ``gradcam`` on or
    off with ``images`` validation images, ``retrain_epochs`` capping a retraining for Grad-CAM (``None``:
    as the search trained)."""

    top: int = 5
    draw: int = 3
    gradcam: bool = True
    images: int = 6
    retrain_epochs: int | None = None

    def __post_init__(self) -> None:
        for name, minimum in (("top", 1), ("draw", 0), ("images", 1), ("retrain_epochs", 1)):
            value = getattr(self, name)
            if value is None and name == "retrain_epochs":
                continue
            check_int(f"report option {name}", value, minimum=minimum)


@dataclass
class ReportResult:
    """Where the report went, how long it took, and why sections were left empty (section id -> reason)."""

    path: Path
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)


# -- data ---------------------------------------------------------------------------------------------------
@dataclass
class _Data:
    """Everything the sections read, loaded once: the experiment as read (``view``), its trials and ranking
    (``ranked``: the feasible completed trials, best first; ``ranking``: with the infeasible ones); ``models``
    builds the search space and the evaluator from its config when a section needs them."""

    view: ExperimentView
    models: ExperimentModels
    trials: list[StoredTrial]
    ranked: list[StoredTrial]
    created: float
    options: ReportOptions
    ranking: Ranking[StoredTrial]

    @property
    def score_header(self) -> str:
        """Short name of the score: for the train evaluator ``val`` (validation accuracy), the metric's name, or
        ``-name`` for a metric to minimise (the score is its negation); else ``score``."""
        name = self.view.config.evaluator.name
        if name not in ("train", "ssl"):
            return "score"
        return score_header(self.trials, default="val" if name == "train" else "score")

    @property
    def score_label(self) -> str:
        """Axis label of the score: validation accuracy (or the chosen metric, with its direction) for the train
        evaluator, else the evaluator's signal."""
        evaluator = self.view.config.evaluator.name
        metric = score_metric(self.trials) if evaluator in ("train", "ssl") else None
        if evaluator == "train" and (metric is None or metric[0] == "accuracy"):
            return "validation accuracy (%)"
        if metric is not None:  # the train evaluator's chosen metric, or a self-supervised (ssl) one
            name, direction = metric
            return (f"validation {name}" if direction == "max"
                    else f"-(validation {name}): {name} minimised, higher score is better")
        signal = self.ranked[0].info.get("signal") if self.ranked else None
        return f"score ({signal})" if signal else "score"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _figure(fig: Any, alt: str) -> str:
    return _img(png_data_uri(fig), alt)


# -- sections ---------------------------------------------------------------------------------------------
def _summary(d: _Data) -> str:
    cfg = d.view.config
    counts = d.view.counts()
    best = d.ranked[0] if d.ranked else None
    ev = cfg.evaluator
    evaluator = ev.name + (f" on task {ev.task}" if ev.task else "")
    if ev.name == "train" and ev.train:
        evaluator += " (" + ", ".join(f"{k} {v}" for k, v in ev.train.items()) + ")"
    rows = [
        ("space", f"{cfg.space.name} {json.dumps(cfg.space.options)}" if cfg.space.options else cfg.space.name),
        ("strategy", f"{cfg.strategy.name} {json.dumps(cfg.strategy.options)}" if cfg.strategy.options
         else cfg.strategy.name),
        ("evaluator", evaluator),
        ("objectives", ", ".join(cfg.objectives)),
        *([("searched hyperparameters", json.dumps(cfg.searchable))] if cfg.searchable else []),
        ("trials", f"{d.view.done} of {cfg.budget.max_trials} done: "
                   + ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))),
        ("search time", f"{d.view.elapsed:.1f} s"),
        *([("constraints", f"{d.ranking.constraint_text()}: {len(d.ranking.ranked)} feasible, "
                           f"{len(d.ranking.infeasible)} infeasible (not ranked) of {d.ranking.completed} completed "
                           "trials")] if d.ranking.constraints else []),
        ("best", f"trial {best.id}, {d.score_label} {format_metric(best.score, 'score')}" if best
         else d.ranking.reason()),
        ("score", (best.info.get("signal", "-") if best else "-") + "; the test split is reported, never used to rank"),
        *([("baselines", "; ".join(_baseline_fact(b, d) for b in d.view.baselines)
            + " (reference models trained with the same task and settings, shown for comparison, never ranked)")]
          if d.view.baselines else []),
    ]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    config = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    return (f'<table class="facts">{table}</table>'
            f"<details><summary>config.yaml</summary><pre>{_e(config)}</pre></details>")


def _progress(d: _Data) -> str:
    finished = sorted((t for t in d.trials if t.status != RUNNING and t.finished is not None),
                      key=lambda t: (t.finished, t.id))
    scores = [t.score if t.status == "COMPLETE" and _finite(t.score) else None for t in finished]
    if not any(s is not None for s in scores):
        raise SkipSection("no completed trial yet")
    seconds = [max(0.0, t.finished - d.created) for t in finished]  # type: ignore[operator]  # finished is set: filtered above
    fig = best_so_far_figure(scores, seconds, d.score_label)
    return (_figure(fig, "best-so-far score over trials and over time")
            + f"<p>{len(finished)} finished trials in completion order (failed and pruned ones count as trials "
              "without a score); wall time is measured from the experiment's creation, pauses included.</p>")


_COSTS = (("params", "parameters"), ("flops", "FLOPs (batch 1)"), ("latency_ms", "CPU latency (ms, batch 1)"))


def _tradeoffs(d: _Data) -> str:
    panels = []
    fronts = []
    for key, name in _COSTS:
        rows = [(i, t) for i, t in enumerate(d.ranked) if _finite(t.metrics.get(key)) and _finite(t.score)]
        if len(rows) < 2:
            continue
        costs = [float(t.metrics[key]) for _, t in rows]
        scores = [float(t.score) for _, t in rows]  # type: ignore[arg-type]  # _finite(t.score) above: not None
        labels = [f"#{i + 1}" if i < d.options.top else "" for i, _ in rows]
        panels.append((name, costs, scores, labels))
        front = pareto_front(costs, scores)
        fronts.append(f"<li>{_e(name)}: trials {', '.join(str(rows[i][1].id) for i in front)}</li>")
    if not panels:
        raise SkipSection("fewer than 2 completed trials report parameters, FLOPs or latency")
    fig = tradeoff_figure(panels, d.score_label)
    return (_figure(fig, "score against cost with the Pareto front")
            + f"<p>Every {'feasible ' if d.ranking.constraints else ''}completed trial; circled: the Pareto front "
              "(no other trial has a higher score at a lower or equal cost); stars and <code>#k</code>: the top "
              f"{d.options.top}. Pareto-optimal trials, "
              "cheapest first:</p>"
            + f"<ul>{''.join(fronts)}</ul>")


def _baseline_fact(b: StoredBaseline, d: _Data) -> str:
    if b.score is None:
        return f"{b.name} {b.status.lower()}" + (f" ({b.error})" if b.error else "")
    scores = [t.score for t in d.ranked if t.score is not None]
    return (f"{b.name} {format_metric(b.score, 'score')} (would rank {place(b.score, scores)} of "
            f"{len(scores) + 1})")


def _top(d: _Data) -> str:
    """The top feasible trials, ranked, then (with constraints) the best infeasible ones, unranked and flagged
    with what they violate, then the completed baselines, unranked and marked."""
    top = d.options.top
    rows: list[tuple[int | None, StoredTrial, str]] = [(rank, t, "yes") for rank, t in
                                                       enumerate(d.ranked[:top], start=1)]
    rows += [(None, t, f"no: {why}") for t, why in zip(d.ranking.infeasible[:top], d.ranking.violations)]
    rows += [(None, b, "baseline") for b in d.view.baselines if b.score is not None]
    if not rows:
        raise SkipSection("no completed trial")
    flagged = bool(d.ranking.constraints)
    columns = top_columns([t for _, t, _ in rows], d.score_header)
    head = "".join(f"<th>{_e(h)}</th>" for h in ("rank", "trial", *(c[0] for c in columns),
                                                  *(["feasible"] if flagged else []), "hash", "cell"))
    body = []
    for rank, t, verdict in rows:
        shown = "-" if rank is None else rank
        who = f"baseline {t.name}" if isinstance(t, StoredBaseline) else str(t.id)
        cells = [f'<td data-value="{"" if rank is None else rank}">{shown}</td>',
                 f'<td data-value="{t.id}">{_e(who)}</td>']
        for _, key, kind in columns:
            value = t.score if key == "score" else t.metrics.get(key)
            raw = value if _finite(value) else ""
            cells.append(f'<td class="num" data-value="{raw}">{_e(format_metric(value, kind))}</td>')
        if flagged:
            cells.append(f"<td>{_e(verdict)}</td>")
        cells.append(f"<td><code>{_e(t.hash[:10])}</code></td><td><code>{_e(cell_summary(t.arch))}</code></td>")
        row_class = ("" if rank is not None else ' class="baseline"' if isinstance(t, StoredBaseline)
                     else ' class="infeasible"')
        body.append(f"<tr{row_class}>" + "".join(cells) + "</tr>")
    note = (f"<p>{_e(d.ranking.reason())}.</p>" if not d.ranked else "") + (
        f"<p>Constraints {_e(d.ranking.constraint_text())}: only feasible trials are ranked; the best "
        f"{min(top, len(d.ranking.infeasible))} of the {len(d.ranking.infeasible)} infeasible ones follow, unranked "
        "(rank -).</p>" if d.ranking.infeasible else "") + (
        "<p>Rows <em>baseline NAME</em> are reference models (config <code>baselines</code>) trained with the same "
        "task and training settings; they are not ranked (rank -) and never chosen as the best.</p>"
        if any(isinstance(t, StoredBaseline) for _, t, _ in rows) else "")
    fid = next((t.info.get("fid_note") for t in d.ranked if t.info.get("fid_note")), None)
    if fid:
        note += f"<p>Generators are ranked by FID, lower is better (the score is -fid): {_e(fid)}.</p>"
    return (f'<table class="sortable data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            + note + "<p>Ranked by validation score (click a column to sort). Cell: <code>n=op(s)</code> means node "
            "<code>n</code> receives <code>op</code> applied to node <code>s</code>; <code>+</code> sums inputs; "
            "<code>none</code> edges are left out.</p>")


#: generator searches: the sample grids of this many top trials
SAMPLE_GRIDS = 3


def _samples(d: _Data) -> str:
    """A generator search (the ``gan`` evaluator): the sample grid each of the top trials' results carries (the same
    fixed latent vectors for every trial), with its FID and the caveat that these FIDs are not Inception FIDs;
    then those of the completed baselines (reference generators, config ``baselines``), marked, unranked."""
    if d.view.config.evaluator.name != "gan":
        raise SkipSection(f"the {d.view.config.evaluator.name} evaluator does not generate images; a generator search "
                          "(evaluator gan) shows the sample grids of its top trials here")
    shown = [t for t in d.ranked if t.info.get("samples_png")][:SAMPLE_GRIDS]
    if not shown:
        raise SkipSection("no completed trial carries a sample grid (evaluator option grid_samples: 0)")
    note = next((t.info.get("fid_note") for t in shown if t.info.get("fid_note")), "")
    parts = [_sample_figure(t, f"Rank {d.ranked.index(t) + 1}, trial {t.id}", f"lower is better; {note}")
             for t in shown]
    parts += [_sample_figure(b, f"Baseline {b.name} (a reference generator, not ranked)",
                             f"{b.info.get('loss', '?')} loss") for b in d.view.baselines if b.info.get("samples_png")]
    floor = shown[0].metrics.get("fid_floor")
    return ("".join(parts) + f"<p>Every grid is drawn from the same fixed latent vectors (a class-conditional "
            f"generator: one class per column). The FID floor, real validation against real training images, is "
            f"{_e(format_metric(floor, 'score'))}: what a perfect generator would approach.</p>")


def _sample_figure(t: StoredTrial, label: str, fid_note: str) -> str:
    """The sample grid ``t``'s result carries, captioned ``label``, its FID (with ``fid_note``), density, coverage,
    parameters and cells."""
    m = t.metrics
    facts = (f"FID {format_metric(m.get('fid'), 'score')} ({fid_note}), density "
             f"{format_metric(m.get('density'), 'score')}, coverage {format_metric(m.get('coverage'), 'score')}, "
             f"{format_metric(m.get('params'), 'count')} parameters")
    baseline = isinstance(t, StoredBaseline)
    image = _img("data:image/png;base64," + t.info["samples_png"],
                 f"samples of baseline {t.name}" if isinstance(t, StoredBaseline) else f"samples of trial {t.id}")
    css = "samples baseline" if baseline else "samples"
    return (f'<figure class="{css}">{image}<figcaption>{_e(label)}: {_e(facts)}.<br>'
            f"<code>{_e(cell_summary(t.arch))}</code></figcaption></figure>")


def _cells(d: _Data) -> str:
    if not d.ranked:
        raise SkipSection(d.ranking.reason())
    parts = []
    for rank, t in enumerate(d.ranked[: d.options.draw], start=1):
        score = format_metric(t.score, "score")
        # a define-by-run model has no cells to draw: its decisions say what it is
        drawn = _figure(draw_architecture(t.arch), f"cells of trial {t.id}") if t.arch.cells else ""
        parts.append(f'<div class="arch"><h3>#{rank}: trial {t.id}, {d.score_header} {_e(score)}</h3>'
                     f"{drawn}<p><code>{_e(cell_summary(t.arch))}</code></p></div>")
    return ("<p>Nodes in topological order; each edge applies the op written on it; orange nodes form the cell's "
            "output; dashed grey edges are <code>none</code> (zero).</p>" + "".join(parts))


def _ops(d: _Data) -> str:
    if not d.ranked:
        raise SkipSection(d.ranking.reason())
    archs = [t.arch for t in d.ranked]
    n_best = best_fraction_count(len(archs))
    freq = op_frequency(archs, n_best)
    out = ['<div class="pair">']
    if freq.labels:  # define-by-run models have no cell edges
        fig = bar_figure(freq.labels, [(f"best {freq.n_best} trials", freq.best), (f"all {freq.n_all}", freq.overall)],
                         "share of the cell's edges", "op frequency")
        out.append(f'<div>{_figure(fig, "op frequency")}<p>Share of edges using each op among the best '
                   f"quarter of the completed trials ({freq.n_best}) and among all {freq.n_all}.</p></div>")
    scores = [t.score for t in d.ranked if t.score is not None]  # all of them: ranked trials have a score
    imp = decision_importance(d.models.space, archs, scores, seed=d.view.config.seed)
    if imp.names:
        shown = min(len(imp.names), 15)
        fig = bar_figure(imp.names[:shown], [("importance", imp.values[:shown])], "importance (sums to 1)",
                         "decision importance")
        out.append(f"<div>{_figure(fig, 'decision importance')}<p>{_e(imp.method)}, {imp.n_trials} completed "
                   f"trials; the {shown} most important of {len(imp.names)} varying decisions.</p></div>")
    else:
        out.append(f'<div><p class="skip">Decision importance: not computed: {_e(imp.reason)}.</p></div>')
    out.append(_search_shap(d, archs, scores))
    return "".join(out) + "</div>"


def _search_shap(d: _Data, archs: list[Architecture], scores: list[float]) -> str:
    """The SHAP panel beside the fANOVA importance: a surrogate of the score over the decisions, its SHAP values
    per decision and per choice, and its cross-validated fit."""
    try:
        res = search_shap(d.models.space, archs, scores, seed=d.view.config.seed)
    except ConfigError as err:  # shap not installed: say which extra brings it
        return f'<div><p class="skip">Which choices mattered (SHAP): not computed: {_e(err)}.</p></div>'
    if res.reason:
        return f'<div><p class="skip">Which choices mattered (SHAP): not computed: {_e(res.reason)}.</p></div>'
    trust = ("a good fit" if res.r2 >= 0.5 else "a loose fit: read the values as hints" if res.r2 >= 0.1
             else "no better than the mean score: do not read much into the values")
    return (f'<div class="wide">{_figure(shap_figure(res), "SHAP values of a surrogate of the score")}'
            f"<p>Which choices mattered (SHAP): {_e(res.model)}, fitted on {res.n_trials} completed trials to predict "
            f"the score, explained by <code>shap.TreeExplainer</code>. Left: how far each decision moves the "
            f"predicted score (mean |SHAP|); right: the estimated effect of taking a choice (mean SHAP over the "
            f"trials that took it; green raises the score). Surrogate fit, {res.folds}-fold cross-validated: "
            f"R<sup>2</sup> {res.r2:.2f}, Spearman {res.spearman:.2f} ({_e(trust)}).</p></div>")


def _failures(d: _Data) -> str:
    failed = [t for t in d.trials if t.status == "FAILED"]
    pruned = sum(t.status == "PRUNED" for t in d.trials)
    running = sum(t.status == RUNNING for t in d.trials)
    notes = []
    if pruned:
        notes.append(f"{pruned} trial(s) were pruned by early stopping (not failures).")
    if running:
        notes.append(f"{running} trial(s) are running or were interrupted; `nas resume` runs them again.")
    note = "".join(f"<p>{_e(n)}</p>" for n in notes)
    if not failed:
        return f'<p class="ok">No trial failed.</p>{note}'
    groups: dict[str, list[StoredTrial]] = {}
    for t in failed:
        groups.setdefault(t.error or "(no reason recorded)", []).append(t)
    rows = []
    for reason, ts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        ids = ", ".join(str(t.id) for t in ts[:20]) + (" ..." if len(ts) > 20 else "")
        tb = next((t.traceback for t in ts if t.traceback), None)
        detail = f"<details><summary>traceback of trial {ts[0].id}</summary><pre>{_e(tb)}</pre></details>" if tb else ""
        rows.append(f'<tr><td class="num">{len(ts)}</td><td><code>{_e(reason)}</code>{detail}</td><td>{ids}</td></tr>')
    return (f"<p>{len(failed)} of {len(d.trials)} trials failed, in {len(groups)} group(s) by reason.</p>"
            f'<table class="data"><thead><tr><th>count</th><th>reason</th><th>trials</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{note}")


def _gradcam(d: _Data) -> str:
    if not d.options.gradcam:
        raise SkipSection("turned off (--no-gradcam)")
    try:  # before any model is trained: Grad-CAM is computed by Captum (extra explain)
        require("captum.attr", "Grad-CAM", "explain")
    except ConfigError as err:
        raise SkipSection(str(err)) from None
    task = training_task(d.models)  # first: it skips the section for tasks Grad-CAM cannot explain
    trained = best_trained_model(d.models, d.ranked, d.options.retrain_epochs)
    idx = pick_images(task, d.options.images)
    x = torch.as_tensor(np.asarray(task.x_val[idx]))
    cam = grad_cam(trained.model, x, min_size=GRADCAM_MIN_SIZE)
    labels = [task.classes[int(task.y_val[i])] for i in idx]
    fig = gradcam_figure(np.asarray(task.x_val[idx]), labels, cam, task.classes)
    channels, height, width = cam.feature_shape
    return (_figure(fig, "Grad-CAM heat maps on validation images")
            + f"<p>Model: trial {trained.trial_id}, {_e(trained.source)}.</p>"
              f"<p>Heat maps of the predicted class at the output of <code>{_e(cam.layer)}</code> ({channels} "
              f"channels, {height}x{width}: the last feature map at least {GRADCAM_MIN_SIZE}x{GRADCAM_MIN_SIZE} "
              f"before the classifier, or the last one when none is), upsampled to the input size; red marks the "
              "regions that raise the class score most.</p>")


def _explain(d: _Data) -> str:
    folder = d.view.directory / EXPLAIN_DIR
    try:
        index = read_index(folder)
    except NASError as err:
        raise SkipSection(str(err)) from None
    if index is None:
        raise SkipSection(f"no explanations yet: run `nas explain DIR` (after `nas export DIR`) to attribute the "
                          f"best model's predictions with {', '.join(METHODS)}; this section then shows them")
    try:
        return _explanations(folder, index)
    except (KeyError, TypeError, ValueError) as err:  # an index.json written by hand or by another version
        raise SkipSection(f"{folder / 'index.json'} does not describe explanations ({type(err).__name__}: {err}); "
                          "run `nas explain DIR` again") from None


def _explanations(folder: Path, index: dict[str, Any]) -> str:
    model = index.get("model", {})
    rows, figures = [], []
    for m in index["methods"]:
        png = folder / str(m.get("file", ""))
        if png.is_file() and png.parent == folder:
            uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
            figures.append(f"<h3>{_e(m['method'])}</h3>{_img(uri, 'attributions by ' + str(m['method']))}")
        r, f = m.get("randomisation"), m.get("faithfulness")
        check = (f"{'passed' if r['passed'] else 'FAILED'} (rho {r['correlation']:.2f} &lt; {r['threshold']:.2f}"
                 f"{'' if r['passed'] else ' not met'})" if r else "not run")
        faith = (f"{f['deletion_auc']:.3f} (random {f['random_deletion_auc']:.3f})</td><td class=\"num\">"
                 f"{f['insertion_auc']:.3f} (random {f['random_insertion_auc']:.3f})" if f else "-</td><td>-")
        rows.append(f"<tr><td>{_e(m['method'])}</td><td>{check}</td><td class=\"num\">{faith}</td>"
                    f'<td class="num">{float(m.get("seconds", 0)):.1f}</td></tr>')
    table = ('<table class="data"><thead><tr><th>method</th><th>model randomisation</th><th>deletion AUC</th>'
             "<th>insertion AUC</th><th>seconds</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return (f"<p>Model {_e(model.get('folder', '?'))} on {len(index.get('inputs', []))} validation inputs of task "
            f"{_e(model.get('task', '?'))} ({_e(model.get('kind', '?'))}), each explained for the class it "
            "predicts (written by <code>nas explain</code>).</p>" + table
            + "<p>Model randomisation (Adebayo et al. 2018): Spearman correlation between the attributions of the "
              "trained model and of copies with their weights re-initialised (averaged over the inputs, then the "
              "mean of its absolute value over the re-initialisations, so a map whose sign merely flips with the "
              "draw does not pass; magnitudes for Grad-CAM and saliency, signed values for the others); a method that "
              "explains what was learned changes (passes below the threshold). Deletion / insertion (Petsiuk et al. "
              "2018): area under the predicted class's probability as the most attributed inputs are removed "
              "(lower is better) or restored (higher is better), against a random order.</p>" + "".join(figures))


def _supernet(d: _Data) -> str:
    outcome = d.view.supernet
    if outcome is None:
        raise SkipSection(f"strategy {d.view.config.strategy.name!r} trains no supernet (one-shot strategies: darts, "
                          "gdas, beta_darts)")
    history = outcome.history
    if not history:
        raise SkipSection("the supernet search stopped before its first epoch ended")
    op_weights = {k: v for k, v in outcome.alphas.items() if not k.endswith(".edges")}  # not edge weights
    fig = supernet_figure(history, op_weights, outcome.slots, outcome.collapse_threshold)
    warnings = outcome.warnings
    notes = (f"<p>{_e(outcome.algorithm)}: {outcome.epochs_run} epochs, {outcome.cpu_seconds / 60:.2f} "
             f"CPU-minutes ({outcome.wall_seconds:.0f} s). Derived cell: <code>{_e(cell_summary(outcome.arch))}</code>"
             f" (trial 0 trains it from scratch).</p>")
    if outcome.stopped:
        notes += f'<p class="skip">Stopped early: {_e(outcome.stopped)}.</p>'
    if outcome.uniform_warning:
        notes += f'<p class="skip">Warning: {_e(outcome.uniform_warning)}.</p>'
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings[:8])
        more = f"<li>... {len(warnings) - 8} more</li>" if len(warnings) > 8 else ""
        notes += f"<p>Collapse guard warnings ({len(warnings)}):</p><ul>{items}{more}</ul>"
    else:
        notes += '<p class="ok">The collapse guard raised no warning.</p>'
    return (_figure(fig, "supernet accuracy, collapse signals and final op weights per epoch")
            + "<p>Left: the supernet's accuracy on the two halves of the training split. Middle: the share of "
              "parameter-free ops (none, skip, pooling) in the cell derived after each epoch and the normalised "
              "entropy of the op weights (1 = uniform), against the collapse guard's threshold. Right: the op "
              "weights the derived cell was read from (colour from each panel's smallest to its largest weight)."
              "</p>" + notes)


_BUILDERS: dict[str, Callable[[_Data], str]] = {
    "summary": _summary, "progress": _progress, "tradeoffs": _tradeoffs, "top": _top, "samples": _samples,
    "cells": _cells,
    "ops": _ops, "failures": _failures, "supernet": _supernet, "gradcam": _gradcam,
    "explain": _explain,
}


# -- page -------------------------------------------------------------------------------------------------
_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #f6f7f9; }
header { background: #20344f; color: #fff; padding: 18px 32px 12px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 8px; color: #c9d6e8; }
nav a { color: #fff; margin-right: 14px; text-decoration: none; border-bottom: 1px dotted #9fb4d0; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: 10px 20px 16px;
          margin: 18px 0; }
h2 { font-size: 18px; margin: 6px 0 10px; color: #20344f; }
h3 { font-size: 15px; margin: 14px 0 4px; }
img { max-width: 100%; height: auto; display: block; }
figure.samples { display: inline-block; margin: 6px 18px 10px 0; max-width: 420px; vertical-align: top; }
figure.samples img { width: 360px; image-rendering: pixelated; }
table { border-collapse: collapse; margin: 6px 0; }
table.data th, table.data td { border-bottom: 1px solid #e3e7ee; padding: 4px 10px; text-align: left;
                               vertical-align: top; }
table.data th { background: #eef2f7; }
table.data tr.baseline td { background: #fdf6e3; font-style: italic; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-order="asc"]::after { content: " \\25B2"; }
table.sortable th[data-order="desc"]::after { content: " \\25BC"; }
table.facts th { text-align: left; padding: 2px 16px 2px 0; color: #555; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
pre { background: #f3f5f8; padding: 8px; overflow-x: auto; max-height: 320px; }
.skip { color: #7a5b00; background: #fff8e1; padding: 6px 10px; border-radius: 4px; }
.ok { color: #1b6e2a; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; }
.pair > div { flex: 1 1 420px; }
.pair > div.wide { flex: 1 1 100%; }
footer { color: #777; font-size: 12px; text-align: center; margin: 12px; }
"""

_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute("data-order") !== "asc";
      function key(row) {
        var cell = row.cells[col];
        var raw = cell.getAttribute("data-value");
        return raw === null ? cell.textContent : raw;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      });
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("data-order"); });
      th.setAttribute("data-order", asc ? "asc" : "desc");
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _render(d: _Data) -> tuple[str, dict[str, str]]:
    """The HTML page and the reasons of the sections left empty."""
    skipped: dict[str, str] = {}
    sections = []
    for sid, title in SECTIONS:
        try:
            body = _BUILDERS[sid](d)
        except SkipSection as err:
            skipped[sid] = str(err)
            body = f'<p class="skip">Nothing to show: {_e(err)}.</p>'
        sections.append(f'<section id="{sid}" data-section="{sid}"><h2>{_e(title)}</h2>{body}</section>')
    cfg = d.view.config
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title in SECTIONS)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>nasgraph report: {_e(cfg.name)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>Experiment {_e(cfg.name)}</h1><p>{_e(cfg.strategy.name)} on space {_e(cfg.space.name)}, "
        f"evaluator {_e(cfg.evaluator.name)}{' on ' + _e(cfg.evaluator.task) if cfg.evaluator.task else ''}; "
        f"{d.view.done} trials</p><nav>{nav}</nav></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>nasgraph {_e(__version__)}, report generated {when}</footer>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
    return page, skipped


def build_report(directory: str | Path, out: str | Path | None = None,
                 options: ReportOptions | None = None) -> ReportResult:
    """Write the report of the experiment in ``directory`` to ``out`` (default ``DIR/report.html``) atomically.

    Reads the experiment (:class:`~nas.outputs.view.ExperimentView`) without changing it; may train the best
    architecture again for the Grad-CAM section (see :mod:`nas.outputs.report.gradcam`). Raises
    :class:`~nas.core.errors.ConfigError` when ``directory`` is not an experiment."""
    start = time.perf_counter()
    options = options or ReportOptions()
    view = ExperimentView.open(directory)
    trials = list(view.trials)
    created = view.created if view.created is not None else min((t.submitted for t in trials), default=time.time())
    models = ExperimentModels(directory=view.directory, config=view.config)
    ranking = view.ranking()
    data = _Data(view, models, trials, ranking.ranked, float(created), options, ranking)
    page, skipped = _render(data)
    path = Path(out) if out is not None else Path(directory) / REPORT_FILE
    atomic_write_text(path, page)
    return ReportResult(path, time.perf_counter() - start, skipped)
