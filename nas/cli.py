"""The ``nas`` command line: parses arguments, calls the library, prints. No logic of its own.

Exit codes: 0 success, 2 bad input (any :class:`~nas.core.errors.NASError`), 1 other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.core.errors import ConfigError, NASError
from nas.runtime.events import Event, NodeLost, TrialFinished, WaitingForWorkers, WorkersLimited

if TYPE_CHECKING:  # imported lazily at run time (torch)
    from nas.outputs.export import ExportReport
    from nas.outputs.view import ExperimentView
    from nas.runtime.experiment import Experiment

__all__ = ["main"]


def _cmd_spaces(args: argparse.Namespace) -> int:
    from search_spaces import SPACES, get_space

    rows: list[dict[str, object]] = []
    for entry in SPACES.entries():
        if entry.error is not None:
            rows.append({"name": entry.name, "plugin": entry.plugin, "error": entry.error})
            continue
        space = get_space(entry.name)
        rows.append({"name": entry.name, "input": space.input_kind, "decisions": len(space.decision_sizes()),
                     "size": space.size(), "options": space.options()})
        if entry.plugin is not None:
            rows[-1]["plugin"] = entry.plugin
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            if "error" in r:
                print(f"{r['name']:<12} not usable: {r['error']}")
                continue
            plugin = f"  (plugin from {r['plugin']})" if "plugin" in r else ""
            print(f"{r['name']:<12} {r['input']:<9} {r['decisions']:>3} decisions  {r['size']:.4g} members{plugin}")
    return 0


def _cmd_references(args: argparse.Namespace) -> int:
    from nas.graph import references

    for name in references.list_references():
        print(f"{name:<12} {references.input_kind(name):<9} {references.reference_kind(name)}")
    return 0


def _print_baselines(entries: list[dict[str, object]], ranked: int) -> None:
    """The baselines of a summary (``summary["baselines"]``), marked and placed against the ``ranked`` trials."""
    if not entries:
        return
    print("baselines (reference models, same task and training; shown for comparison, never ranked as best):")
    for b in entries:
        if b["score"] is None:
            print(f"  [baseline] {b['name']:<10} {b['status']}" + (f": {b['error']}" if b["error"] else ""))
            continue
        test, params = b["test_acc"], b["params"]
        print(f"  [baseline] {b['name']:<10} "
              + (f"fid {b['fid']:>8.3f}" if isinstance(b.get("fid"), float) else f"val {b['score']:>7.2f}  test "
                 + (f"{test:>7.2f}" if isinstance(test, float) else f"{'-':>7}"))
              + "  params " + (f"{params:>11,.0f}" if isinstance(params, (int, float)) else f"{'-':>11}")
              + f"  would rank {b['place']} of {ranked + 1}")


def _key_values(items: list[str], flag: str) -> dict[str, object]:
    """``KEY=VALUE`` arguments as a mapping, each value read as YAML (``0.1`` a number, ``true`` a boolean)."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r}: give KEY=VALUE, e.g. {flag} lr=0.05")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    """``nas train REFERENCE --task T``: one reference model trained alone; exit 1 if its training failed."""
    from nas.runtime.api import train_reference

    exp = train_reference(args.reference, args.task, epochs=args.epochs, seed=args.seed,
                          task_options=_key_values(args.task_option, "--task-option"),
                          train=_key_values(args.train, "--train"), directory=args.out, overwrite=args.overwrite,
                          progress=_progress(args.quiet))
    try:
        result = exp.baselines()[0]
        if result.score is None:
            print(f"{args.reference} on {args.task}: {result.status}: {result.error}")
            return 1
        m = result.metrics
        metric = str((result.info or {}).get("metric", "accuracy"))  # the task's metric: rmse for regression
        val = result.score if metric == "accuracy" else m.get(f"val_{metric}", result.score)
        test, params = m.get("test_acc" if metric == "accuracy" else f"test_{metric}"), m.get("params")
        spec = ".2f" if metric == "accuracy" else ".4g"
        print(f"{args.reference} on {args.task}: validation {metric} {val:{spec}}, test {metric} "
              + (f"{test:{spec}}" if test is not None else "-") + ", parameters "
              + (f"{params:,.0f}" if params is not None else "-")
              + (f", {m['train_seconds']:.1f} s" if "train_seconds" in m else ""))
        print(f"experiment: {exp.directory} (export the model: nas export {exp.directory} --baselines)")
        return 0
    finally:
        exp.close()


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from search_spaces import get_space

    space = get_space(args.space)
    arch = space.sample(np.random.default_rng(args.seed))
    print(arch.to_json(indent=2))
    return 0


