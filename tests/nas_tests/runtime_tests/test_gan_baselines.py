"""Baselines of a GAN search: the ``gan`` space's hand-designed generators (``dcgan``, ``wgan-gp``) listed under
``baselines`` are trained through the search's gan evaluator (each with its published loss), recorded as baselines,
never as search trials, shown in ``nas status`` and in the report's sample grids beside the searched best; a bad
baseline name is refused before anything runs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from test_gan_search import gan_config

from nas.cli import main
from nas.core.errors import ConfigError
from nas.outputs.report.build import ReportOptions, build_report
from nas.outputs.report.text import format_metric
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def test_reference_generators_are_baselines_beside_the_search(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {**gan_config(trials=2), "baselines": ["dcgan", "wgan-gp"]}
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    try:
        exp.run()
        trials, baselines, ranked = exp.store.trials(), exp.baselines(), exp.ranking().ranked
    finally:
        exp.close()
    assert [t.id for t in trials] == [0, 1] and all(t.id >= 0 for t in ranked)  # the search's own trials only
    assert [(b.name, b.id, b.status) for b in baselines] == [("dcgan", -1, "COMPLETE"), ("wgan-gp", -2, "COMPLETE")]
    # trained by the search's evaluator (same task, steps, FID features), each with the loss it is published with
    assert [b.info["loss"] for b in baselines] == ["ns", "wgan-gp"]
    assert {t.info["loss"] for t in trials} == {"ns"}
    for b in baselines:
        assert b.score == pytest.approx(-b.metrics["fid"]) and b.metrics["fid"] > 0
        assert b.metrics["fid_floor"] == trials[0].metrics["fid_floor"]
        assert base64.b64decode(b.info["samples_png"]).startswith(b"\x89PNG")
        assert {op for cell in b.arch.cells.values() for _, _, op in cell.edges} == {"up_deconv", "skip_connect",
                                                                                       "none"}
    # the same generator, two losses: different weights, different FIDs
    assert baselines[0].arch == baselines[1].arch and baselines[0].metrics["fid"] != baselines[1].metrics["fid"]

    assert main(["status", str(tmp_path / "exp")]) == 0
    status = capsys.readouterr().out
    for b in baselines:
        assert f"[baseline] {b.name:<10} fid {b.metrics['fid']:>8.3f}" in status
    html = build_report(tmp_path / "exp", tmp_path / "report.html", ReportOptions(gradcam=False)).path.read_text()
    samples = html[html.index('id="samples"'):html.index('id="cells"')]
    assert samples.count('<figure class="samples">') == 2  # the searched trials
    assert samples.count('<figure class="samples baseline">') == 2
    assert 'alt="samples of baseline dcgan"' in samples and "Baseline wgan-gp (a reference generator" in samples
    assert f"FID {format_metric(baselines[1].metrics['fid'], 'score')} (wgan-gp loss)" in samples


@pytest.mark.parametrize(("baselines", "space_options", "gan_options", "message"), [
    (["resnet18"], {}, {}, r"baselines\[0\] = 'resnet18': the gan evaluator's baselines are the generator space's "
                           r"references; known: dcgan, wgan-gp"),
    (["dcgn"], {}, {}, r"baselines\[0\] = 'dcgn'.*did you mean 'dcgan'"),
    (["dcgan", "dcgan"], {}, {}, r"baselines\[1\] = 'dcgan': listed twice"),
    (["wgan-gp"], {"up_ops": ["up_nearest", "up_bilinear"]}, {},
     r"baselines\[0\] = 'wgan-gp': gan reference 'wgan-gp' needs ops .*widen the space's op choices"),
    (["dcgan", "wgan-gp"], {}, {"disc_norm": "batch"},
     r"baselines\[1\] = 'wgan-gp' trains with \{'loss': 'wgan-gp'\}: .*disc_norm = 'batch' with loss 'wgan-gp'"),
])
def test_bad_gan_baselines_are_refused_by_name(baselines: list[str], space_options: dict[str, object],
                                               gan_options: dict[str, object], message: str) -> None:
    cfg = {**gan_config(**gan_options), "baselines": baselines}
    cfg["space"]["options"].update(space_options)
    with pytest.raises(ConfigError, match=message):
        parse_config(json.loads(json.dumps(cfg)))
