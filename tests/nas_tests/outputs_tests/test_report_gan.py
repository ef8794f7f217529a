"""The report of a generator search (tiny GAN search on real digits): the top trials' sample grids embedded as
``data:`` PNGs with their FIDs, each FID beside the caveat that it is not an Inception FID, in a page that loads
cleanly in a browser; other experiments say why the section is empty."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools import chromium, needs_chromium
from test_report_browser import _load

from nas.cli import main
from nas.outputs.report.build import SECTIONS

OPTIONS = {"steps": 3, "batch_size": 16, "disc_width": 8, "eval_samples": 100, "feature_epochs": 1,
           "collapse_ratio": 0.0, "diversity_samples": 32, "grid_samples": 16, "device": "cpu"}


@pytest.fixture(scope="module")
def gan_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("gan_report")
    cfg = {"name": "gan_report", "seed": 0, "space": {"name": "gan", "options": {"C": 4, "latent_dim": 8}},
           "strategy": {"name": "random"}, "evaluator": {"name": "gan", "task": "digits", "options": OPTIONS},
           "budget": {"max_trials": 4}, "execution": {"executor": "local", "workers": 1}}
    (tmp / "gan.yaml").write_text(json.dumps(cfg))
    assert main(["search", str(tmp / "gan.yaml"), "--out", str(tmp / "exp"), "--quiet"]) == 0
    assert main(["report", str(tmp / "exp"), "--out", str(tmp / "report.html")]) == 0
    return tmp / "report.html"


def _section(page: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}".*?</section>', page, re.S)
    assert match is not None, sid
    return match.group(0)


def test_the_report_shows_the_top_sample_grids_with_the_fid_caveat(gan_report: Path) -> None:
    page = gan_report.read_text()
    samples = _section(page, "samples")
    assert len(re.findall(r'<img src="data:image/png;base64,', samples)) == 3
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", samples, re.S)
    assert [c.split(",")[0] for c in captions] == ["Rank 1", "Rank 2", "Rank 3"]
    assert all("lower is better" in c and "not Inception-v3" in c for c in captions)  # every FID with its caveat
    assert "FID floor" in samples
    assert "not Inception-v3" in _section(page, "top")
    assert re.search(r"src=\"(?!data:)", page) is None  # self-contained


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Chromium with remote debugging on a free port; yields its HTTP endpoint."""
    yield from chromium(tmp_path_factory.mktemp("chromium-profile"))


@needs_chromium
def test_the_gan_report_loads_cleanly_in_a_browser(gan_report: Path, browser: str) -> None:
    page, state = _load(browser, gan_report)  # fails on any console error or request outside the file
    try:
        assert list(state["sections"]) == [sid for sid, _ in SECTIONS]
        samples = state["sections"]["samples"]
        assert samples["images"] == samples["decoded"] == 3 and samples["height"] > 100
    finally:
        page.ws.close()