def _print_ranked(exp: Experiment, top: int = 5) -> None:
    ranking = exp.ranking()
    ranked = ranking.ranked
    if ranking.constraints:
        print(f"constraints {ranking.constraint_text()}: {len(ranked)} feasible, {len(ranking.infeasible)} "
              "infeasible (not ranked) of the completed trials")
    if not ranked:
        print(ranking.reason())
        return
    from nas.outputs.report.text import score_header, score_metric

    print(_top_heading(ranked, top))
    metric = score_metric(ranked)
    measured = "accuracy" if metric is None else metric[0]
    test_key, test_head = (("test_acc", "test") if measured == "accuracy"
                           else (f"test_{measured}", f"test {measured}"))
    val_head = score_header(ranked)
    spec = ".2f" if measured == "accuracy" else ".4g"  # accuracy in %; f1, auroc, r2 in [0, 1]; rmse in units
    if measured == "fid":  # generators: FID itself (lower is better) and coverage beside it; no test split
        val_head, test_key, test_head = "fid", "coverage", "coverage"
    vw, tw = max(7, len(val_head)), max(7, len(test_head))
    print(f"  {'rank':>4} {'trial':>5} {val_head:>{vw}} {test_head:>{tw}} {'params':>9}  cell")
    for i, t in enumerate(ranked[:top], start=1):
        cells = "; ".join(f"{name}: " + " ".join(f"{s}>{d}:{op}" for s, d, op in c.edges if op != "none")
                          for name, c in t.arch.cells.items())
        macro = t.arch.macro
        if not cells and isinstance(macro.get("decisions"), dict):  # a define-by-run model: its active decisions
            cells = " ".join(f"{k}={v}" for k, v in macro["decisions"].items() if k not in macro.get("inactive", []))
        params = t.metrics.get("params")
        test = t.metrics.get(test_key)
        value = t.metrics.get("fid", t.score) if measured == "fid" else t.score
        print(f"  {i:>4} {t.id:>5} {value:>{vw}{spec}} {(f'{test:{spec}}' if test is not None else '-'):>{tw}} "
              f"{(f'{params:,.0f}' if params else '-'):>9}  {cells[:110]}")


def _top_heading(ranked: Sequence[object], top: int) -> str:
    """The line above a top-K table (end of ``nas search``, ``nas status``): what the ranking is by, with the
    metric's direction when the score is not accuracy."""
    from nas.outputs.report.text import score_metric

    metric = score_metric(ranked)
    if metric is None or metric[0] == "accuracy":
        return f"top {min(top, len(ranked))} by validation score (test accuracy is reported, never used to choose):"
    name, direction = metric
    if name == "fid":
        note = next((info["fid_note"] for info in (getattr(t, "info", None) or {} for t in ranked)
                     if info.get("fid_note")), None)
        return (f"top {min(top, len(ranked))} by FID against the validation images, lower is better (the score is "
                f"-fid)" + (f"; {note}:" if note else ":"))
    how = (f"validation {name}, higher is better" if direction == "max"
           else f"validation {name}, lower is better: the score is -{name}")
    if not any(k.startswith("test_") for t in ranked for k in getattr(t, "metrics", None) or {}):
        return f"top {min(top, len(ranked))} by {how}:"  # e.g. a self-supervised score: no test split is scored
    return f"top {min(top, len(ranked))} by {how} (the test split is reported, never used to choose):"


def _progress(quiet: bool) -> Callable[[Event], None] | None:
    """Progress events, one line each: rewritten in place on a terminal (a finished trial's line stays on screen
    every 10 trials and at the end, every other event's line stays), printed otherwise (logs, pipes, CI). With
    ``quiet`` only the warnings are shown (on stderr): workers limited to what fits, a placement wait, a lost node."""
    if quiet:
        def warn(event: Event) -> None:
            if isinstance(event, (WorkersLimited, WaitingForWorkers, NodeLost)):
                print(event, file=sys.stderr, flush=True)

        return warn
    if not sys.stdout.isatty():
        return print

    def show(event: Event) -> None:
        keep = not isinstance(event, TrialFinished) or event.n % 10 == 0 or event.last
        sys.stdout.write(f"\r\x1b[2K{event}" + ("\n" if keep else ""))
        sys.stdout.flush()

    return show


def _run(exp: Experiment, quiet: bool) -> int:
    """Run ``exp`` to the end of its budget, print the best trials, then close it (store and writer lock)."""
    try:
        try:
            exp.run(progress=_progress(quiet))
        except KeyboardInterrupt:
            print(f"interrupted; continue with: nas resume {exp.directory}")
            return 1
        if exp.cfg.budget.max_trials:
            _print_ranked(exp)
        _print_baselines(exp.summary()["baselines"], len(exp.ranked()))
        best = exp.directory / exp.BEST
        if best.exists():
            print(f"best architecture: {best}")
        if exp.cfg.budget.max_trials == 0:  # a run of the baselines alone: it succeeded if they all completed
            return 0 if all(b.status == "COMPLETE" for b in exp.baselines()) else 1
        return 0 if exp.ranked() else _all_failed(exp)
    finally:
        exp.close()


