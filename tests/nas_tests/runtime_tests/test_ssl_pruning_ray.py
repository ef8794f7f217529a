"""Label-free search early-stopped on Ray: the ssl evaluator travels to the workers with the pruner's actor
handle (:class:`~nas.evaluation.pruning.RemotePruner`), reports each epoch's pretext score to it, and stops as it
says. One worker, so trials report in id order and the search must equal the same search on the local executor.
Slow (Ray's start, about 25 s on a loaded machine): the pruning itself is covered by ``test_ssl_search`` on the
local executor, the actor by ``test_pruning``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _key, _value in (("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before Ray is imported and started

ray = pytest.importorskip("ray")
from _experiments import run_ranked, stored  # noqa: E402
from _ray import quiet_ray  # noqa: E402  (after the skip: it imports ray)
from test_ssl_search import ASHA_OPTIONS, _pruned_config  # noqa: E402

from nas.runtime.config import parse_config  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    with quiet_ray(num_cpus=1):
        yield


def test_an_asha_ssl_search_on_ray_prunes_as_on_the_local_executor(tmp_path: Path) -> None:
    data = _pruned_config(tmp_path, ASHA_OPTIONS)
    _, local = run_ranked(parse_config(data), tmp_path / "local")
    assert any(t.status == "PRUNED" for t in local)
    data["execution"] = {"executor": "ray", "workers": 1, "cpus_per_trial": 1, "threads_per_trial": 1}
    _, trials = run_ranked(parse_config(data), tmp_path / "ray")
    assert len(trials) == 6, [t.error for t in trials]
    assert stored(tmp_path / "ray") == stored(tmp_path / "local")
    assert [t.history for t in trials] == [t.history for t in local]
