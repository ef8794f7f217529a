"""The HTML report and the status table, on small real experiments: a trained NAS-Bench-201 search on digits
with a learning rate that diverges (a natural failure), and zero-cost searches over the darts, rnn and
transformer spaces. ``experiment_dir`` / ``report_file`` build each once per test session (the browser test
reuses them)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nas.cli import main
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.outputs.report.analysis import best_fraction_count, decision_importance, op_frequency
from nas.outputs.report.build import SECTIONS, ReportOptions, build_report
from nas.outputs.report.plots import best_so_far, pareto_front
from nas.outputs.report.text import abbreviate_op, cell_summary, format_top_table
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from search_spaces import get_space

# -- experiments, built once per session ------------------------------------------------------------------------
TRAINED = {"name": "report-nb201", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
           "strategy": {"name": "random"},
           "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 900},
                         "train": {"epochs": 2, "batch_size": 32}},
           # a learning rate of 1e38 overflows the weights: trials that draw it diverge and are recorded FAILED
           "searchable": {"lr": [0.05, 0.1, 1.0e38]},
           "budget": {"max_trials": 8}, "execution": {"executor": "local", "workers": 1}}
PROXY_SPACES = {"darts": ({"C": 4, "layers": 3}, "digits"), "rnn": ({"steps": 4, "d_model": 16}, "italy_power"),
                "transformer": ({"d_model": 16, "num_cells": 1}, "italy_power")}
_BUILT: dict[str, Path] = {}


def _config(kind: str) -> dict[str, Any]:
    if kind == "nb201":
        return TRAINED
    options, task = PROXY_SPACES[kind]
    return {"name": f"report-{kind}", "seed": 0, "space": {"name": kind, "options": options},
            "strategy": {"name": "random"},
            "evaluator": {"name": "proxy", "task": task, "options": {"proxy": "synflow"}},
            "budget": {"max_trials": 5}, "execution": {"executor": "local", "workers": 1}}


def experiment_dir(kind: str, factory: pytest.TempPathFactory) -> Path:
    """The finished experiment of ``kind`` (``nb201`` trained, or a proxy search of another space)."""
    if kind not in _BUILT:
        directory = factory.mktemp(f"report-{kind}") / "exp"
        exp = Experiment.create(parse_config(_config(kind)), directory)
        exp.run()
        exp.close()
        _BUILT[kind] = directory
    return _BUILT[kind]


def report_file(kind: str, factory: pytest.TempPathFactory) -> Path:
    """``DIR/report.html`` of that experiment, written by ``nas report``."""
    directory = experiment_dir(kind, factory)
    path = directory / "report.html"
    if not path.exists():
        assert main(["report", str(directory), "--images", "4"]) == 0
    return path


class _Page(HTMLParser):
    """Sections (id -> text), images (section id, src) and every URL-bearing attribute of a report page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._section: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self._section = a["id"]
            self.sections[self._section or ""] = ""
        if tag == "img":
            self.images.append((self._section or "", a.get("src") or ""))
        for key in ("src", "href"):
            if a.get(key) is not None:
                self.urls.append(a[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.sections[self._section] += data


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Page]:
    path = report_file("nb201", tmp_path_factory)
    return path.parent, _Page(path.read_text())


# -- the trained report ------------------------------------------------------------------------------------------
def test_every_section_is_there_in_order(trained: tuple[Path, _Page]) -> None:
    _, page = trained
    assert list(page.sections) == [sid for sid, _ in SECTIONS]
    for sid, title in SECTIONS:
        assert page.sections[sid].startswith(title)
        if sid == "supernet":  # a random search trains no supernet: the section says so
            assert "Nothing to show: strategy 'random' trains no supernet" in page.sections[sid]
            continue
        if sid == "samples":  # a classifier search generates no images (test_report_gan fills it)
            assert "Nothing to show: the train evaluator does not generate images" in page.sections[sid]
            continue
        if sid == "explain":  # `nas explain` was not run: the section says how (test_explain fills it)
            assert "Nothing to show: no explanations yet: run `nas explain DIR`" in page.sections[sid]
            continue
        assert "Nothing to show" not in page.sections[sid], (sid, page.sections[sid][:200])


def test_the_page_is_self_contained(trained: tuple[Path, _Page]) -> None:
    directory, page = trained
    text = (directory / "report.html").read_text()
    assert "link" not in page.tags and "iframe" not in page.tags
    assert all(u.startswith("#") or u.startswith("data:image/png;base64,") for u in page.urls), page.urls
    assert not re.search(r"https?://", text.replace("http://www.w3.org/2000/svg", ""))
    for _, src in page.images:
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    per_section = {sid: sum(s == sid for s, _ in page.images) for sid, _ in SECTIONS}
    # 3 trade-off panels in one image; 3 architectures drawn; op frequency + importance; one Grad-CAM figure
    assert per_section == {"summary": 0, "progress": 1, "tradeoffs": 1, "top": 0, "samples": 0, "cells": 3, "ops": 2,
                           "failures": 0, "supernet": 0, "gradcam": 1, "explain": 0}


def test_the_report_states_what_the_store_holds(trained: tuple[Path, _Page]) -> None:
    directory, page = trained
    exp = Experiment.open(directory)
    ranked, trials = exp.ranked(), exp.store.trials()
    exp.close()
    failed = [t for t in trials if t.status == "FAILED"]
    assert failed and all(t.arch.macro["hparams"]["lr"] == 1e38 for t in failed)
    assert all("diverged" in (t.error or "") for t in failed)
    assert f"{len(failed)} of {len(trials)} trials failed, in 1 group(s)" in page.sections["failures"]
    assert failed[0].error in page.sections["failures"]
    top = page.sections["top"]
    for t in ranked[:5]:
        assert cell_summary(t.arch) in top
    assert f"trial {ranked[0].id}, validation accuracy (%) {ranked[0].score:.2f}" in page.sections["summary"]
    assert "fANOVA" in page.sections["ops"]
    # the best trial is retrained with its own config and seed: the same validation accuracy as in the search
    gradcam = page.sections["gradcam"]
    assert f"Model: trial {ranked[0].id}, retrained for this report" in gradcam
    assert f"validation accuracy {ranked[0].score:.2f} (the search measured {ranked[0].score:.2f})" in gradcam


def test_the_file_is_replaced_atomically_and_readable(trained: tuple[Path, _Page], tmp_path: Path) -> None:
    directory, _ = trained
    out = tmp_path / "again.html"
    out.write_text("old")
    result = build_report(directory, out, ReportOptions(gradcam=False, top=2))
    assert result.path == out and result.skipped["gradcam"] == "turned off (--no-gradcam)"
    assert set(result.skipped) == {"gradcam", "samples", "supernet", "explain"}  # no generator; no `nas explain`
    assert "nas explain DIR" in result.skipped["explain"]
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["again.html"]  # no temporary file left behind
    assert os.stat(out).st_mode & 0o044 == 0o044 & ~_umask()
    rows = re.findall(r"<tr><td data-value=\"(\d)\">", out.read_text())
    assert rows == ["1", "2"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_exported_model_is_preferred_to_retraining(trained: tuple[Path, _Page], tmp_path: Path) -> None:
    """Grad-CAM reads DIR/export/manifest.json (the layout `nas export` writes) and uses the rank-1 weights."""
    import shutil

    from nas.outputs.report.gradcam import ExperimentModels, retrained_model

    directory = tmp_path / "exp"
    shutil.copytree(trained[0], directory)
    exp = Experiment.open(directory)
    best = exp.ranked()[0]
    model = retrained_model(ExperimentModels(directory=directory, config=exp.cfg), best).model
    folder = directory / "export" / f"rank1_trial{best.id}"
    folder.mkdir(parents=True)
    (folder / "architecture.json").write_text(best.arch.to_json())
    torch.save(model.state_dict(), folder / "weights.pt")
    manifest = {"models": [{"rank": 1, "trial_id": best.id,
                            "files": {"json": {"path": f"rank1_trial{best.id}/architecture.json"},
                                      "weights": {"path": f"rank1_trial{best.id}/weights.pt"}}}]}
    (directory / "export" / "manifest.json").write_text(json.dumps(manifest))
    exp.close()
    build_report(directory, options=ReportOptions(images=2))
    gradcam = _Page((directory / "report.html").read_text()).sections["gradcam"]
    assert f"the exported model of rank 1 (export/rank1_trial{best.id}/weights.pt)" in gradcam
    assert f"validation accuracy {best.score:.2f}" in gradcam

    (folder / "weights.pt").write_bytes(b"not a checkpoint")
    build_report(directory, options=ReportOptions(images=2))
    gradcam = _Page((directory / "report.html").read_text()).sections["gradcam"]
    assert "retrained for this report" in gradcam and "the export was not used" in gradcam


def test_a_one_shot_search_gets_its_supernet_section(tmp_path: Path) -> None:
    cfg = {"name": "report-darts", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "strategy": {"name": "darts", "options": {"epochs": 3, "batch_size": 32, "collapse_threshold": 0.0,
                                                     "collapse_warmup": 2}},
           "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 240}, "train": {"epochs": 1}},
           "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1}}
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    exp.run()
    derived = exp.store.meta("job")["arch"]
    exp.close()
    result = build_report(tmp_path / "exp", options=ReportOptions(gradcam=False))
    page = _Page(result.path.read_text())
    section = page.sections["supernet"]
    assert "supernet" not in result.skipped and "Nothing to show" not in section
    assert sum(s == "supernet" for s, _ in page.images) == 1
    assert "darts: 3 epochs" in section and cell_summary(Architecture.from_json(derived)) in section
    assert "Collapse guard warnings (1)" in section and "epoch 2: " in section


# -- every space --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(PROXY_SPACES))
def test_reports_of_the_other_spaces_draw_every_cell(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = report_file(kind, tmp_path_factory)
    page = _Page(path.read_text())
    assert list(page.sections) == [sid for sid, _ in SECTIONS]
    exp = Experiment.open(path.parent)
    ranked = exp.ranked()
    exp.close()
    for t in ranked[:3]:  # each drawn architecture is named and summarised under its drawing
        assert f"trial {t.id}, score {t.score:.2f}" in page.sections["cells"]
        assert cell_summary(t.arch) in page.sections["cells"]
    assert sum(s == "cells" for s, _ in page.images) == 3
    expected = ("Grad-CAM explains image models only" if kind != "darts"
                else "evaluator (proxy) trains no model")
    assert expected in page.sections["gradcam"] and "Nothing to show" in page.sections["gradcam"]
    assert "score (zero-cost proxy synflow" in page.sections["summary"]


def test_a_directory_that_is_no_experiment_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not an experiment directory" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="top = 0"):
        ReportOptions(top=0)


# -- nas status ---------------------------------------------------------------------------------------------------
def test_status_prints_the_top_k_with_a_cell_summary_each(trained: tuple[Path, _Page],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    directory, _ = trained
    assert main(["status", str(directory), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    exp = Experiment.open(directory)
    ranked = exp.ranked()
    exp.close()
    start = next(i for i, line in enumerate(out) if "never used to choose" in line)
    header, rows = out[start + 1].split(), out[start + 2:start + 5]
    assert header == ["rank", "trial", "val", "test", "params", "FLOPs", "lat", "ms", "epochs", "train", "s", "cell"]
    for rank, (line, t) in enumerate(zip(rows, ranked), start=1):
        fields = line.split()
        assert fields[:3] == [str(rank), str(t.id), f"{t.score:.2f}"]
        assert line.endswith(cell_summary(t.arch)) and "lr=" in line
    assert any("failed x" in line and "diverged" in line for line in out[start + 5:])


# -- the pieces -------------------------------------------------------------------------------------------------
def test_cell_summaries_of_every_space() -> None:
    nb201 = get_space("nb201")
    arch = nb201.from_string("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|")
    assert cell_summary(arch) == "1=c3(0) 2=avg3(1) 3=skip(0)"
    darts = cell_summary(get_space("darts").named("DARTS_V2"))
    assert darts.startswith("normal: 2=sep3(0)+sep3(1) 3=sep3(0)+sep3(1) 4=skip(0)+sep3(1) 5=skip(0)+dil3(2) | ")
    assert "reduce: 2=max3(0)+max3(1)" in darts
    rnn = cell_summary(get_space("rnn").named("DARTS_V2"))
    assert rnn.startswith("body: 1=cell:rnn(0) 2=cell:rnn(1) | rnn: 1=sig(0) 2=relu(1)")
    transformer = get_space("transformer")
    arch = transformer.decode([2, 1, 4, 0, 1, 1, 1])
    assert cell_summary(arch) == "1=att2(0) 2=skip(0)+ffn(1) 3=skip(1)+skip(2) | pe_sinusoidal"
    assert [abbreviate_op(o) for o in ("sep_conv_5x5", "dil_conv_3x3", "max_pool_3x3", "mhsa_4", "gru")] == \
        ["sep5", "dil3", "max3", "att4", "gru"]


def test_top_table_leaves_out_empty_columns_and_cuts_to_a_width() -> None:
    from nas.storage.store import StoredTrial

    arch = get_space("darts").named("DARTS_V1")
    rows = [StoredTrial(i, arch, "h", 0, "COMPLETE", s, {"params": 1e6 + i}, {}, [], None, None, None, 0.0, 1.0, 1)
            for i, s in enumerate([3.5, 2.25])]
    table = format_top_table(rows, top=5).splitlines()
    assert table[0].split() == ["rank", "trial", "score", "params", "cell"]
    assert table[1].split()[:4] == ["1", "0", "3.50", "1,000,000"] and table[1].endswith(cell_summary(arch))
    assert all(len(line) <= 60 and line.endswith("...") for line in format_top_table(rows, 5, 60).splitlines()[1:])
    assert format_top_table([], 5) == "no completed trial"


def test_pareto_front_and_best_so_far() -> None:
    costs = [5.0, 1.0, 3.0, 3.0, 4.0, 2.0]
    scores = [90.0, 50.0, 80.0, 70.0, 80.0, 50.0]
    assert pareto_front(costs, scores) == [1, 2, 0]
    assert pareto_front([1.0, 1.0], [2.0, 2.0]) == [0]
    out = best_so_far([None, 3.0, None, 2.0, 5.0])
    assert math.isnan(out[0]) and out[1:] == [3.0, 3.0, 3.0, 5.0]


def test_op_frequency_counts_shares_per_cell() -> None:
    nb201 = get_space("nb201")
    archs = [nb201.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"),
             nb201.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")]
    freq = op_frequency(archs, best_fraction_count(len(archs)))
    assert freq.n_best == 1 and freq.n_all == 2
    shares = dict(zip(freq.labels, zip(freq.best, freq.overall)))
    assert shares["none"] == (3 / 6, 8 / 12) and shares["nor_conv_3x3"] == (2 / 6, 2 / 12)
    assert shares["avg_pool_3x3"] == (0.0, 1 / 12)
    darts = op_frequency([get_space("darts").named("DARTS_V2")], 1)
    assert sum(b for label, b in zip(darts.labels, darts.best) if label.startswith("normal/")) == pytest.approx(1.0)
    assert "reduce/max_pool_3x3" in darts.labels
    assert [best_fraction_count(n) for n in (0, 1, 4, 5, 40)] == [0, 1, 1, 2, 10]


def test_fanova_finds_the_decision_that_sets_the_score() -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    scores = [10.0 * space.encode(a)[4] + rng.normal(0, 0.1) for a in archs]  # only edge_1_3 matters
    imp = decision_importance(space, archs, scores)
    assert imp.names[0] == "edge_1_3" and imp.values[0] > 0.8
    assert sum(imp.values) == pytest.approx(1.0)
    assert decision_importance(space, archs[:2], scores[:2]).reason == \
        "needs at least 3 completed trials in the space, has 2"


@pytest.mark.parametrize("kind", ["nb201", "darts", "rnn", "transformer"])
def test_cell_drawings_label_every_node_and_op(kind: str) -> None:
    from nas.outputs.report.cells import draw_architecture

    arch = get_space(kind).sample(np.random.default_rng(3))
    fig = draw_architecture(arch)
    axes = fig.get_axes()
    assert len(axes) == len(arch.cells)
    for ax, (name, cell) in zip(axes, arch.cells.items()):
        texts = [t.get_text() for t in ax.texts]
        assert ax.get_title().startswith(f"{name} ({cell.family} cell")
        assert sorted(t for t in texts if t in cell.ops()) == sorted(cell.ops())  # one label per edge
        nodes = [f"in{i}" for i in range(cell.inputs)] + [str(i) for i in range(cell.inputs, cell.nodes)]
        assert all(n in texts for n in nodes)
        assert f"output: {cell.combine}(" in texts[-1]