def _all_failed(exp: Experiment) -> int:
    """A search without a ranked trial: say so (every trial failed, with the most common reason, or none is
    feasible); exit code 1."""
    ranking = exp.ranking()
    if ranking.infeasible:  # completed, but every one violates a constraint
        print(f"error: {ranking.reason()}; loosen the constraints or extend the search (`nas resume "
              f"{exp.directory} --max-trials N`)", file=sys.stderr)
        return 1
    reasons = Counter(t.error or "no reason recorded" for t in exp.store.trials("FAILED"))
    done = exp.done()
    if reasons:
        (reason, n), = reasons.most_common(1)
        print(f"error: every trial failed ({done} of {done}, none completed); most common reason ({n} of "
              f"{sum(reasons.values())}): {reason}\n  see `nas status {exp.directory}` for every reason",
              file=sys.stderr)
    else:
        print(f"error: no trial completed ({done} done, none with a score); see `nas status {exp.directory}`",
              file=sys.stderr)
    return 1


def _cmd_search(args: argparse.Namespace) -> int:
    from nas.runtime.config import load_config
    from nas.runtime.experiment import Experiment

    overrides = {"seed": args.seed, "execution.workers": args.workers, "budget.max_trials": args.max_trials}
    cfg = load_config(args.config, **overrides)
    exp = Experiment.create(cfg, args.out, overwrite=args.overwrite)
    print(f"experiment directory: {exp.directory}")
    return _run(exp, args.quiet)


def _cmd_resume(args: argparse.Namespace) -> int:
    from nas.runtime.experiment import Experiment

    exp = Experiment.open(args.directory, max_trials=args.max_trials)
    return _run(exp, args.quiet)


def _cmd_status(args: argparse.Namespace) -> int:
    from nas.outputs.view import ExperimentView

    view = ExperimentView.open(args.directory)
    summary = view.summary(top=args.top)
    if args.json:
        from nas.outputs.report.text import cell_summary

        for entry, trial in zip(summary["best"], view.ranked()):
            entry["cell"] = cell_summary(trial.arch)
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['name']}: {summary['done']}/{summary['max_trials']} trials, {summary['counts']}, "
          f"{summary['elapsed_seconds']} s")
    if summary["waiting"]:
        print(f"as of {summary['waiting']}")
    sn = summary["supernet"]
    if sn is not None and sn["state"] == "searching":
        print(f"supernet search: {sn['epochs_run']}/{sn['epochs']} epochs done (`nas resume` continues it)")
    elif sn is not None:
        print(f"supernet search ({sn['algorithm']}): {sn['epochs_run']} epochs, {sn['cpu_minutes']} CPU-min, "
              f"derived {sn['derived']}, parameter-free share {sn['param_free_share']:.0%}, "
              f"{sn['warnings']} collapse warnings" + (f"; stopped: {sn['stopped']}" if sn["stopped"] else ""))
        if sn.get("uniform"):
            print(f"WARNING supernet search: {sn['uniform']}")
    _print_evaluator_job(summary["evaluator_job"])
    if summary["constraints"]:
        print(f"constraints {', '.join(summary['constraints'])}: {summary['feasible']} feasible, "
              f"{summary['infeasible']} infeasible (not ranked) of the completed trials")
    _print_top(view, args.top)
    _print_baselines(summary["baselines"], len(view.ranked()))
    for entry in summary["infeasible_best"][:3]:
        print(f"  infeasible, not ranked: trial {entry['id']} (score {entry['score']:.2f}) violates "
              f"{entry['violates']}")
    for reason, n in summary["failures"].items():
        print(f"  failed x{n}: {reason}")
    return 0


def _print_evaluator_job(job: dict[str, Any] | None) -> None:
    """The line of ``nas status`` on the weight-sharing evaluator's supernet training (nothing without one)."""
    if job is None:
        return
    if job["state"] == "training":
        print(f"weight-sharing supernet: {job['epochs_run']}/{job['epochs']} epochs done (`nas resume` continues it)")
        return
    acc = "" if job["train_acc"] is None else f", sampled-path train acc {job['train_acc']:.1f}"
    print(f"weight-sharing supernet: {job['epochs_run']} epochs, {job['cpu_minutes']} CPU-min{acc}")


def _print_top(view: ExperimentView, top: int) -> None:
    """The top-K table of ``nas status``: metrics and a one-line cell summary per trial (cut to the terminal's
    width on a terminal, whole elsewhere)."""
    import shutil

    from nas.outputs.report.text import format_top_table, score_header

    ranking = view.ranking()
    ranked = ranking.ranked
    if not ranked:
        print(ranking.reason())
        return
    evaluator = view.config.evaluator.name
    header = (score_header(ranked, default="val" if evaluator != "ssl" else "score")
              if evaluator in ("train", "gan", "ssl") else "score")
    width = shutil.get_terminal_size().columns - 2 if sys.stdout.isatty() else None
    print(_top_heading(ranked, top))
    for line in format_top_table(ranked, top, width, header).splitlines():
        print("  " + line)


def _cmd_report(args: argparse.Namespace) -> int:
    from nas.outputs.report.build import ReportOptions, build_report

    options = ReportOptions(top=args.top, draw=args.draw, gradcam=not args.no_gradcam, images=args.images,
                            retrain_epochs=args.retrain_epochs)
    result = build_report(args.directory, args.out, options)
    print(f"report: {result.path} ({result.seconds:.1f} s)")
    _track_report(args.directory, result.path)
    for section, reason in result.skipped.items():
        print(f"  {section}: {reason}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    """``nas explain SOURCE``: attribute the best exported model's predictions, write PNGs and index.json."""
    from nas.outputs.explain.run import explain

    torch_threads()
    methods = [m.strip() for item in args.method or [] for m in item.split(",") if m.strip()]
    result = explain(args.source, methods=methods, samples=args.samples, out=args.out, seed=args.seed,
                     check=not args.no_check, perturbations=args.perturbations,
                     progress=None if args.quiet else print)
    index = result.index
    print(f"explained {len(index['inputs'])} validation input(s) of {index['model']['task']} with "
          f"{index['model']['folder']}:")
    for m in index["methods"]:
        r, f = m.get("randomisation"), m.get("faithfulness")
        check = (f"randomisation {'passed' if r['passed'] else 'FAILED'} (rho {r['correlation']:.2f})" if r
                 else "checks skipped")
        faith = (f", deletion AUC {f['deletion_auc']:.3f} (random {f['random_deletion_auc']:.3f}), insertion AUC "
                 f"{f['insertion_auc']:.3f} (random {f['random_insertion_auc']:.3f})" if f else "")
        print(f"  {m['method']:<21} {m['file']:<26} {check}{faith}")
    print(f"index: {result.out / 'index.json'} ({result.seconds:.1f} s)")
    return 0


def _cmd_list(kind: str) -> int:
    if kind == "tasks":
        from nas.evaluation.tasks import TASKS

        entries = TASKS.entries()
    elif kind == "strategies":
        from strategies import STRATEGIES

        entries = STRATEGIES.entries()
    else:
        from nas.evaluation.evaluators import EVALUATORS
        from nas.evaluation.gan import GanEvaluator  # noqa: F401  (registers gan)
        from nas.evaluation.ssl import SslEvaluator  # noqa: F401  (registers ssl)
        from nas.weightsharing.evaluator import WeightSharingEvaluator  # noqa: F401  (registers weight_sharing)

        entries = EVALUATORS.entries()
    for entry in entries:
        if entry.plugin is None:
            print(entry.name)
        elif entry.error is None:
            print(f"{entry.name}  (plugin from {entry.plugin})")
        else:
            print(f"{entry.name}  (plugin from {entry.plugin}; not usable: {entry.error})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from nas.runtime.api import load_quickstart, quickstart_yaml

    if args.print_config:
        print(quickstart_yaml(), end="")
        return 0
    from nas.runtime.config import load_config
    from nas.runtime.experiment import Experiment

    cfg = load_config(args.config) if args.config else load_quickstart()
    exp = Experiment.create(cfg, args.out, overwrite=True)
    print(f"quickstart: {cfg.strategy.name} on space {cfg.space.name}, task {cfg.evaluator.task}, "
          f"{cfg.budget.max_trials} trials on {cfg.execution.workers} {cfg.execution.executor} workers "
          f"-> {exp.directory}")
    code = _run(exp, args.quiet)
    if code or args.no_export:
        return code
    from nas.outputs.export import export_experiment
    from nas.outputs.report.build import build_report

    torch_threads()
    print("exporting the best model (JSON, weights, TorchScript, ONNX, model.py), each verified in a fresh process")
    result = export_experiment(exp.directory, top=1)
    _print_export(result)
    report = build_report(exp.directory)
    print(f"report: {report.path} ({report.seconds:.1f} s)")
    _track_report(exp.directory, report.path)
    return 0 if result.ok else 1


def _track_report(directory: str | Path, path: Path) -> None:
    """Log the report into the experiment's trackers (config ``tracking``), if it has any."""
    from nas.outputs.tracking import log_artifacts

    names = log_artifacts(directory, {"report.html": Path(path)})
    if names:
        print(f"report logged to {', '.join(names)}")


def _cmd_export_optuna(args: argparse.Namespace) -> int:
    """``nas export-optuna DIR``: mirror the experiment's trials into an Optuna study (for optuna-dashboard)."""
    from nas.outputs.tracking import export_optuna

    result = export_optuna(args.directory, args.storage, args.study_name)
    print(f"optuna study {result.study_name!r} at {result.storage}: {result.trials} trials ({result.added} added)")
    print(f"view it with: optuna-dashboard {result.storage}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """``nas export DIR``: export (or with --check, re-check) the best models; exit 1 if verification fails."""
    from pathlib import Path

    from nas.outputs.export import check_export, export_experiment

    torch_threads()
    if args.check:
        report = check_export(args.out or Path(args.directory) / "export")
        for m in report["models"]:
            diffs = ", ".join(f"{k} {v:.1e}" for k, v in m["max_abs_diff"].items())
            print(f"rank {m['rank']} trial {m['trial_id']}: {m['files_checked']} checksums ok; max abs diff {diffs}")
        print("export ok" if report["ok"] else "export outputs differ")
        return 0 if report["ok"] else 1
    if _evaluator_name(Path(args.directory)) == "ssl":  # self-supervised: the pretrained backbones
        from nas.outputs.pretrain import export_pretrained

        result = export_pretrained(args.directory, top=args.top, out=args.out,
                                   progress=None if args.quiet else print)
        for m in result.manifest["models"]:
            print(f"rank {m['rank']}: trial {m['trial_id']} pretrained again "
                  f"({'reproduced' if m['metrics']['reproduced'] else 'score differs'}): {result.out}")
        return 0 if result.ok else 1
    result = export_experiment(args.directory, top=args.top, formats=args.format, retrain_epochs=args.retrain_epochs,
                               out=args.out, progress=None if args.quiet else print, baselines=args.baselines)
    return _print_export(result)


def _evaluator_name(directory: Path) -> str | None:
    """The evaluator named by an experiment's ``config.yaml`` (None when it cannot be read: the export says why)."""
    import yaml

    try:
        data = yaml.safe_load((directory / "config.yaml").read_text(encoding="utf-8"))
        return str(data["evaluator"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _cmd_pretrain(args: argparse.Namespace) -> int:
    """``nas pretrain SOURCE --task T --pretext P --out DIR``: self-supervised pretraining; exit 1 if the written
    weights do not reload to the trained network."""
    from nas.outputs.pretrain import PRETRAIN_FILE, pretrain

    torch_threads()
    report = pretrain(args.source, task=args.task, pretext=args.pretext, out=args.out, epochs=args.epochs,
                      trial=args.trial, task_options=_key_values(args.task_option, "--task-option"),
                      train_settings=_key_values(args.train, "--train"),
                      pretext_options=_key_values(args.option, "--option"), seed=args.seed,
                      overwrite=args.overwrite, progress=None if args.quiet else print)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in report.run.metrics.items())
    manifest = json.loads((report.out / "manifest.json").read_text(encoding="utf-8"))
    ok = bool(manifest["models"][0]["verification"]["ok"])
    print(f"pretrained ({args.pretext}, {report.run.epochs_run} epochs, {report.run.seconds:.1f} s): {metrics}")
    print(f"written: {report.out} ({'weights reload' if ok else 'RELOAD MISMATCH'}); record: "
          f"{report.out / PRETRAIN_FILE}; next: nas finetune {report.out} --task TASK --mode features")
    return 0 if ok else 1


def _cmd_finetune(args: argparse.Namespace) -> int:
    """``nas finetune SOURCE --task T --mode M``: transfer a trained model; exit 1 if its export fails verification
    or a frozen tensor changed."""
    from nas.outputs.finetune import PROVENANCE, finetune

    torch_threads()
    report = finetune(args.source, task=args.task, mode=args.mode, trial=args.trial, epochs=args.epochs,
                      freeze=args.freeze, body_lr_scale=args.body_lr_scale, out=args.out,
                      task_options=_key_values(args.task_option, "--task-option"),
                      train_settings=_key_values(args.train, "--train"), seed=args.seed, formats=args.format,
                      overwrite=args.overwrite, progress=None if args.quiet else print)
    p = report.provenance
    scores = p["scores"]
    print(f"fine-tuned ({p['described']}) on {p['task']}: validation {scores['val_acc']:.2f}, test "
          f"{scores['test_acc']:.2f}, {scores['epochs']} epochs, {scores['train_seconds']:.1f} s; "
          f"{len(p['copied'])} tensors copied, {len(p['adapted'])} adapted, {len(p['reinit'])} re-initialised, "
          f"{len(p['frozen_parameters'])} frozen")
    print(f"export: {report.out / 'export'} ({'verified' if p['export']['ok'] else 'VERIFICATION FAILED'}); "
          f"provenance: {report.out / PROVENANCE}")
    if not p["frozen_unchanged"]:
        print(f"frozen tensors changed in training: {', '.join(p['frozen_changed'][:5])}", file=sys.stderr)
    return 0 if report.ok else 1


def _print_export(result: ExportReport) -> int:
    """The export table; 1 when a file failed its verification, else 0."""
    models = result.manifest["models"]
    metric = models[0]["metrics"].get("metric", "accuracy") if models else "accuracy"
    val_key, test_key = ("val_acc", "test_acc") if metric == "accuracy" else (f"val_{metric}", f"test_{metric}")
    if models and models[0].get("model_kind") == "generator":  # the search's FID and coverage; no test split
        val_key, test_key = "fid", "coverage"
        note = models[0]["metrics"]["fid_note"]
        print(f"exported generators (fid, coverage: the search's, lower FID is better; {note}; verified: the same "
              "images from the same fixed latent vectors):")
        print(f"  {'rank':>4} {'trial':>5} {'fid':>9} {'coverage':>9}  {'max abs diff':>12}  verified formats")
    else:
        print(f"exported (val: the search's validation {metric}; test: the exported model's test {metric}):")
        print(f"  {'rank':>4} {'trial':>5} {'val':>9} {'test':>9}  {'max abs diff':>12}  verified formats")
    for m in models:
        v = m["verification"]
        diff = "-" if v.get("max_abs_diff") is None else f"{v['max_abs_diff']:.1e}"
        formats = " ".join(f"{k}{'' if e['ok'] else '(FAILED)'}" for k, e in v.get("formats", {}).items())
        metrics = m["metrics"]
        who = m.get("baseline") or m["trial_id"]
        val = metrics[val_key] if m.get("model_kind") == "generator" else metrics[f"search_{val_key}"]
        print(f"  {m['rank']:>4} {who:>5} {val:>9.4g} {metrics[test_key]:>9.4g}"
              f"  {diff:>12}  {formats}")
    from pathlib import Path

    manifest = result.out / "manifest.json"
    shown = manifest.relative_to(Path.cwd()) if manifest.is_relative_to(Path.cwd()) else manifest
    print(f"manifest: {shown} ({result.seconds:.1f} s)")
    if not result.ok:
        print("verification failed: see 'verification' in the manifest", file=sys.stderr)
        return 1
    return 0


def _parse_options(items: list[str]) -> dict[str, object]:
    import yaml

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r}: write key=value, e.g. --option population=50")
        options[key] = yaml.safe_load(value)
    return options


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from nas.runtime.benchmark import plot_curves, run_benchmark

    if args.objectives is not None or args.constraint:
        return _benchmark_objectives(args)
    torch_threads()
    report = run_benchmark(args.strategy, queries=args.queries, seeds=args.seeds, dataset=args.dataset,
                           dedup=not args.no_dedup, options=_parse_options(args.option),
                           zero_cost=not args.no_zero_cost)
    from pathlib import Path

    plot = Path(args.plot or Path("runs") / "benchmarks" / f"nb201_{args.strategy}_{args.dataset}.png")
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_curves([report], str(plot))
    summary = report.summary()
    cells, seconds = report.zero_cost_per_run()
    if report.zero_cost_calls:
        summary["zero_cost_per_search"] = {"cells": cells, "seconds": seconds}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"NAS-Bench-201 {args.dataset}: {args.strategy}, {args.seeds} seeds, {args.queries} queries "
          f"({report.seconds:.1f} s, strategy overhead {report.overhead_ms():.2f} ms per query)")
    for q, stats in summary["queries"].items():
        print(f"  {q:>4} queries: {stats['mean']:.2f} +- {stats['std']:.2f}")
    if report.zero_cost_calls:
        print(f"zero-cost screening (not queries): {cells:.0f} cells scored, {seconds:.2f} s per search")
    print(f"best-so-far curves: {plot}")
    return 0


def _benchmark_objectives(args: argparse.Namespace) -> int:
    """``nas benchmark nb201 --objectives ... --constraint ...``: hypervolume ratio to the table's true front
    (two objectives), best feasible test accuracy and the share of feasible queries."""
    from nas.runtime.benchmark import parse_benchmark_objectives, run_objectives_benchmark

    objectives, constraints = parse_benchmark_objectives(args.objectives, args.constraint, args.dataset)
    torch_threads()
    report = run_objectives_benchmark(args.strategy, objectives=objectives, constraints=constraints,
                                      queries=args.queries, seeds=args.seeds, dataset=args.dataset,
                                      dedup=not args.no_dedup, options=_parse_options(args.option))
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    true = summary["true"]
    what = ", ".join(summary["objectives"]) + (f" subject to {', '.join(summary['constraints'])}"
                                                if constraints else "")
    print(f"NAS-Bench-201 {args.dataset}: {args.strategy}, {args.seeds} seeds, {args.queries} queries, {what} "
          f"({report.seconds:.1f} s)")
    print(f"  the table: {100 * true['feasible_share']:.1f} % of cells feasible; best feasible by validation has "
          f"test {true['best_test']:.2f}" + (f"; true front {true['front']} cells, hypervolume {true['hv']:.4g} at "
                                            f"reference {tuple(round(x, 4) for x in true['reference'])}"
                                            if len(objectives) == 2 else ""))
    for q, stats in summary["queries"].items():
        line = (f"  {q:>4} queries: best feasible test {stats['mean']:.2f} +- {stats['std']:.2f} "
                f"(found by {stats['found']}/{args.seeds} seeds), feasible queries "
                f"{100 * stats['feasible_rate']:.0f} %")
        if "hv_ratio" in stats:
            line += f", hypervolume / true {stats['hv_ratio']['mean']:.4f} +- {stats['hv_ratio']['std']:.4f}"
        print(line)
    return 0


def torch_threads() -> None:
    """One intra-op thread: the benchmark's torch work (RL controller) is tiny and threads only add cost."""
    import torch

    torch.set_num_threads(1)


def _top(text: str) -> int:
    """``--top``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give how many of the best trials, "
                                         "at least 1, e.g. --top 5") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; give how many of the best trials, at least 1, "
                                         "e.g. --top 5")
    return value


_TRAIN_HELP = "a training setting (lr, batch_size, optimizer, ...), as in a config's evaluator.train"


def _add_training_options(p: argparse.ArgumentParser, train_help: str = _TRAIN_HELP) -> None:
    """``--train KEY=VALUE`` and ``--task-option KEY=VALUE`` (each repeatable), as ``nas train``, ``nas finetune``
    and ``nas pretrain`` take them (read with :func:`_key_values`)."""
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help=train_help)
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a task option, as in a config's evaluator.task_options")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Neural architecture search on graph-encoded cells.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("spaces", help="list the search spaces")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_spaces)
    p = sub.add_parser("references", help="list the reference architectures")
    p.set_defaults(func=_cmd_references)
    p = sub.add_parser("train", help="train one reference model (`nas references`) on a task with the search's "
                                     "trainer; prints validation and test accuracy and parameters")
    p.add_argument("reference")
    p.add_argument("--task", required=True, help="a task name (`nas tasks`), a .npz file or module:function")
    p.add_argument("--epochs", type=int, help="training epochs (default: the trainer's)")
    _add_training_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="experiment directory (default runs/train-REFERENCE-TASK)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="print a random architecture of a space as JSON")
    p.add_argument("space")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_sample)
    p = sub.add_parser("benchmark", help="benchmark a strategy on a tabular benchmark")
    p.add_argument("benchmark", choices=["nb201"])
    p.add_argument("--strategy", required=True)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet16-120"])
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option")
    p.add_argument("--no-dedup", action="store_true", help="query isomorphic cells again")
    p.add_argument("--no-zero-cost", action="store_true",
                   help="withhold the table's zero-cost score from the strategy (gp_bo screens with it), as a search "
                        "on an evaluator without one, e.g. real training, runs")
    p.add_argument("--objectives", metavar="LIST",
                   help="comma-separated DIRECTION:METRIC, the first max:score, e.g. max:score,min:pixel3_latency "
                        "(device costs: pixel3_latency, jetson_tx2_energy, raspi4_latency, edgetpu_latency, ...); "
                        "two objectives report the hypervolume ratio to the table's true front")
    p.add_argument("--constraint", action="append", default=[], metavar="BOUND",
                   help="a bound on a metric, e.g. 'pixel3_latency <= 5' (repeatable); reports the best feasible "
                        "test accuracy and the share of feasible queries")
    p.add_argument("--plot", help="where to write the best-so-far plot (PNG; default "
                                  "runs/benchmarks/nb201_<strategy>_<dataset>.png)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.set_defaults(func=_cmd_benchmark)
    p = sub.add_parser("search", help="run a search from a YAML config")
    p.add_argument("config")
    p.add_argument("--out", help="experiment directory (default: the config's output, else runs/<name>)")
    p.add_argument("--workers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-trials", type=int)
    p.add_argument("--overwrite", action="store_true", help="replace an existing experiment directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_search)
    p = sub.add_parser("resume", help="continue a stopped (or extend a finished) experiment")
    p.add_argument("directory")
    p.add_argument("--max-trials", type=int, help="new trial budget")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_resume)
    p = sub.add_parser("status", help="progress, best trials and failures of an experiment")
    p.add_argument("directory")
    p.add_argument("--top", type=_top, default=5, help="best trials to show (at least 1)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_status)
    p = sub.add_parser("report", help="write a self-contained HTML report of an experiment")
    p.add_argument("directory")
    p.add_argument("--out", help="where to write it (default DIRECTORY/report.html)")
    p.add_argument("--top", type=_top, default=5, help="rows of the top-trials table (at least 1)")
    p.add_argument("--draw", type=int, default=3, help="best architectures to draw")
    p.add_argument("--images", type=int, default=6, help="validation images for Grad-CAM")
    p.add_argument("--retrain-epochs", type=int, help="cap the epochs when the best model must be trained again")
    p.add_argument("--no-gradcam", action="store_true", help="leave out Grad-CAM (no model is loaded or trained)")
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("explain", help="explain the best exported model's predictions (Grad-CAM, saliency, "
                                       "Integrated Gradients, LIME, KernelSHAP through Captum) with sanity checks")
    p.add_argument("source", help="experiment directory (exported with `nas export`), export folder or model folder")
    p.add_argument("--method", action="append", metavar="NAME",
                   help="gradcam, saliency, integrated_gradients, lime or kernel_shap; repeat or comma-separate "
                        "(default: all)")
    p.add_argument("--samples", type=int, default=6, help="validation inputs to explain (default 6)")
    p.add_argument("--out", help="output folder (default DIR/explain, where `nas report` embeds them)")
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations and the randomised weights")
    p.add_argument("--perturbations", type=int, default=200, help="perturbed samples per input for LIME and "
                                                                  "KernelSHAP (default 200)")
    p.add_argument("--no-check", action="store_true", help="skip the randomisation and deletion/insertion checks")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_explain)
    for kind in ("tasks", "strategies", "evaluators"):
        p = sub.add_parser(kind, help=f"list the {kind}")
        p.set_defaults(func=lambda args, k=kind: _cmd_list(k))
    p = sub.add_parser("demo", help="the quickstart search (its config ships with the package: --print-config)")
    p.add_argument("--config", help="run this config file instead of the packaged quickstart")
    p.add_argument("--print-config", action="store_true",
                   help="print the quickstart config and exit (save it, edit it, run it with `nas search`)")
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-export", action="store_true", help="skip exporting the best model and the report")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("finetune", help="transfer a trained model to another task (features, partial or full "
                                        "fine-tuning), with its own verified export and provenance")
    p.add_argument("source", help="an export folder, an experiment directory (with --trial N) or the folder "
                                  "`nas train` wrote")
    p.add_argument("--task", required=True, help="the new task: a name (`nas tasks`), a .npz file or module:function")
    p.add_argument("--mode", required=True, help="features (frozen body, new head), partial (the stem and the "
                                                 "first --freeze K cells frozen) or full (everything learns)")
    p.add_argument("--trial", type=int, help="the trial of an experiment SOURCE (trained again first: trials keep "
                                             "no weights), or of an export holding several")
    p.add_argument("--epochs", type=int, help="training epochs (default: the source's training config)")
    p.add_argument("--freeze", type=int, metavar="K", help="partial: cells frozen after the stem")
    p.add_argument("--body-lr-scale", type=float, default=1.0, metavar="F",
                   help="full: the body's learning rate as a fraction of the head's, in (0, 1] (default 1)")
    _add_training_options(p, "a training setting (lr, batch_size, optimizer, ...) over the source's")
    p.add_argument("--seed", type=int, default=0, help="seed of the new task's splits and of the training")
    p.add_argument("--format", default=None, metavar="LIST", help="export formats (default: all, as nas export)")
    p.add_argument("--out", help="output folder (default runs/finetune-SOURCE-TASK-MODE)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier fine-tuning's folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_finetune)
    p = sub.add_parser("pretrain", help="train an architecture self-supervised (rotation, contrastive, masked) on "
                                        "data that may lack labels; `nas finetune OUT --mode features` probes it")
    p.add_argument("source", help="a reference name (`nas references`), an export folder or an experiment "
                                  "directory (its rank-1 trial, or --trial N); only the architecture is taken")
    p.add_argument("--task", required=True, help="a task name (`nas tasks`), a .npz file (y optional) or "
                                                 "module:function")
    p.add_argument("--pretext", required=True, help="rotation (images), contrastive or masked")
    p.add_argument("--out", required=True, help="output folder (an export of one model)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the trainer's)")
    p.add_argument("--trial", type=int, help="the trial of an experiment or export SOURCE")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a pretext option (temperature, momentum, queue, mask_ratio, ...), as in evaluator.options")
    _add_training_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, the initialisation and the training")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier pretraining's folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_pretrain)
    p = sub.add_parser("export-optuna", help="mirror an experiment's trials into an Optuna study (optuna-dashboard, "
                                             "optuna.load_study)")
    p.add_argument("directory")
    p.add_argument("--storage", help="an Optuna storage URL (default sqlite:///DIRECTORY/optuna.db)")
    p.add_argument("--study-name", help="the study's name (default: the experiment's name)")
    p.set_defaults(func=_cmd_export_optuna)
    p = sub.add_parser("export", help="export the best models (JSON, weights, TorchScript, ONNX, plain PyTorch), "
                                      "each verified by reloading it in a fresh process")
    p.add_argument("directory", help="experiment directory")
    p.add_argument("--top", type=_top, default=1, help="how many of the best trials to export (default 1)")
    p.add_argument("--format", default=None, metavar="LIST",
                   help="comma-separated subset of json,weights,torchscript,onnx,python (default: all)")
    p.add_argument("--retrain-epochs", type=int, help="train E epochs on train+validation instead of repeating "
                                                      "the search's training")
    p.add_argument("--out", help="output folder (default DIR/export)")
    p.add_argument("--check", action="store_true", help="check an existing export (checksums, reloading) instead")
    p.add_argument("--baselines", action="store_true",
                   help="export the completed baselines (reference models trained beside the search) instead, "
                        "to DIR/export_baselines")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NASError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
